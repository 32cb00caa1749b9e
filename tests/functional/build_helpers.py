"""Helpers for driving the conductor / compute layer directly (no POST /servers needed):
write the rows the create pipeline writes, hand them to the conductor, poll the database."""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from sqlalchemy import func, select

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceMetadata,
    RequestSpec,
)
from novalite.db.models.placement import Allocation, Inventory, ResourceProvider

TINY = {
    "flavorid": "1",
    "name": "m1.tiny",
    "memory_mb": 512,
    "vcpus": 1,
    "root_gb": 1,
    "ephemeral_gb": 0,
    "swap": 0,
    "extra_specs": {},
}


def demo_ctx(api: Any) -> RequestContext:
    return RequestContext(
        user_id=api.ids["demo_user"],
        project_id=api.ids["demo_project"],
        roles=("member",),
        request_id="req-" + uuidlib.uuid4().hex,
    )


def create_instances(
    api: Any,
    *,
    count: int = 1,
    flavor: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    spec_extra: dict[str, Any] | None = None,
    start: bool = True,
    requested_networks: Any = "none",
) -> list[str]:
    """Write ``count`` BUILD/scheduling instances as the API does; cast them to the conductor."""
    rt, ctx = api.runtime, demo_ctx(api)
    flavor = dict(flavor or TINY)
    uuids = [str(uuidlib.uuid4()) for _ in range(count)]
    reservation = "r-" + uuidlib.uuid4().hex[:8]
    with rt.db.session() as s:
        for index, uuid in enumerate(uuids):
            s.add(
                Instance(
                    uuid=uuid,
                    project_id=ctx.project_id,
                    user_id=ctx.user_id,
                    display_name=f"vm-{index}",
                    reservation_id=reservation,
                    launch_index=index,
                    flavor_id=flavor["flavorid"],
                    flavor=flavor,
                    memory_mb=flavor["memory_mb"],
                    vcpus=flavor["vcpus"],
                    root_gb=flavor["root_gb"],
                    vm_state="building",
                    task_state="scheduling",
                    power_state=0,
                    requested_networks=requested_networks,
                    security_groups=[],
                    system_metadata={},
                    network_info=[],
                )
            )
            s.flush()
            spec = {
                "instance_uuid": uuid,
                "project_id": ctx.project_id,
                "user_id": ctx.user_id,
                "num_instances": count,
                "reservation_id": reservation,
                "flavor": flavor,
                "image": {},
                "is_bfv": False,
                "availability_zone": None,
                "force_hosts": [],
                "force_nodes": [],
                "requested_destination": None,
                "scheduler_hints": {},
                "instance_group": None,
                "security_groups": [],
                "requested_networks": requested_networks,
                **(spec_extra or {}),
            }
            s.add(RequestSpec(instance_uuid=uuid, spec=spec))
            s.add_all(
                InstanceMetadata(instance_uuid=uuid, key=k, value=v) for k, v in (metadata or {}).items()
            )
            s.add(
                InstanceAction(
                    instance_uuid=uuid,
                    action="create",
                    request_id=ctx.request_id,
                    user_id=ctx.user_id,
                    project_id=ctx.project_id,
                    start_time=utcnow(),
                )
            )
    if start:
        rt.services.require_conductor().schedule_and_build_instances(
            ctx, uuids, {"requested_networks": requested_networks}
        )
    return uuids


def instance(api: Any, uuid: str) -> Instance:
    with api.runtime.db.reader() as s:
        row = s.scalars(select(Instance).where(Instance.uuid == uuid)).one()
        s.expunge(row)
        return row


def wait_for(api: Any, uuid: str, predicate: Any, timeout: float = 30.0) -> Instance:
    deadline = time.monotonic() + timeout
    while True:
        row = instance(api, uuid)
        if predicate(row):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(
                f"instance {uuid} stuck: vm_state={row.vm_state} task_state={row.task_state}"
            )
        time.sleep(0.02)


def settled(row: Instance) -> bool:
    return row.deleted or (row.vm_state in ("active", "error") and row.task_state is None)


def faults(api: Any, uuid: str) -> list[InstanceFault]:
    with api.runtime.db.reader() as s:
        rows = list(
            s.scalars(
                select(InstanceFault).where(InstanceFault.instance_uuid == uuid).order_by(InstanceFault.id)
            )
        )
        s.expunge_all()
        return rows


def events(api: Any, uuid: str) -> list[tuple[str, str, str | None]]:
    """(action, event, result) of the instance, oldest first."""
    with api.runtime.db.reader() as s:
        q = (
            select(InstanceAction.action, InstanceActionEvent.event, InstanceActionEvent.result)
            .join(InstanceActionEvent, InstanceActionEvent.action_id == InstanceAction.id)
            .where(InstanceAction.instance_uuid == uuid)
            .order_by(InstanceActionEvent.id)
        )
        return [tuple(r) for r in s.execute(q)]  # type: ignore[misc]


def allocations_by_host(api: Any, uuid: str) -> dict[str, dict[str, int]]:
    with api.runtime.db.reader() as s:
        q = (
            select(ResourceProvider.name, Allocation.resource_class, Allocation.used)
            .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
            .where(Allocation.consumer_id == uuid)
        )
        out: dict[str, dict[str, int]] = {}
        for name, rc, used in s.execute(q):
            out.setdefault(name, {})[rc] = used
        return out


def usage_matches_live_servers(api: Any) -> None:
    """Every provider's usage = the sum of its live servers' flavors; no allocation without a live server."""
    with api.runtime.db.reader() as s:
        live = {i.uuid: i for i in s.scalars(select(Instance).where(Instance.deleted.is_(False)))}
        orphan = s.execute(
            select(Allocation.consumer_id).where(Allocation.consumer_id.not_in(list(live)))
        ).all()
        assert orphan == [], f"allocations without a live server: {orphan}"
        expected: dict[tuple[str, str], int] = {}
        for i in live.values():
            if i.node:
                for rc, n in (("VCPU", i.vcpus), ("MEMORY_MB", i.memory_mb), ("DISK_GB", i.root_gb)):
                    expected[(i.node, rc)] = expected.get((i.node, rc), 0) + n
        q = select(ResourceProvider.name, Inventory.resource_class, Inventory.used).join(
            ResourceProvider, ResourceProvider.id == Inventory.resource_provider_id
        )
        for name, rc, used in s.execute(q):
            assert used == expected.get((name, rc), 0), (name, rc, used, expected.get((name, rc), 0))
        sums = dict(
            s.execute(
                select(Allocation.resource_class, func.sum(Allocation.used)).group_by(
                    Allocation.resource_class
                )
            ).all()
        )
        for rc in ("VCPU", "MEMORY_MB", "DISK_GB"):
            assert int(sums.get(rc) or 0) == sum(v for (_n, r), v in expected.items() if r == rc)

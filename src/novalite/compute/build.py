"""The build steps of one instance on one host (nova-create-pipeline.md §4.2-4.3).

    accept (claim check, late group check, host/node set)      task_state networking
      -> networking (ports, same transaction, in a savepoint)     block_device_mapping
      -> block devices (only when volumes are to be attached)     spawning
      -> driver.spawn (no transaction open)
      -> finish                                                   vm_state active, power 1

Each state write is ``UPDATE ... WHERE task_state = <expected> AND NOT deleted``: a row that
no longer matches means the user deleted the server meanwhile (``Vanished``). A step raises
``Reschedule`` (try an alternate host) or ``Abort`` (no other host will do better).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from novalite.compute import actions, resource_tracker
from novalite.compute.guest_spec import guest_spec
from novalite.context import RequestContext
from novalite.db import group_commit
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, InstanceMetadata, RequestSpec
from novalite.db.models.image import Image, ImageProperty
from novalite.db.models.network import Subnet
from novalite.db.precompiled import Precompiled
from novalite.domain.request_spec import instance_group_of
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.notifications import updates
from novalite.services import server_groups
from novalite.virt.driver import GuestSpec

BUILD_EVENT = "compute__do_build_and_run_instance"
GROUP = "compute"  # the group commit shared by the compute agents' writes


class Vanished(Exception):
    """The instance was deleted (or moved on) while we worked on it."""


class Reschedule(Exception):
    def __init__(self, reason: str, *, by_policy: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.by_policy = by_policy


class Abort(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Build:
    ctx: RequestContext
    instance_uuid: str
    host: str
    node: str
    node_uuid: str
    build_args: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1
    event_id: int | None = None
    requested_networks: Any = None
    project_id: str = ""
    security_groups: list[str] = field(default_factory=list)
    guest_details: bool = True  # the driver's ``Capabilities.guest_details``


@functools.lru_cache(maxsize=64)
def _transition(expect_none: bool, columns: tuple[str, ...]) -> Precompiled:
    """The UPDATE for one shape of transition, compiled once (values are bound at execution)."""
    table = cast(Table, Instance.__table__)
    state = table.c.task_state.is_(None) if expect_none else table.c.task_state == bindparam("expected")
    return Precompiled(
        update(table)
        .where(table.c.uuid == bindparam("instance_uuid"), table.c.deleted.is_(False), state)
        .values({c: bindparam(f"v_{c}") for c in ("task_state", "updated_at", *columns)})
    )


def set_task_state(s: Session, uuid: str, expected: str | None, new: str | None, **values: Any) -> None:
    """Persist a transition with the check of the expected task state (``Vanished`` if it fails)."""
    columns = tuple(sorted(values))
    params = {f"v_{c}": v for c, v in values.items()}
    params.update(instance_uuid=uuid, expected=expected, v_task_state=new, v_updated_at=utcnow())
    if _run(s, _transition(expected is None, columns), params) != 1:
        raise Vanished(uuid)


def _run(s: Session, transition: Precompiled, params: dict[str, Any]) -> int:
    """Run a transition; with notifications on, its instance.update is noted (the statement
    runs on the driver's cursor, below the session's hooks)."""
    before = updates.before(s, params["instance_uuid"])
    changed = transition.run(s, params)
    if before is not None:
        updates.after(s, params["instance_uuid"], before)
    return changed


_INSTANCE = select(
    Instance.id,
    Instance.uuid,
    Instance.deleted,
    Instance.task_state,
    Instance.user_id,
    Instance.project_id,
    Instance.requested_networks,
    Instance.security_groups,
    Instance.flavor,
    Instance.user_data,
    Instance.key_name,
    Instance.key_data,
    Instance.config_drive,
    Instance.hostname,
    Instance.display_name,
    Instance.availability_zone,
    Instance.launch_index,
    Instance.image_ref,
).where(Instance.uuid == bindparam("instance_uuid"))
_METADATA = Precompiled(
    select(InstanceMetadata.key, InstanceMetadata.value).where(
        InstanceMetadata.instance_uuid == bindparam("instance_uuid")
    )
)


def late_group_check(s: Session, instance_uuid: str, host: str, build_args: dict[str, Any]) -> str | None:
    """The group policy against where members really run now; the violation, or None.

    The conductor passes the group in ``build_args["instance_group"]``; without that key the
    RequestSpec is read."""
    if "instance_group" in build_args:
        group_uuid = build_args["instance_group"]
    else:
        row = s.get(RequestSpec, instance_uuid)
        group_uuid = instance_group_of(row.spec or {}) if row else None
    if not group_uuid:
        return None
    return server_groups.late_policy_violation(s, group_uuid, instance_uuid, host)


def accept(db: Database, b: Build, networks: Callable[[Session, Build], str | None]) -> GuestSpec:
    """Record the event, check claim and group, set host/node (task_state networking), then
    ``networks`` (ports; on to block_device_mapping / spawning) -- one transaction.

    ``Vanished`` when the instance is gone or holds no claim on this node (a stale message after
    a reschedule). Raises ``Reschedule`` (group policy violated) or ``Abort`` (networking
    failed) after the commit, so the event and the host survive for the failure path.
    Builds accepted together share one transaction (``group_commit``)."""
    outcome = group_commit.group(db, GROUP).run(db, functools.partial(_accept, b=b, networks=networks))
    if outcome is None:
        raise Vanished(b.instance_uuid)
    guest, problem, by_policy, network_error = outcome
    if problem is not None:
        raise Reschedule(problem, by_policy=by_policy)
    if network_error is not None:
        raise Abort(network_error)
    return cast(GuestSpec, guest)


def _accept(
    s: Session, *, b: Build, networks: Callable[[Session, Build], str | None]
) -> tuple[Any, ...] | None:
    """``accept``'s transaction; None when the instance is gone (nothing written)."""
    conn = s.connection()
    inst = conn.execute(_INSTANCE, {"instance_uuid": b.instance_uuid}).first()
    if inst is None or inst.deleted or inst.task_state != TaskState.SCHEDULING:
        return None
    if not resource_tracker.instance_claim(s, b.instance_uuid, b.node_uuid):
        # a stale message (its instance rescheduled meanwhile: the claim is another host's, or
        # being moved): not this host's build, nothing here may touch it
        return None
    action = actions.find_action(
        s,
        b.instance_uuid,
        "create",
        user_id=inst.user_id,
        project_id=inst.project_id,
        request_id=b.ctx.request_id,
    )
    b.event_id = actions.start_event(s, action, BUILD_EVENT, host=b.host)
    b.requested_networks, b.project_id = inst.requested_networks, inst.project_id
    b.security_groups = [str(g.get("name")) for g in (inst.security_groups or []) if isinstance(g, dict)]
    problem, by_policy = None, False
    if (violation := late_group_check(s, b.instance_uuid, b.host, b.build_args)) is not None:
        problem, by_policy = violation, True
    network_error = None
    if problem is None:
        set_task_state(
            s,
            b.instance_uuid,
            TaskState.SCHEDULING,
            TaskState.NETWORKING,
            host=b.host,
            node=b.node,
            launched_on=b.host,
            vm_state=VmState.BUILDING,
        )
        network_error = networks(s, b)
    metadata = {k: v for k, v in _METADATA.all(conn, {"instance_uuid": b.instance_uuid})}
    guest = guest_spec(
        inst,
        b.host,
        node=b.node,
        metadata=metadata,
        attempt=b.attempt,
        admin_password=b.build_args.get("admin_password"),
        image=_image_info(s, inst.image_ref) if problem is None and b.guest_details else {},
        network_info=(
            _network_info(s, b.instance_uuid)
            if problem is None and network_error is None and b.guest_details
            else ()
        ),
        user_data=_user_data(inst.user_data),
        key_pairs=((inst.key_name, "ssh", inst.key_data),) if inst.key_name and inst.key_data else (),
        config_drive=str(inst.config_drive or "").strip().lower() in ("true", "1", "yes", "on"),
        hostname=inst.hostname or "",
        display_name=inst.display_name or "",
        project_id=inst.project_id,
        availability_zone=inst.availability_zone,
        launch_index=inst.launch_index or 0,
    )
    return guest, problem, by_policy, network_error


def existing_guest(s: Session, instance_uuid: str, host: str) -> GuestSpec | None:
    """The full GuestSpec of an instance that already has its ports (a rebuild spawns it again
    from its current image, user data and key); None when it is gone."""
    conn = s.connection()
    inst = conn.execute(_INSTANCE, {"instance_uuid": instance_uuid}).first()
    if inst is None or inst.deleted:
        return None
    node = s.execute(select(Instance.node).where(Instance.uuid == instance_uuid)).scalar()
    from novalite.compute.devices import attached_volumes  # (it imports this module)

    return guest_spec(
        inst,
        host,
        node=node or host,
        metadata={k: v for k, v in _METADATA.all(conn, {"instance_uuid": instance_uuid})},
        image=_image_info(s, inst.image_ref),
        network_info=_network_info(s, instance_uuid),
        block_devices=attached_volumes(s, instance_uuid),  # a rebuild keeps its volumes
        user_data=_user_data(inst.user_data),
        key_pairs=((inst.key_name, "ssh", inst.key_data),) if inst.key_name and inst.key_data else (),
        config_drive=str(inst.config_drive or "").strip().lower() in ("true", "1", "yes", "on"),
        hostname=inst.hostname or "",
        display_name=inst.display_name or "",
        project_id=inst.project_id,
        availability_zone=inst.availability_zone,
        launch_index=inst.launch_index or 0,
    )


def _user_data(encoded: str | None) -> bytes | None:
    """The request's user_data is base64 (checked by the API); the guest gets the bytes."""
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded)
    except (ValueError, binascii.Error):
        return None


def image_info(s: Session, image_ref: str | None) -> dict[str, Any]:
    """What a real driver needs to fetch and verify an image (a rescue image, for one)."""
    return _image_info(s, image_ref)


def _image_info(s: Session, image_ref: str | None) -> dict[str, Any]:
    """What a real driver needs to fetch and verify the image (no image: boot from volume)."""
    if not image_ref:
        return {}
    row = s.execute(
        select(
            Image.id,
            Image.disk_format,
            Image.size,
            Image.checksum,
            Image.os_hash_algo,
            Image.os_hash_value,
        ).where(Image.id == image_ref)
    ).first()
    if row is None:
        return {"id": image_ref}
    props = dict(
        s.execute(select(ImageProperty.name, ImageProperty.value).where(ImageProperty.image_id == row.id))
        .tuples()
        .all()
    )
    return {
        "id": row.id,
        "disk_format": row.disk_format,
        "size": row.size,
        "checksum": row.checksum,
        "os_hash_algo": row.os_hash_algo,
        "os_hash_value": row.os_hash_value,
        "properties": props,
        **_boot_images(s, props),
    }


def _boot_images(s: Session, props: dict[str, Any]) -> dict[str, Any]:
    """A kernel/ramdisk image's ``kernel`` and ``ramdisk`` rows (from its ``kernel_id`` and
    ``ramdisk_id`` properties), for the driver to fetch and verify; an id naming no image is
    left out (the driver refuses the build)."""
    found: dict[str, Any] = {}
    for key in ("kernel", "ramdisk"):
        wanted = props.get(f"{key}_id")
        if not wanted:
            continue
        row = s.execute(
            select(Image.id, Image.size, Image.checksum, Image.os_hash_algo, Image.os_hash_value).where(
                Image.id == str(wanted), Image.deleted.is_(False)
            )
        ).first()
        if row is not None:
            found[key] = {
                "id": row.id,
                "size": row.size,
                "checksum": row.checksum,
                "os_hash_algo": row.os_hash_algo,
                "os_hash_value": row.os_hash_value,
            }
    return found


def _network_info(s: Session, instance_uuid: str) -> tuple[dict[str, Any], ...]:
    """The instance's ports with each fixed IP's subnet (cidr) and the subnet's gateway."""
    info = s.execute(select(Instance.network_info).where(Instance.uuid == instance_uuid)).scalar() or []
    if not info:
        return ()
    network_ids = {str(p.get("network_id")) for p in info if isinstance(p, dict)}
    subnets = [
        (ipaddress.ip_network(cidr, strict=False), cidr, gateway)
        for cidr, gateway in s.execute(
            select(Subnet.cidr, Subnet.gateway_ip).where(Subnet.network_id.in_(network_ids))
        ).tuples()
    ]
    out = []
    for port in info:
        if not isinstance(port, dict):
            continue
        fixed, gateway = [], None
        for ip in port.get("fixed_ips") or []:
            address = str(ip.get("ip_address") or "")
            match = next((sn for sn in subnets if _contains(sn[0], address)), None)
            fixed.append({"ip_address": address, "cidr": match[1] if match else None})
            if match is not None and gateway is None:
                gateway = match[2]
        out.append(
            {
                "port_id": port.get("port_id"),
                "mac_address": port.get("mac_address"),
                "network_id": port.get("network_id"),
                "fixed_ips": fixed,
                "gateway": gateway,
            }
        )
    return tuple(out)


def _contains(net: Any, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


_FINISH_COLUMNS = ("launched_at", "power_state", "progress", "vm_state")


def _finish(s: Session, *, b: Build, power_state: PowerState) -> bool:
    """``finish``'s transaction; False when the row moved on (nothing written)."""
    now = utcnow()
    changed = _run(
        s,
        _transition(False, _FINISH_COLUMNS),
        {
            "instance_uuid": b.instance_uuid,
            "expected": TaskState.SPAWNING,
            "v_task_state": None,
            "v_updated_at": now,
            "v_vm_state": VmState.ACTIVE,
            "v_power_state": int(power_state),
            "v_launched_at": now,
            "v_progress": 100,
        },
    )
    if changed != 1:
        return False
    if b.event_id is not None:
        actions.finish_event(s, b.event_id, ok=True)
    resource_tracker.record_build_result(s, b.node_uuid, ok=True)
    return True


def finish(db: Database, b: Build, power_state: PowerState) -> None:
    """spawning -> ACTIVE, the build event closed, the node's failed-build counter reset.

    Shares a transaction with the other build steps that write at the same time (``group_commit``)."""
    if not group_commit.group(db, GROUP).run(db, functools.partial(_finish, b=b, power_state=power_state)):
        raise Vanished(b.instance_uuid)

"""The compute side of resources: verify the scheduler's claim, count failed builds, report usage.

Placement holds the truth about usage (allocations); the tracker only checks that the
instance's allocation really sits on this node before the build goes on, and keeps the
node's consecutive ``failed_builds`` counter (reset by a success) for BuildFailureWeigher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from novalite.db.models.compute import Instance
from novalite.db.models.placement import Allocation, ComputeNode, Inventory, ResourceProvider
from novalite.db.precompiled import Precompiled


@dataclass(frozen=True)
class NodeUsage:
    """What os-hypervisors (before 2.88) shows per node."""

    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    local_gb: int
    local_gb_used: int
    running_vms: int


_NODES = cast(Table, ComputeNode.__table__)
# Precompiled (``db.precompiled``): they run in every build's accept and finish transactions
_HOLDS = Precompiled(
    select(Allocation.id)
    .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
    .where(Allocation.consumer_id == bindparam("instance_uuid"), ResourceProvider.uuid == bindparam("node"))
    .limit(1)
)
_RESET = Precompiled(
    update(_NODES)
    .where(_NODES.c.uuid == bindparam("node"), _NODES.c.failed_builds != 0)
    .values(failed_builds=0)
)
_FAILED = Precompiled(
    update(_NODES).where(_NODES.c.uuid == bindparam("node")).values(failed_builds=_NODES.c.failed_builds + 1)
)


def instance_claim(s: Session, instance_uuid: str, node_uuid: str) -> bool:
    """True when the instance holds an allocation on this node's provider."""
    return _HOLDS.first(s, {"instance_uuid": instance_uuid, "node": node_uuid}) is not None


def record_build_result(s: Session, node_uuid: str, *, ok: bool) -> None:
    """A success resets the node's consecutive failed-build counter; a failure bumps it."""
    (_RESET if ok else _FAILED).run(s, {"node": node_uuid})


def node_usage(s: Session, node_uuids: Sequence[str]) -> dict[str, NodeUsage]:
    """compute node uuid -> capacity and usage (placement inventories + live instances)."""
    if not node_uuids:
        return {}
    nodes = {n.uuid: n for n in s.scalars(select(ComputeNode).where(ComputeNode.uuid.in_(node_uuids)))}
    used: dict[str, dict[str, int]] = {}
    q = (
        select(ResourceProvider.uuid, Inventory.resource_class, Inventory.used)
        .join(Inventory, Inventory.resource_provider_id == ResourceProvider.id)
        .where(ResourceProvider.uuid.in_(node_uuids))
    )
    for uuid, rc, amount in s.execute(q):
        used.setdefault(uuid, {})[rc] = amount
    hosts = {n.hypervisor_hostname for n in nodes.values()}
    counts = dict(
        s.execute(
            select(Instance.node, func.count(Instance.id))
            .where(Instance.deleted.is_(False), Instance.node.in_(hosts))
            .group_by(Instance.node)
        ).all()
    )
    out = {}
    for uuid, node in nodes.items():
        u = used.get(uuid, {})
        out[uuid] = NodeUsage(
            vcpus=node.vcpus,
            vcpus_used=u.get("VCPU", 0),
            memory_mb=node.memory_mb,
            memory_mb_used=u.get("MEMORY_MB", 0),
            local_gb=node.local_gb,
            local_gb_used=u.get("DISK_GB", 0),
            running_vms=int(counts.get(node.hypervisor_hostname, 0)),
        )
    return out

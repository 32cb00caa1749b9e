"""Read the scheduler's inputs from the database: host snapshots, server groups, aggregates.

Batched: one query per table for the whole candidate list, never one per host.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.aggregates import Aggregate, AggregateHost, AggregateMetadata
from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service
from novalite.placement.candidates import Candidate, ResourceQuery, candidates_from_rows, prepare
from novalite.scheduler.snapshots import AggregateSnapshot, GroupView, HostSnapshot
from novalite.services import server_groups

_AGGREGATES = select(Aggregate, AggregateHost.host).join(
    AggregateHost, AggregateHost.aggregate_id == Aggregate.id
)
_HOST_AGGREGATES = _AGGREGATES.where(AggregateHost.host.in_(bindparam("hosts", expanding=True)))
_ANY_MEMBER = select(AggregateHost.host).limit(1)


def host_aggregates(s: Session, hosts: Iterable[str] | None = None) -> dict[str, list[AggregateSnapshot]]:
    """host -> its Nova host aggregates (with metadata, incl. ``availability_zone``)."""
    if hosts is not None and s.connection().execute(_ANY_MEMBER).first() is None:
        return {}  # no host is in any aggregate: skip the per-host lookup (ORM rows, long IN list)
    if hosts is None:
        rows = s.execute(_AGGREGATES).all()
    else:
        rows = s.execute(_HOST_AGGREGATES, {"hosts": list(hosts)}).all()
    meta: dict[int, dict[str, str]] = {}
    if rows:
        ids = {agg.id for agg, _h in rows}
        for m in s.scalars(select(AggregateMetadata).where(AggregateMetadata.aggregate_id.in_(ids))):
            meta.setdefault(m.aggregate_id, {})[m.key] = m.value
    out: dict[str, list[AggregateSnapshot]] = {}
    for agg, host in rows:
        md = dict(meta.get(agg.id, {}))
        if agg.availability_zone and "availability_zone" not in md:
            md["availability_zone"] = agg.availability_zone
        out.setdefault(host, []).append(AggregateSnapshot(uuid=agg.uuid, name=agg.name, metadata=md))
    return out


def load_group(s: Session, group_uuid: str | None) -> GroupView | None:
    """The group's policy, rules and live members' hosts."""
    if not group_uuid:
        return None
    group = server_groups.group_placement(s, group_uuid)
    if group is None:
        return None
    return GroupView(uuid=group_uuid, policy=group.policy, rules=group.rules, member_hosts=group.member_hosts)


@dataclass(frozen=True)
class _Inv:
    total: int
    reserved: int
    used: int
    allocation_ratio: float


_USAGE = (
    select(
        ResourceProvider.uuid,
        Inventory.resource_class,
        Inventory.total,
        Inventory.reserved,
        Inventory.used,
        Inventory.allocation_ratio,
    )
    .join(Inventory, Inventory.resource_provider_id == ResourceProvider.id)
    .where(ResourceProvider.uuid.in_(bindparam("uuids", expanding=True)))
)


def _usage(s: Session, provider_uuids: Sequence[str]) -> dict[str, dict[str, _Inv]]:
    out: dict[str, dict[str, _Inv]] = {}
    for uuid, rc, total, reserved, used, ratio in s.connection().execute(
        _USAGE, {"uuids": list(provider_uuids)}
    ):
        out.setdefault(uuid, {})[rc] = _Inv(total, reserved, used, ratio)
    return out


def _instance_counts(s: Session, hosts: Sequence[str]) -> dict[str, int]:
    q = (
        select(Instance.host, func.count(Instance.id))
        .where(Instance.deleted.is_(False), Instance.host.in_(hosts))
        .group_by(Instance.host)
    )
    return {str(h): int(n) for h, n in s.execute(q)}


def _hinted(s: Session, uuids: Sequence[str]) -> dict[str, set[str]]:
    if not uuids:
        return {}
    out: dict[str, set[str]] = {}
    q = select(Instance.uuid, Instance.host).where(Instance.uuid.in_(uuids), Instance.deleted.is_(False))
    for uuid, host in s.execute(q):
        if host:
            out.setdefault(host, set()).add(uuid)
    return out


def is_up(service: Any, down_time: int, now: dt.datetime) -> bool:
    """``service``: anything with ``forced_down`` and ``last_seen_at`` (a Service row or a row tuple)."""
    if service.forced_down or service.last_seen_at is None:
        return False
    return (now - service.last_seen_at).total_seconds() <= down_time


_NODE_COLUMNS = (
    ComputeNode.uuid,
    ComputeNode.host,
    ComputeNode.hypervisor_hostname,
    ComputeNode.failed_builds,
    Service.disabled,
    Service.disabled_reason,
    Service.forced_down,
    Service.last_seen_at,
    Service.id.label("service_id"),
)
_NODES = (
    select(*_NODE_COLUMNS)
    .join(Service, Service.id == ComputeNode.service_id, isouter=True)
    .where(ComputeNode.uuid.in_(bindparam("uuids", expanding=True)), ComputeNode.deleted.is_(False))
)
_STATIC = select(
    ComputeNode.uuid,
    ComputeNode.hypervisor_type,
    ComputeNode.hypervisor_version,
    ComputeNode.cpu_info,
    ComputeNode.supported_instances,
    ComputeNode.stats,
).where(ComputeNode.uuid.in_(bindparam("uuids", expanding=True)))
_NODE_OFFSET = len(_NODE_COLUMNS)


@functools.lru_cache(maxsize=256)
def _with_nodes(stmt: Any) -> Any:
    """A candidates statement with each provider's compute node and service (outer joins on
    unique keys: one row per provider still, so limit and order are unchanged)."""
    return (
        stmt.add_columns(*_NODE_COLUMNS)
        .outerjoin(
            ComputeNode, and_(ComputeNode.uuid == ResourceProvider.uuid, ComputeNode.deleted.is_(False))
        )
        .outerjoin(Service, Service.id == ComputeNode.service_id)
    )


def candidates_with_nodes(s: Session, query: ResourceQuery) -> tuple[list[Candidate], dict[str, Any] | None]:
    """``find_candidates`` and the node rows ``host_snapshots`` needs, in one statement on SQLite.
    PostgreSQL plans the 7-way join in ~2x the time of the two statements (its join search grows
    with every relation), so there the nodes are left to ``host_snapshots`` (None)."""
    stmt, params, wanted = prepare(query)
    if s.connection().dialect.name != "sqlite":
        return candidates_from_rows(s.connection().execute(stmt, params).all(), wanted), None
    rows = s.connection().execute(_with_nodes(stmt), params).all()
    found = candidates_from_rows(rows, wanted)
    nodes = {}
    for row in rows:
        node = _NodeRow(*row[-_NODE_OFFSET:])
        if node.uuid is not None:
            nodes[node.uuid] = node
    return found, nodes


class _NodeRow(NamedTuple):
    uuid: str | None
    host: str
    hypervisor_hostname: str
    failed_builds: int
    disabled: bool | None
    disabled_reason: str | None
    forced_down: bool | None
    last_seen_at: dt.datetime | None
    service_id: int | None


STATIC_TTL = 10.0  # seconds a node's hypervisor description is reused without re-reading it


@dataclass(frozen=True)
class _Static:
    hypervisor_type: str
    hypervisor_version: int
    cpu_info: dict[str, Any]
    supported_instances: tuple[tuple[str, str, str], ...]
    stats: dict[str, Any]


_static_cache: dict[str, tuple[float, _Static]] = {}
_static_lock = threading.Lock()


def _static(s: Session, uuids: Sequence[str]) -> dict[str, _Static]:
    """What the virt driver reported about each node (changes rarely): cached for ``STATIC_TTL``."""
    now = time.monotonic()
    with _static_lock:
        found = {
            u: e[1] for u in uuids if (e := _static_cache.get(u)) is not None and now - e[0] < STATIC_TTL
        }
    missing = [u for u in uuids if u not in found]
    if missing:
        fresh = {}
        for uuid, hv_type, hv_version, cpu_info, supported, stats in s.connection().execute(
            _STATIC, {"uuids": missing}
        ):
            fresh[uuid] = _Static(
                hv_type,
                hv_version,
                dict(cpu_info or {}),
                tuple(tuple(x) for x in (supported or [])),
                dict(stats or {}),
            )  # type: ignore[misc]
        with _static_lock:
            _static_cache.update({u: (now, v) for u, v in fresh.items()})
        found.update(fresh)
    return found


def host_snapshots(
    s: Session,
    candidates: Sequence[Candidate],
    *,
    service_down_time: int,
    hinted_uuids: Sequence[str] = (),
    instance_counts: bool = True,
    nodes: Mapping[str, Any] | None = None,
) -> list[HostSnapshot]:
    """One snapshot per candidate provider that is a compute node (candidate order kept);
    ``num_instances`` is 0 unless ``instance_counts``; ``nodes`` as ``candidates_with_nodes``
    read them (else read here)."""
    uuids = [c.provider_uuid for c in candidates]
    if not uuids:
        return []
    if nodes is None:
        nodes = {row.uuid: row for row in s.connection().execute(_NODES, {"uuids": uuids}).all()}
    static = _static(s, list(nodes))
    complete = all(_CLASSES <= c.usage.keys() for c in candidates)
    # the candidates' own inventory rows serve as they are (same fields as ``_Inv``)
    usage: Mapping[str, Mapping[str, Any]] = (
        {c.provider_uuid: c.usage for c in candidates} if complete else _usage(s, uuids)
    )
    hosts = sorted({n.host for n in nodes.values()})
    counts = _instance_counts(s, hosts) if instance_counts else {}
    aggs, hinted = host_aggregates(s, hosts), _hinted(s, hinted_uuids)
    now = utcnow()
    # a heartbeat at or after this instant is recent enough (same test as ``is_up``)
    up_since = now - dt.timedelta(seconds=service_down_time)
    empty: Mapping[str, Any] = {}
    out = []
    for cand in candidates:
        node = nodes.get(cand.provider_uuid)
        if node is None:
            continue
        host = node.host
        out.append(
            _snapshot(
                node,
                static[cand.provider_uuid],
                usage.get(cand.provider_uuid, empty),
                cand,
                up_since=up_since,
                num_instances=counts.get(host, 0),
                aggregates=tuple(aggs[host]) if host in aggs else (),
                instance_uuids=frozenset(hinted[host]) if host in hinted else frozenset(),
            )
        )
    return out


_CLASSES = frozenset(("VCPU", "MEMORY_MB", "DISK_GB"))
_new_snapshot = object.__new__


def _snapshot(
    node: Any,
    static: _Static,
    inv: Mapping[str, Any],
    cand: Candidate,
    *,
    up_since: dt.datetime,
    num_instances: int,
    aggregates: tuple[AggregateSnapshot, ...],
    instance_uuids: frozenset[str],
) -> HostSnapshot:
    """A HostSnapshot built straight into its ``__dict__`` (every field given): the frozen
    dataclass ``__init__`` costs one ``object.__setattr__`` per field, 40 candidates a request."""
    vcpu, ram, disk = inv.get("VCPU"), inv.get("MEMORY_MB"), inv.get("DISK_GB")
    seen = node.last_seen_at
    snap: HostSnapshot = _new_snapshot(HostSnapshot)
    snap.__dict__.update(
        uuid=node.uuid,
        host=node.host,
        node=node.hypervisor_hostname,
        service_up=(
            node.service_id is not None and not node.forced_down and seen is not None and seen >= up_since
        ),
        service_disabled=bool(node.disabled),
        disabled_reason=node.disabled_reason,
        vcpus_total=vcpu.total - vcpu.reserved if vcpu else 0,
        vcpus_used=vcpu.used if vcpu else 0,
        cpu_allocation_ratio=vcpu.allocation_ratio if vcpu else 1.0,
        memory_mb_total=ram.total if ram else 0,
        memory_mb_used=ram.used if ram else 0,
        memory_mb_reserved=ram.reserved if ram else 0,
        ram_allocation_ratio=ram.allocation_ratio if ram else 1.0,
        disk_gb_total=(disk.total - disk.reserved) if disk else 0,
        disk_gb_used=disk.used if disk else 0,
        disk_allocation_ratio=disk.allocation_ratio if disk else 1.0,
        num_instances=num_instances,
        failed_builds=node.failed_builds,
        hypervisor_type=static.hypervisor_type,
        hypervisor_version=static.hypervisor_version,
        cpu_info=static.cpu_info,
        supported_instances=static.supported_instances,
        stats=static.stats,
        aggregates=aggregates,
        instance_uuids=instance_uuids,
        allocation_request=cand.allocation_request,
    )
    return snap

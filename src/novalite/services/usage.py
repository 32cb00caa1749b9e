"""Simple tenant usage (``/os-simple-tenant-usage``, ``compute_api.usage``): what each project's
servers used in a time window, as Nova computes it.

The servers counted are those that ran in the window: launched before its end and not
terminated before its start, deleted ones included (rows are soft-deleted, with
``terminated_at``). They come ordered by project, then uuid; ``limit`` counts servers, not
projects, and ``marker`` is the last server of the previous page (any server, deleted or not;
unknown: 400).

Per server: ``hours`` is the overlap of [launched_at, terminated_at or the window's end] with
the window; ``uptime`` is whole seconds from launch to termination (or to now), not clipped to
the window; ``state`` is ``terminated`` once terminated, else the vm_state. Per project: the
sums of hours and of vcpus, memory and disk (root + ephemeral) times hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.errors import BadRequest


@dataclass(frozen=True)
class Window:
    start: dt.datetime  # naive UTC, as every time in the database
    stop: dt.datetime


@dataclass(frozen=True)
class ServerUsage:
    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    memory_mb: int
    local_gb: int
    vcpus: int
    hours: float
    started_at: dt.datetime
    ended_at: dt.datetime | None
    state: str
    uptime: int


@dataclass
class TenantUsage:
    tenant_id: str
    window: Window
    total_hours: float = 0.0
    total_vcpus_usage: float = 0.0
    total_memory_mb_usage: float = 0.0
    total_local_gb_usage: float = 0.0
    server_usages: list[ServerUsage] = field(default_factory=list)


_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def parse_time(raw: str | None, now: dt.datetime) -> dt.datetime:
    """A ``start``/``end`` query value (missing or empty: now), naive UTC."""
    if not raw:
        return now
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise BadRequest("Invalid datetime string: Datetime is in invalid format", kind="InvalidStrTime")


def window(start: str | None, end: str | None) -> Window:
    """The window asked for; its end is never later than now (Nova caps it)."""
    now = utcnow()
    begin, stop = parse_time(start, now), parse_time(end, now)
    if not begin < stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return Window(begin, min(stop, now))


def _hours(inst: Instance, w: Window) -> float:
    launched, terminated = inst.launched_at, inst.terminated_at
    if launched is None or (terminated is not None and terminated < w.start) or launched > w.stop:
        return 0.0
    begin = max(launched, w.start)
    end = min(w.stop, terminated) if terminated is not None else w.stop
    return (end - begin).total_seconds() / 3600.0


def _server_usage(inst: Instance, w: Window, now: dt.datetime) -> ServerUsage:
    started = inst.launched_at
    assert started is not None  # the query only selects launched servers
    ended = inst.terminated_at
    flavor = inst.flavor or {}
    return ServerUsage(
        instance_id=inst.uuid,
        name=inst.display_name,
        tenant_id=inst.project_id,
        flavor=str(flavor.get("name") or ""),
        memory_mb=inst.memory_mb,
        local_gb=inst.root_gb + (inst.ephemeral_gb or 0),
        vcpus=inst.vcpus,
        hours=_hours(inst, w),
        started_at=started,
        ended_at=ended,
        state="terminated" if ended is not None else inst.vm_state,
        uptime=int(((ended or now) - started).total_seconds()),
    )


def _servers(
    s: Session, w: Window, *, project_id: str | None, limit: int | None, marker: str | None
) -> Sequence[Instance]:
    q = select(Instance).where(
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > w.start),
        Instance.launched_at < w.stop,
    )
    if project_id is not None:
        q = q.where(Instance.project_id == project_id)
    if marker is not None:
        after = s.execute(select(Instance.project_id, Instance.uuid).where(Instance.uuid == marker)).first()
        if after is None:
            raise BadRequest(f"Marker {marker} could not be found.", kind="MarkerNotFound")
        q = q.where(tuple_(Instance.project_id, Instance.uuid) > tuple_(after.project_id, after.uuid))
    q = q.order_by(Instance.project_id, Instance.uuid)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


def usages(
    s: Session,
    w: Window,
    *,
    project_id: str | None = None,
    limit: int | None = None,
    marker: str | None = None,
) -> tuple[list[TenantUsage], list[ServerUsage]]:
    """Per-project usage over the page of servers, and that page's servers (for the next link)."""
    now = utcnow()
    tenants: dict[str, TenantUsage] = {}
    page: list[ServerUsage] = []
    for inst in _servers(s, w, project_id=project_id, limit=limit, marker=marker):
        one = _server_usage(inst, w, now)
        tenant = tenants.setdefault(one.tenant_id, TenantUsage(one.tenant_id, w))
        tenant.total_hours += one.hours
        tenant.total_vcpus_usage += one.vcpus * one.hours
        tenant.total_memory_mb_usage += one.memory_mb * one.hours
        tenant.total_local_gb_usage += one.local_gb * one.hours
        tenant.server_usages.append(one)
        page.append(one)
    return list(tenants.values()), page

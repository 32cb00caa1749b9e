"""Availability zones (§6.10): ``/os-availability-zone`` for everyone, ``/detail`` for admins.

``zones(s)`` is the one place that decides which zones exist and which hosts are in them:
a compute host is in its aggregate's zone (else ``nova``), the control services (conductor,
scheduler) are in ``internal``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from novalite.api.common import context, reject_nul, runtime
from novalite.context import RequestContext

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"


@dataclass(frozen=True)
class ServiceState:
    available: bool  # service is up
    active: bool  # service is enabled
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class Zone:
    name: str
    available: bool
    hosts: dict[str, dict[str, ServiceState]] = field(default_factory=dict)  # host -> binary -> state


def zones(s: Session, down_time: int = 60) -> list[Zone]:
    """Every zone, available ones first; ``internal`` holds the control services.

    A compute host's zone is its aggregate's (``novalite.services.aggregates``), else ``nova``.
    """
    from novalite.services import aggregates

    return [Zone(z.zone, z.available, {host: {binary: ServiceState(st.available, st.active, st.updated_at)
                                               for binary, st in services.items()}
                                        for host, services in z.hosts.items()})
            for z in aggregates.availability_zones(s, down_time)]


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def _hosts_view(zone: Zone) -> dict[str, Any]:
    return {host: {binary: {"available": st.available, "active": st.active, "updated_at": _iso(st.updated_at)}
                   for binary, st in services.items()}
            for host, services in zone.hosts.items()}


@router.get("/os-availability-zone")
def list_zones(request: Request, ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = zones(s, runtime(request).settings.service_down_time)
    return {"availabilityZoneInfo": [
        {"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": None}
        for z in found if z.name != INTERNAL_ZONE]}


@router.get("/os-availability-zone/detail")
def list_zones_detail(request: Request, ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-availability-zone:detail")
    with runtime(request).db.reader() as s:
        found = zones(s, runtime(request).settings.service_down_time)
    return {"availabilityZoneInfo": [
        {"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": _hosts_view(z) or None}
        for z in found]}

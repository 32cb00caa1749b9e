"""Availability zones (§6.10): ``/os-availability-zone`` for everyone, ``/detail`` for admins.

``zones(s)`` is the one place that decides which zones exist and which hosts are in them;
until host aggregates and a services table exist every compute host is in ``nova`` and the
control services (conductor, scheduler) are in ``internal``.
"""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.api.common import context, runtime
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance

router = APIRouter(prefix="/compute/v2.1")

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


def zones(s: Session) -> list[Zone]:
    """Every zone, available ones first; ``internal`` holds the control services.

    Compute hosts are, for now, the hosts servers have been placed on.
    """
    now = utcnow()
    up = ServiceState(available=True, active=True, updated_at=now)
    hosts = sorted(h for h in s.scalars(select(Instance.host).where(Instance.host.is_not(None)).distinct()) if h)
    controller = socket.gethostname()
    return [
        Zone(DEFAULT_ZONE, True, {h: {"nova-compute": up} for h in hosts}),
        Zone(INTERNAL_ZONE, True, {controller: {"nova-conductor": up, "nova-scheduler": up}}),
    ]


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def _hosts_view(zone: Zone) -> dict[str, Any]:
    return {host: {binary: {"available": st.available, "active": st.active, "updated_at": _iso(st.updated_at)}
                   for binary, st in services.items()}
            for host, services in zone.hosts.items()}


@router.get("/os-availability-zone")
def list_zones(request: Request, ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        found = zones(s)
    return {"availabilityZoneInfo": [
        {"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": None}
        for z in found if z.name != INTERNAL_ZONE]}


@router.get("/os-availability-zone/detail")
def list_zones_detail(request: Request, ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-availability-zone:detail")
    with runtime(request).db.reader() as s:
        found = zones(s)
    return {"availabilityZoneInfo": [
        {"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": _hosts_view(z) or None}
        for z in found]}

"""Availability zones (§6.10): ``/os-availability-zone`` for everyone, ``/detail`` for admins.

Which zones exist and which hosts are in them is decided in one place,
``novalite.services.zones.availability_zones``: a compute host is in its aggregate's zone
(else the default zone, ``nova``), the control services (conductor, scheduler) are in ``internal``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import reject_nul, request_context, runtime
from novalite.context import RequestContext
from novalite.services.zones import INTERNAL_ZONE, ZoneInfo, availability_zones

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])


def _iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def _hosts_view(zone: ZoneInfo) -> dict[str, Any]:
    return {
        host: {
            binary: {"available": st.available, "active": st.active, "updated_at": _iso(st.updated_at)}
            for binary, st in services.items()
        }
        for host, services in zone.hosts.items()
    }


def _zones(request: Request) -> list[ZoneInfo]:
    with runtime(request).db.reader() as s:
        return availability_zones(s, runtime(request).settings.service_down_time)


@router.get("/os-availability-zone")
def list_zones(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return {
        "availabilityZoneInfo": [
            {"zoneName": z.zone, "zoneState": {"available": z.available}, "hosts": None}
            for z in _zones(request)
            if z.zone != INTERNAL_ZONE
        ]
    }


@router.get("/os-availability-zone/detail")
def list_zones_detail(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-availability-zone:detail")
    return {
        "availabilityZoneInfo": [
            {"zoneName": z.zone, "zoneState": {"available": z.available}, "hosts": _hosts_view(z) or None}
            for z in _zones(request)
        ]
    }

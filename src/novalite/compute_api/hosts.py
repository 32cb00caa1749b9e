"""``/os-hosts`` (admin; 2.1-2.42, 404 from 2.43 where ``os-services`` and ``os-hypervisors``
replace it), as Nova answers it:

* ``GET /os-hosts[?zone=]``: ``{"hosts": [{"host_name", "service", "zone"}]}``, the enabled
  services with their topic (compute, conductor, scheduler) and zone;
* ``GET /os-hosts/{host}``: ``{"host": [{"resource": {...}}]}`` rows ``(total)``,
  ``(used_now)``, ``(used_max)`` and one per project with instances there; not a compute
  host: 404;
* ``PUT /os-hosts/{host}`` (``status`` / ``maintenance_mode``: enable or disable) and
  ``GET /os-hosts/{host}/reboot|shutdown|startup``: the driver cannot do these, so after
  Nova's checks (404 unknown host, 400 compute service down) they are 501.

The reads are ``services.os_hosts``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, reject_nul, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.errors import NotFound
from novalite.services import compute_services
from novalite.services import os_hosts as service


def _available(request: Request) -> None:
    if request_version(request) >= V(2, 43):  # 2.43: os-hosts is gone
        raise NotFound("The resource could not be found.")


router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul), Depends(_available)])

_ENABLE = {"type": "string", "enum": ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"]}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": _ENABLE, "maintenance_mode": _ENABLE},
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False,
}


def _down_time(request: Request) -> int:
    return int(runtime(request).settings.service_down_time)


@router.get("/os-hosts")
def list_hosts(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hosts:list")
    compute_services.ensure_control_services(runtime(request).db, _down_time(request))
    with runtime(request).db.reader() as s:
        rows = service.list_hosts(s, request.query_params.get("zone") or None)
    return {"hosts": [{"host_name": r.host_name, "service": r.service, "zone": r.zone} for r in rows]}


@router.get("/os-hosts/{host_name}")
def show_host(
    host_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hosts:show")
    with runtime(request).db.reader() as s:
        rows = service.host_resources(s, host_name)
    return {
        "host": [
            {
                "resource": {
                    "host": host_name,
                    "project": r.project,
                    "cpu": r.cpu,
                    "memory_mb": r.memory_mb,
                    "disk_gb": r.disk_gb,
                }
            }
            for r in rows
        ]
    }


def _host_action(request: Request, host_name: str) -> None:
    with runtime(request).db.reader() as s:
        service.check_host_action(s, host_name, _down_time(request))


@router.put("/os-hosts/{host_name}")
async def update_host(
    host_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hosts:update")
    body = await json_body(request)
    validate(UPDATE_SCHEMA, body)
    await run_in_threadpool(_host_action, request, host_name)
    return {"host": host_name}  # not reached: no driver here sets a host's status or maintenance


def _power_action(request: Request, ctx: RequestContext, host_name: str, action: str) -> dict[str, Any]:
    ctx.require_admin(f"os_compute_api:os-hosts:{action}")
    _host_action(request, host_name)
    return {"host": host_name, "power_action": action}  # not reached, as above


@router.get("/os-hosts/{host_name}/reboot")
def reboot_host(
    host_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _power_action(request, ctx, host_name, "reboot")


@router.get("/os-hosts/{host_name}/shutdown")
def shutdown_host(
    host_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _power_action(request, ctx, host_name, "shutdown")


@router.get("/os-hosts/{host_name}/startup")
def startup_host(
    host_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _power_action(request, ctx, host_name, "start")

"""Cinder v3 quota sets, limits, availability zones and extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
from novalite.db.base import utcnow
from novalite.domain.zones import DEFAULT_ZONE
from novalite.errors import PolicyNotAuthorized
from novalite.volume import quotas, records
from novalite.volume.api import VolumeRequest, boolean, respond, section, volume_request

router = APIRouter()


def _quota_project(vr: VolumeRequest, project_id: str) -> None:
    if not vr.ctx.is_admin and project_id != vr.ctx.project_id:
        raise PolicyNotAuthorized("volume_extension:quotas:show")


def _quota_set(project_id: str, limits: dict[str, int], used: dict[str, int] | None) -> dict[str, Any]:
    values: dict[str, int] = dict(limits)
    for resource in quotas.TYPED:
        values[f"{resource}_{records.DEFAULT_TYPE}"] = -1
    out: dict[str, Any] = {"id": project_id}
    for key, limit in values.items():
        base = key.split("_" + records.DEFAULT_TYPE)[0]
        out[key] = (
            limit
            if used is None
            else {
                "limit": limit,
                "in_use": used.get(base, 0) if base == key else 0,
                "reserved": 0,
                "allocated": 0,
            }
        )
    return out


@router.get("/os-quota-sets/{project_id}")
def show_quota(
    project_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    _quota_project(vr, project_id)
    usage = boolean("usage", request.query_params.get("usage", "false"))
    with runtime(request).db.reader() as s:
        body = _quota_set(
            project_id, quotas.limits(s, project_id), quotas.usage(s, project_id) if usage else None
        )
    return respond(vr, {"quota_set": body})


@router.get("/os-quota-sets/{project_id}/defaults")
def show_quota_defaults(
    project_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    _quota_project(vr, project_id)
    return respond(vr, {"quota_set": _quota_set(project_id, dict(quotas.DEFAULTS), None)})


def _update_quota(
    request: Request, vr: VolumeRequest, project_id: str, values: dict[str, Any]
) -> JSONResponse:
    with runtime(request).db.session() as s:
        quotas.set_limits(s, project_id, values)
        s.flush()
        body = _quota_set(project_id, quotas.limits(s, project_id), None)
    body.pop("id")
    return respond(vr, {"quota_set": body})


@router.put("/os-quota-sets/{project_id}")
async def update_quota(
    project_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)
) -> JSONResponse:
    vr.ctx.require_admin("volume_extension:quotas:update")
    values = section(await json_body(request), "quota_set")
    return await run_in_threadpool(_update_quota, request, vr, project_id, values)


@router.delete("/os-quota-sets/{project_id}")
def reset_quota(project_id: str, request: Request, vr: VolumeRequest = Depends(volume_request)) -> Response:
    vr.ctx.require_admin("volume_extension:quotas:delete")
    with runtime(request).db.session() as s:
        quotas.reset(s, project_id)
    return Response(status_code=200)


@router.get("/limits")
def show_limits(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    pid = vr.ctx.project_id
    with runtime(request).db.reader() as s:
        lim, used = quotas.limits(s, pid), quotas.usage(s, pid)
    absolute = {
        "maxTotalVolumes": lim["volumes"],
        "maxTotalVolumeGigabytes": lim["gigabytes"],
        "maxTotalSnapshots": lim["snapshots"],
        "maxTotalBackups": lim["backups"],
        "maxTotalBackupGigabytes": lim["backup_gigabytes"],
        "totalVolumesUsed": used["volumes"],
        "totalGigabytesUsed": used["gigabytes"],
        "totalSnapshotsUsed": used["snapshots"],
        "totalBackupsUsed": used["backups"],
        "totalBackupGigabytesUsed": used["backup_gigabytes"],
    }
    return respond(vr, {"limits": {"rate": [], "absolute": absolute}})


SERVICES = (("cinder-scheduler", "novalite"), ("cinder-volume", "novalite@lvm"))


@router.get("/os-services")
def list_services(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    """The embedded scheduler and volume service, always up (admin only, as Cinder)."""
    vr.ctx.require_admin("volume_extension:services:index")
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")
    q = request.query_params
    items = [
        {
            "binary": binary,
            "host": host,
            "zone": DEFAULT_ZONE,
            "status": "enabled",
            "state": "up",
            "updated_at": now,
            "disabled_reason": None,
        }
        for binary, host in SERVICES
        if q.get("binary") in (None, binary) and q.get("host") in (None, host, host.split("@")[0])
    ]
    return respond(vr, {"services": items})


@router.get("/os-availability-zone")
def list_zones(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return respond(
        vr, {"availabilityZoneInfo": [{"zoneName": DEFAULT_ZONE, "zoneState": {"available": True}}]}
    )


@router.get("/extensions")
def list_extensions(request: Request, vr: VolumeRequest = Depends(volume_request)) -> JSONResponse:
    return respond(vr, {"extensions": []})

"""os-assisted-volume-snapshots: the service API a volume driver that keeps volumes as files
(Cinder's remotefs drivers) calls so that the hypervisor takes or deletes a snapshot of an
attached volume (Nova's ``volume_snapshot_create`` / ``volume_snapshot_delete``).

Nova checks that the volume is attached (400 otherwise on create, 404 on delete), that its
server has a host and no task under way (409), and casts the work to that host; the answer is
``{"snapshot": {"id": <create_info.id>, "volumeId": ...}}``. On a simulated host the snapshot is
what Nova's fake driver makes of it: nothing to do. A host running real guests refuses (409):
novalite's QEMU driver keeps volumes as block devices, not files it could snapshot.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.services import assisted_snapshots as service

router = APIRouter(prefix="/compute/v2.1")
POLICY = "os_compute_api:os-assisted-volume-snapshots:"

_TEXT = {"type": "string", "minLength": 1}
CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "snapshot": {
            "type": "object",
            "properties": {
                "volume_id": _TEXT,
                "create_info": {
                    "type": "object",
                    "properties": {
                        "snapshot_id": _TEXT,
                        "type": {"type": "string", "enum": ["qcow2"]},
                        "new_file": _TEXT,
                        "id": _TEXT,
                    },
                    "required": ["snapshot_id", "type", "new_file"],
                    "additionalProperties": False,
                },
            },
            "required": ["volume_id", "create_info"],
            "additionalProperties": False,
        }
    },
    "required": ["snapshot"],
    "additionalProperties": False,
}


def _authorize(ctx: RequestContext, action: str) -> None:
    if "service" not in ctx.roles:  # Nova's default: the service role (Cinder); admins too here
        ctx.require_admin(POLICY + action)


@router.post("/os-assisted-volume-snapshots")
async def create(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    _authorize(ctx, "create")
    body = await json_body(request)
    validate(CREATE, body)
    snapshot = body["snapshot"]
    await run_in_threadpool(service.check, runtime(request).db, snapshot["volume_id"], BadRequest)
    info = snapshot["create_info"]
    return JSONResponse({"snapshot": {"id": info.get("id"), "volumeId": snapshot["volume_id"]}})


@router.delete("/os-assisted-volume-snapshots/{snapshot_id}")
async def delete(
    snapshot_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _authorize(ctx, "delete")
    raw = request.query_params.get("delete_info")
    if raw is None:
        raise BadRequest("Missing delete_info parameter", kind="HTTPBadRequest")
    try:
        info = json.loads(raw)
    except ValueError:
        raise BadRequest("Invalid delete_info parameter", kind="HTTPBadRequest") from None
    if not isinstance(info, dict) or "volume_id" not in info:
        raise BadRequest("'volume_id' must be specified in delete_info", kind="HTTPBadRequest")
    await run_in_threadpool(service.check, runtime(request).db, str(info["volume_id"]), NotFound)
    return Response(status_code=204)

"""The ``createImage`` and ``createBackup`` server actions (§6.4): snapshot an image-backed server
into a new image; a backup is a snapshot of ``image_type`` backup whose older siblings of the same
``backup_type`` beyond ``rotation`` are deleted (rotation 0 makes no image, only rotates). The work
is ``services.server_snapshot``.

Answer: 202 with ``Location`` before 2.45, ``{"image_id"}`` from 2.45.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.schemas.servers import METADATA, NAME
from novalite.context import RequestContext
from novalite.services import server_snapshot as service

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "createImage": {
            "type": "object",
            "properties": {"name": NAME, "metadata": METADATA},
            "required": ["name"],
            "additionalProperties": False,
        }
    },
    "required": ["createImage"],
    "additionalProperties": False,
}
BACKUP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "createBackup": {
            "type": "object",
            "properties": {
                "name": NAME,
                "metadata": METADATA,
                "backup_type": {"type": "string"},
                "rotation": {
                    "type": ["integer", "string"],
                    "pattern": "^[0-9]+$",
                    "minimum": 0,
                    "minLength": 1,
                },
            },
            "required": ["name", "backup_type", "rotation"],
            "additionalProperties": False,
        }
    },
    "required": ["createBackup"],
    "additionalProperties": False,
}


def _answer(request: Request, image_id: str | None) -> Response:
    if image_id is None:
        return Response(status_code=202)
    if request_version(request) >= V(2, 45):  # 2.45: the image id in the body, no Location
        return JSONResponse({"image_id": image_id}, status_code=202)
    return Response(
        status_code=202, headers={"Location": f"{runtime(request).public_url}/image/v2/images/{image_id}"}
    )


def create_image(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    validate(SCHEMA, body)
    return _answer(request, service.snapshot(runtime(request), ctx, server_id, body["createImage"], {}))


def create_backup(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    validate(BACKUP_SCHEMA, body)
    req = body["createBackup"]
    rotation = int(req["rotation"])
    rt = runtime(request)
    image_id = None
    if rotation > 0:
        extra = {"image_type": "backup", "backup_type": str(req["backup_type"])}
        image_id = service.snapshot(rt, ctx, server_id, req, extra)
    else:
        service.check_snapshottable(rt.db, ctx, server_id)
    service.rotate(rt.db, ctx, server_id, str(req["backup_type"]), rotation)
    return _answer(request, image_id)

"""The ``createImage`` and ``createBackup`` server actions (§6.4): snapshot an image-backed server
into a new image; a backup is a snapshot of ``image_type`` backup whose older siblings of the same
``backup_type`` beyond ``rotation`` are deleted (rotation 0 makes no image, only rotates).

The fake virt driver has no disk to read, so the snapshot's data is the server's base image data
(or a tiny placeholder): what clients observe is a new private image of ``image_type`` snapshot
that becomes active, owned by the server's project, carrying ``instance_uuid`` and
``base_image_ref`` and the requested metadata. Answer: 202 with ``Location`` before 2.45,
``{"image_id"}`` from 2.45.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.schemas.servers import METADATA, NAME
from novalite.compute_api.server_actions import (
    Transition,
    check_not_locked,
    check_state,
    record_action,
    register_action,
)
from novalite.context import RequestContext
from novalite.domain.states import PowerState, VmState
from novalite.errors import Conflict
from novalite.services import server_queries as queries

SNAPSHOT = Transition(
    "createImage",
    (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
    None,
    PowerState.RUNNING,
)
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


def _new_image(
    request: Request, ctx: RequestContext, server_id: str, req: dict[str, Any], extra: dict[str, str]
) -> tuple[str, str | None]:
    """Check the server, create the queued image; returns (image id, path of the base image's data)."""
    from novalite.image import service as images

    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, SNAPSHOT)
        if not inst.image_ref:
            raise Conflict(
                f"Cannot 'createImage' instance {inst.uuid}: snapshots of volume-backed servers are "
                "not supported here",
                kind="InstanceInvalidState",
            )
        base = images.get_image(s, ctx, inst.image_ref)
        owner_ctx = RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("member",))
        image = images.create_image(
            s,
            owner_ctx,
            {
                "name": req["name"],
                "visibility": "private",
                "disk_format": (base.disk_format if base else None) or "raw",
                "container_format": (base.container_format if base else None) or "bare",
                "min_ram": base.min_ram if base else 0,
                "min_disk": max(base.min_disk if base else 0, inst.root_gb),
                "instance_uuid": inst.uuid,
                "image_type": "snapshot",
                "base_image_ref": inst.image_ref,
                "user_id": inst.user_id,
                # the request's metadata overrides the system properties, as in Nova (Tempest sends
                # image_type=test); a backup's own keys come last so rotation still finds it
                **{k: str(v) for k, v in (req.get("metadata") or {}).items()},
                **extra,
            },
        )
        action = "createBackup" if extra else "createImage"
        record_action(s, ctx, inst, action, event=f"compute_{'backup' if extra else 'snapshot'}_instance")
        return image.id, base.path if base is not None else None


def _snapshot(
    request: Request, ctx: RequestContext, server_id: str, req: dict[str, Any], extra: dict[str, str]
) -> str:
    """Create the image and give it data; returns its id."""
    from novalite.image import service as images

    image_id, base_path = _new_image(request, ctx, server_id, req, extra)
    data = (
        Path(base_path).read_bytes() if base_path and Path(base_path).is_file() else images.tiny_image_bytes()
    )
    with runtime(request).db.reader() as s:
        owner = queries.get_instance(s, ctx, server_id).project_id
    images.upload_bytes(
        runtime(request),
        RequestContext(user_id=ctx.user_id, project_id=owner, roles=("member",)),
        image_id,
        data,
    )
    return image_id


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
    return _answer(request, _snapshot(request, ctx, server_id, body["createImage"], {}))


def _rotate(request: Request, ctx: RequestContext, server_id: str, backup_type: str, keep: int) -> None:
    """Delete this server's backups of ``backup_type`` beyond the ``keep`` newest."""
    from sqlalchemy import select

    from novalite.db.models.image import Image, ImageProperty
    from novalite.image import service as images

    def prop(name: str, value: str) -> Any:
        return Image.props.any((ImageProperty.name == name) & (ImageProperty.value == value))

    with runtime(request).db.session() as s:
        owner = queries.get_instance(s, ctx, server_id).project_id
        ids = list(
            s.scalars(
                select(Image.id)
                .where(
                    Image.deleted.is_(False),
                    prop("instance_uuid", server_id),
                    prop("image_type", "backup"),
                    prop("backup_type", backup_type),
                )
                .order_by(Image.created_at.desc(), Image.id.desc())
            )
        )
        owner_ctx = RequestContext(user_id=ctx.user_id, project_id=owner, roles=("member",))
        for image_id in ids[keep:]:
            images.delete_image(s, owner_ctx, image_id)


def create_backup(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    validate(BACKUP_SCHEMA, body)
    req = body["createBackup"]
    rotation = int(req["rotation"])
    image_id = None
    if rotation > 0:
        image_id = _snapshot(
            request, ctx, server_id, req, {"image_type": "backup", "backup_type": str(req["backup_type"])}
        )
    else:
        with runtime(request).db.reader() as s:
            inst = queries.get_instance(s, ctx, server_id)
            check_not_locked(ctx, inst)
            check_state(inst, SNAPSHOT)
    _rotate(request, ctx, server_id, str(req["backup_type"]), rotation)
    return _answer(request, image_id)


register_action("createImage", create_image)
register_action("createBackup", create_backup)

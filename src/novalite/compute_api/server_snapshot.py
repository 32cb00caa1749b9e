"""The ``createImage`` server action (§6.4): snapshot an image-backed server into a new image.

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
from novalite.compute_api import servers_query as sq
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

SNAPSHOT = Transition("createImage", (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED), None,
                      PowerState.RUNNING)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"createImage": {"type": "object", "properties": {"name": NAME, "metadata": METADATA},
                                   "required": ["name"], "additionalProperties": False}},
    "required": ["createImage"], "additionalProperties": False,
}


def _new_image(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> tuple[str, str | None]:
    """Check the server, create the queued image; returns (image id, path of the base image's data)."""
    from novalite.image import service as images

    req = body["createImage"]
    with runtime(request).db.session() as s:
        inst = sq.get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, SNAPSHOT)
        if not inst.image_ref:
            raise Conflict(f"Cannot 'createImage' instance {inst.uuid}: snapshots of volume-backed servers are "
                           "not supported here", kind="InstanceInvalidState")
        base = images.get_image(s, ctx, inst.image_ref)
        owner_ctx = RequestContext(user_id=inst.user_id, project_id=inst.project_id, roles=("member",))
        image = images.create_image(s, owner_ctx, {
            "name": req["name"], "visibility": "private",
            "disk_format": (base.disk_format if base else None) or "raw",
            "container_format": (base.container_format if base else None) or "bare",
            "min_ram": base.min_ram if base else 0, "min_disk": max(base.min_disk if base else 0, inst.root_gb),
            **{k: str(v) for k, v in (req.get("metadata") or {}).items()},
            "instance_uuid": inst.uuid, "image_type": "snapshot", "base_image_ref": inst.image_ref,
            "user_id": inst.user_id,
        })
        record_action(s, ctx, inst, "createImage", event="compute_snapshot_instance")
        return image.id, base.path if base is not None else None


def create_image(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    from novalite.image import service as images

    validate(SCHEMA, body)
    image_id, base_path = _new_image(request, ctx, server_id, body)
    data = Path(base_path).read_bytes() if base_path and Path(base_path).is_file() else images.tiny_image_bytes()
    with runtime(request).db.reader() as s:
        owner = sq.get_instance(s, ctx, server_id).project_id
    images.upload_bytes(runtime(request), RequestContext(user_id=ctx.user_id, project_id=owner, roles=("member",)),
                        image_id, data)
    if request_version(request) >= V(2, 45):  # 2.45: the image id in the body, no Location
        return JSONResponse({"image_id": image_id}, status_code=202)
    return Response(status_code=202, headers={"Location": f"{runtime(request).public_url}/image/v2/images/{image_id}"})


register_action("createImage", create_image)

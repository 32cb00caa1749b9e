"""The ``rebuild`` server action (§6.4): a new image (and optionally name, metadata, key, user data,
...) for an existing server; answers 202 with the server view and ``adminPass``.

The fake virt driver keeps nothing of a guest's disk, so the rebuild is the state change itself:
the server stays on its host, an active or errored server comes back ACTIVE, a stopped one stays
SHUTOFF. The request schema follows the microversions (personality until 2.56, description 2.19,
key_name 2.54, user_data 2.57, trusted certificates 2.63, hostname 2.90 / FQDN 2.94).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.orm import Session

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas import servers as schemas
from novalite.compute_api.server_actions import (
    Transition,
    check_not_locked,
    check_state,
    record_action,
    register_action,
)
from novalite.compute_api.views import servers as views
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, InstanceMetadata
from novalite.domain.states import PowerState, VmState
from novalite.errors import BadRequest
from novalite.services import server_queries as queries
from novalite.services.create_server.request import generate_password, normalize_ip

REBUILD = Transition(
    "rebuild",
    (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
    None,
    PowerState.RUNNING,
    needs_launched=False,
)


def rebuild_schema(version: Version) -> dict[str, Any]:
    create = schemas.create_schema(version)["properties"]["server"]["properties"]
    props: dict[str, Any] = {
        "imageRef": schemas.UUID,
        "name": schemas.NAME,
        "adminPass": {"type": "string"},
        "metadata": schemas.METADATA,
        "preserve_ephemeral": schemas.BOOLEAN,
        "OS-DCF:diskConfig": create["OS-DCF:diskConfig"],
        "accessIPv4": create["accessIPv4"],
        "accessIPv6": create["accessIPv6"],
    }
    if version < V(2, 57):  # personality until 2.56
        props["personality"] = copy.deepcopy(create["personality"])
    if version >= V(2, 19):  # 2.19: description
        props["description"] = schemas.DESCRIPTION
    if version >= V(2, 54):  # 2.54: key_name (null removes the key)
        props["key_name"] = {"oneOf": [schemas.NAME, {"type": "null"}]}
    if version >= V(2, 57):  # 2.57: user_data (null removes it)
        props["user_data"] = {"oneOf": [create["user_data"], {"type": "null"}]}
    if version >= V(2, 63):  # 2.63: trusted image certificates
        props["trusted_image_certificates"] = create["trusted_image_certificates"]
    if version >= V(2, 90):  # 2.90: hostname (2.94: FQDN)
        props["hostname"] = create["hostname"]
    return {
        "type": "object",
        "properties": {
            "rebuild": {
                "type": "object",
                "properties": props,
                "required": ["imageRef"],
                "additionalProperties": False,
            }
        },
        "required": ["rebuild"],
        "additionalProperties": False,
    }


def _check_image(s: Session, ctx: RequestContext, inst: Instance, image_id: str) -> Any:
    """The new image must be visible, active and fit the server's flavor (as at create)."""
    from novalite.image.service import get_image

    image = get_image(s, ctx, image_id)
    if image is None:
        raise BadRequest("Cannot find requested image", kind="ImageNotFound")
    if image.status != "active":
        raise BadRequest(f"Image {image.id} is not active.", kind="ImageNotActive")
    if inst.memory_mb < int(image.min_ram or 0):
        raise BadRequest("Flavor's memory is too small for requested image.", kind="FlavorMemoryTooSmall")
    if inst.root_gb and int(image.min_disk or 0) > inst.root_gb:
        raise BadRequest(
            "Flavor's disk is too small for requested image.", kind="FlavorDiskSmallerThanMinDisk"
        )
    if not inst.image_ref and image_id:
        raise BadRequest(
            "Rebuilding a volume-backed server with a new image is not supported here.",
            kind="ImageUnacceptable",
        )
    return image


def _apply(s: Session, ctx: RequestContext, inst: Instance, req: dict[str, Any], image: Any) -> None:
    inst.image_ref = image.id
    sysmeta = {k: v for k, v in (inst.system_metadata or {}).items() if not k.startswith("image_")}
    sysmeta.update({f"image_{k}": str(v)[:255] for k, v in image.properties.items()})
    sysmeta.update(
        image_base_image_ref=image.id,
        image_min_ram=str(image.min_ram or 0),
        image_min_disk=str(max(int(image.min_disk or 0), inst.root_gb)),
    )
    inst.system_metadata = sysmeta
    simple = {
        "name": "display_name",
        "description": "display_description",
        "hostname": "hostname",
        "user_data": "user_data",
    }
    for key, attr in simple.items():
        if key in req:
            setattr(inst, attr, req[key].strip() if key == "name" else req[key])
    for key, attr in (("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6")):
        if key in req:
            setattr(inst, attr, normalize_ip(req[key]) or None)
    if "OS-DCF:diskConfig" in req:
        inst.auto_disk_config = req["OS-DCF:diskConfig"] == "AUTO"
    if "trusted_image_certificates" in req:
        inst.trusted_certs = list(req["trusted_image_certificates"] or []) or None
    if "key_name" in req:
        _set_key(s, ctx, inst, req["key_name"])
    if "metadata" in req:
        s.execute(delete(InstanceMetadata).where(InstanceMetadata.instance_uuid == inst.uuid))
        s.add_all(
            InstanceMetadata(instance_uuid=inst.uuid, key=k, value=v) for k, v in req["metadata"].items()
        )


def _set_key(s: Session, ctx: RequestContext, inst: Instance, name: str | None) -> None:
    if name is None:
        inst.key_name = inst.key_data = None
        return
    from novalite.services.keypairs import get_keypair

    keypair = get_keypair(s, ctx.user_id, name)
    if keypair is None:
        raise BadRequest("Invalid key_name provided.", kind="KeypairNotFound")
    inst.key_name, inst.key_data = name, getattr(keypair, "public_key", None)


def _check_limits(s: Session, inst: Instance, req: dict[str, Any]) -> None:
    from novalite.services import quotas

    if "metadata" in req:
        quotas.check_metadata_quota(s, inst.project_id, req["metadata"])
    if req.get("personality"):
        quotas.check_injected_files(
            s, inst.project_id, [(f.get("path", ""), f.get("contents", "")) for f in req["personality"]]
        )


def rebuild(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    version = request_version(request)
    validate(rebuild_schema(version), body)
    req = body["rebuild"]
    password = req.get("adminPass") or generate_password()
    rt = runtime(request)
    with rt.db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, REBUILD)
        image = _check_image(s, ctx, inst, req["imageRef"])
        _check_limits(s, inst, req)
        _apply(s, ctx, inst, req, image)
        stopped = inst.vm_state == VmState.STOPPED
        inst.vm_state = VmState.STOPPED if stopped else VmState.ACTIVE
        inst.power_state = int(PowerState.SHUTDOWN if stopped else PowerState.RUNNING)
        inst.task_state, inst.updated_at = None, utcnow()
        inst.launched_at = inst.launched_at or utcnow()
        record_action(s, ctx, inst, "rebuild", event="compute_rebuild_instance")
    with rt.db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        extras = queries.load_extras(s, [inst], server_groups=True)[inst.uuid]
    view = views.server_rebuild_view(request, inst, extras, version=version, ctx=ctx, admin_pass=password)
    return JSONResponse({"server": view}, status_code=202)


register_action("rebuild", rebuild)

"""The ``rebuild`` server action (§6.4): a new image (and optionally name, metadata, key, user data,
...) for an existing server.

The fake virt driver keeps nothing of a guest's disk, so on a simulated host the rebuild is the
state change itself: the server stays on its host, an active or errored server comes back ACTIVE,
a stopped one stays SHUTOFF (``domain.actions.after_rebuild``). On a host running real guests the
server gets task state ``rebuilding`` and, once that is committed, the rebuild is cast to the
host's agent (``compute.guest_actions.rebuild_instance``), which ends it in the same states.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute.guest_rpc import RebuildInstance
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance, InstanceMetadata
from novalite.domain.actions import REBUILD, after_rebuild
from novalite.domain.states import TaskState
from novalite.errors import BadRequest
from novalite.image.service import get_image
from novalite.messaging.messages import context_to_dict
from novalite.runtime import Runtime
from novalite.services import quotas
from novalite.services.create_server.request import normalize_ip
from novalite.services.keypairs import get_keypair
from novalite.services.server_actions import (
    Handoff,
    agent_of,
    check_not_locked,
    check_state,
    hand_off,
    record_action,
)
from novalite.services.server_queries import get_instance

REBUILD_TASK = TaskState.REBUILDING


def _check_image(s: Session, ctx: RequestContext, inst: Instance, image_id: str) -> Any:
    """The new image must be visible, active and fit the server's flavor (as at create)."""
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
    keypair = get_keypair(s, ctx.user_id, name)
    if keypair is None:
        raise BadRequest("Invalid key_name provided.", kind="KeypairNotFound")
    inst.key_name, inst.key_data = name, getattr(keypair, "public_key", None)


def _check_limits(s: Session, inst: Instance, req: dict[str, Any]) -> None:
    if "metadata" in req:
        quotas.check_metadata_quota(s, inst.project_id, req["metadata"])
    if req.get("personality"):
        quotas.check_injected_files(
            s, inst.project_id, [(f.get("path", ""), f.get("contents", "")) for f in req["personality"]]
        )


def rebuild(rt: Runtime, ctx: RequestContext, server_id: str, req: dict[str, Any]) -> None:
    """Rebuild the caller's server from ``req`` (the validated ``rebuild`` body)."""
    with rt.db.session() as s:
        inst = get_instance(s, ctx, server_id)
        check_not_locked(ctx, inst)
        check_state(inst, REBUILD)
        image = _check_image(s, ctx, inst, req["imageRef"])
        _check_limits(s, inst, req)
        _apply(s, ctx, inst, req, image)
        agent = agent_of(rt, inst)
        handoff = None
        if agent is not None and inst.host is not None:  # a real guest: its agent rebuilds it
            inst.task_state, inst.updated_at = TaskState.REBUILDING, utcnow()
            record_action(s, ctx, inst, "rebuild", event=None)
            message = RebuildInstance(
                context_to_dict(ctx), inst.uuid, inst.host, task_state=TaskState.REBUILDING
            )
            handoff = Handoff(agent, inst.uuid, TaskState.REBUILDING, message)
        else:  # a simulated host: the transition is the rebuild (the agent notifies for real guests)
            if notifications.notifier_of(s) is not None:  # the payload shows the rebuild under way
                inst.task_state = REBUILD_TASK
                notifications.rebuild(s, "start", inst.uuid)
            vm_state, power = after_rebuild(inst.vm_state)
            inst.vm_state, inst.power_state = vm_state, int(power)
            inst.task_state, inst.updated_at = None, utcnow()
            inst.launched_at = inst.launched_at or utcnow()
            record_action(s, ctx, inst, "rebuild", event="compute_rebuild_instance")
            notifications.rebuild(s, "end", inst.uuid)
    hand_off(rt, handoff)

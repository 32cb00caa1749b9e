"""Changing and deleting a server (PUT and DELETE /servers/{id}, §6.3)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, RequestSpec
from novalite.domain.states import VmState
from novalite.errors import Conflict, Forbidden, NotFound
from novalite.image import service as images
from novalite.image import store
from novalite.runtime import Runtime
from novalite.services.create_server.request import normalize_ip
from novalite.services.server_queries import get_instance

LOG = logging.getLogger(__name__)


def _apply_update(inst: Instance, changes: dict[str, Any]) -> None:
    if "name" in changes:
        inst.display_name = changes["name"].strip()
    if "description" in changes:
        inst.display_description = changes["description"]
    if "accessIPv4" in changes:
        inst.access_ip_v4 = normalize_ip(changes["accessIPv4"]) or None
    if "accessIPv6" in changes:
        inst.access_ip_v6 = normalize_ip(changes["accessIPv6"]) or None
    if "OS-DCF:diskConfig" in changes:
        inst.auto_disk_config = changes["OS-DCF:diskConfig"] == "AUTO"
    if "hostname" in changes:
        inst.hostname = changes["hostname"]
    inst.updated_at = utcnow()


def update_server(db: Database, ctx: RequestContext, server_id: str, changes: dict[str, Any]) -> None:
    """``changes``: the validated ``server`` of the PUT body."""
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        if "pinned_availability_zone" in changes:  # only sent from 2.104 (the schema refuses it before)
            _repin(s, inst, changes["pinned_availability_zone"])
        _apply_update(inst, changes)


def _repin(s: Session, inst: Instance, requested: str | None) -> None:
    """2.104: null unpins; a zone pins an unpinned server to the zone it is in; else 409.
    The pin is the request spec's zone (moves schedule within it) and the server's requested zone
    (its ``pinned_availability_zone``)."""
    row = s.get(RequestSpec, inst.uuid)
    spec = dict(row.spec or {}) if row is not None else {}
    current = spec.get("availability_zone") if row is not None else inst.requested_availability_zone
    if requested is not None:
        if current is not None:
            if requested != current:
                raise Conflict(
                    "Cannot change pinned availability zone directly. Unpin first by setting "
                    "pinned_availability_zone to null."
                )
            return
        zone = inst.availability_zone or ""
        if requested != zone:
            raise Conflict(
                f"Server can only be pinned to its current availability zone '{zone}', "
                f"but '{requested}' was requested."
            )
    elif current is None:
        return
    if row is not None:
        row.spec = {**spec, "availability_zone": requested}
    inst.requested_availability_zone = requested


def delete_server(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """In any state (BUILD included); 409 when locked and the caller is not an admin."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {server_id} is locked", kind="InstanceIsLocked")
        shelved_image = _shelved_image_id(inst)
        owner = RequestContext(user_id=ctx.user_id, project_id=inst.project_id, roles=("member",))
    compute = rt.services.compute_api
    if compute is not None:
        compute.delete_instance(ctx, server_id)
    else:
        _delete_locally(rt.db, ctx, server_id)
    if shelved_image:
        _delete_shelved_image(rt, owner, shelved_image)


def _shelved_image_id(inst: Instance) -> str | None:
    """The ``<name>-shelved`` snapshot of a SHELVED or SHELVED_OFFLOADED server (Nova deletes it
    with the server)."""
    if inst.vm_state not in (VmState.SHELVED, VmState.SHELVED_OFFLOADED):
        return None
    image_id = (inst.system_metadata or {}).get("shelved_image_id")
    return str(image_id) if image_id else None


def _delete_shelved_image(rt: Runtime, owner: RequestContext, image_id: str) -> None:
    """As the server's project (the image's owner); an image already gone or protected is left
    as it is (Nova logs and deletes the server anyway)."""
    try:
        rt.db.write(lambda s: images.delete_image(s, owner, image_id))
    except (NotFound, Forbidden) as exc:
        LOG.warning("shelved image %s of a deleted server not deleted: %s", image_id, exc)
        return
    store.remove(rt.settings.data_dir, image_id)


def _delete_locally(db: Database, ctx: RequestContext, server_id: str) -> None:
    """Without a compute agent nothing runs the server: marking the row deleted is the whole job."""
    LOG.warning("no compute_api service; deleting %s in the database only", server_id)
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        now = utcnow()
        inst.vm_state, inst.task_state, inst.deleted = "deleted", None, True
        inst.deleted_at = inst.terminated_at = inst.updated_at = now

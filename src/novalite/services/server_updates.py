"""Changing and deleting a server (PUT and DELETE /servers/{id}, §6.3)."""

from __future__ import annotations

import logging
from typing import Any

from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance
from novalite.errors import Conflict
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
        _apply_update(get_instance(s, ctx, server_id), changes)


def delete_server(rt: Runtime, ctx: RequestContext, server_id: str) -> None:
    """In any state (BUILD included); 409 when locked and the caller is not an admin."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {server_id} is locked", kind="InstanceIsLocked")
    compute = rt.services.compute_api
    if compute is not None:
        compute.delete_instance(ctx, server_id)
    else:
        _delete_locally(rt.db, ctx, server_id)


def _delete_locally(db: Database, ctx: RequestContext, server_id: str) -> None:
    """Without a compute agent nothing runs the server: marking the row deleted is the whole job."""
    LOG.warning("no compute_api service; deleting %s in the database only", server_id)
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        now = utcnow()
        inst.vm_state, inst.task_state, inst.deleted = "deleted", None, True
        inst.deleted_at = inst.terminated_at = inst.updated_at = now

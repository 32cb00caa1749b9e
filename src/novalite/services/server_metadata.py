"""A server's metadata, tags (2.26) and the password its guest posted (§6.11).

Writes take the caller's server through ``writable``: not while building or in error, not when
locked (409). Each writer opens its own unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import Database
from novalite.db.models.compute import Instance, InstanceMetadata, InstanceTag
from novalite.domain.actions import WRITABLE_STATES
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.services import quotas
from novalite.services.server_actions import check_not_locked
from novalite.services.server_queries import get_instance

MAX_TAGS = 50
PASSWORD_KEY = "password"


def writable(ctx: RequestContext, inst: Instance, action: str) -> None:
    """Metadata and tag writes: not while building/erroring (409), not when locked (409)."""
    check_not_locked(ctx, inst)
    if inst.vm_state not in WRITABLE_STATES:
        raise Conflict(
            f"Cannot '{action}' instance {inst.uuid} while it is in vm_state {inst.vm_state}",
            kind="InstanceInvalidState",
        )


# -- metadata --------------------------------------------------------------------------------------


def metadata(s: Session, instance_uuid: str) -> dict[str, str]:
    rows = s.scalars(select(InstanceMetadata).where(InstanceMetadata.instance_uuid == instance_uuid))
    return {r.key: r.value for r in rows}


def server_metadata(db: Database, ctx: RequestContext, server_id: str) -> dict[str, str]:
    with db.reader() as s:
        return metadata(s, get_instance(s, ctx, server_id).uuid)


def write_metadata(
    db: Database, ctx: RequestContext, server_id: str, new: dict[str, str], *, replace: bool
) -> dict[str, str]:
    """Merge (POST, PUT of one key) or replace (PUT) under the metadata quota (403)."""
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        writable(ctx, inst, "update_metadata")
        current = {} if replace else metadata(s, inst.uuid)
        merged = {**current, **new}
        quotas.check_metadata_quota(s, inst.project_id, merged)
        s.execute(delete(InstanceMetadata).where(InstanceMetadata.instance_uuid == inst.uuid))
        s.add_all(InstanceMetadata(instance_uuid=inst.uuid, key=k, value=v) for k, v in merged.items())
        return merged


def delete_metadata_item(db: Database, ctx: RequestContext, server_id: str, key: str) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        if key not in metadata(s, inst.uuid):
            raise NotFound("Metadata item was not found")
        writable(ctx, inst, "delete_instance_metadata")
        s.execute(
            delete(InstanceMetadata).where(
                InstanceMetadata.instance_uuid == inst.uuid, InstanceMetadata.key == key
            )
        )


# -- tags ------------------------------------------------------------------------------------------


def tag_missing(server_id: str, tag: str) -> NotFound:
    return NotFound(f"Instance {server_id} has no tag '{tag}'", kind="InstanceTagNotFound")


def _tags(s: Session, instance_uuid: str) -> list[str]:
    return list(
        s.scalars(
            select(InstanceTag.tag)
            .where(InstanceTag.instance_uuid == instance_uuid)
            .order_by(InstanceTag.tag)
        )
    )


def server_tags(db: Database, ctx: RequestContext, server_id: str) -> list[str]:
    with db.reader() as s:
        return _tags(s, get_instance(s, ctx, server_id).uuid)


def replace_tags(db: Database, ctx: RequestContext, server_id: str, tags: list[str]) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        writable(ctx, inst, "update tags")
        s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
        s.add_all(InstanceTag(instance_uuid=inst.uuid, tag=t) for t in tags)


def delete_tags(db: Database, ctx: RequestContext, server_id: str) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        writable(ctx, inst, "delete tags")
        s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))


def add_tag(db: Database, ctx: RequestContext, server_id: str, tag: str) -> bool:
    """Returns False when the server already had the tag."""
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        writable(ctx, inst, "update tag")
        tags = _tags(s, inst.uuid)
        if tag in tags:
            return False
        if len(tags) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        s.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
        return True


def delete_tag(db: Database, ctx: RequestContext, server_id: str, tag: str) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        writable(ctx, inst, "delete tag")
        if tag not in _tags(s, inst.uuid):
            raise tag_missing(server_id, tag)
        s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid, InstanceTag.tag == tag))


# -- os-server-password ----------------------------------------------------------------------------


def password(db: Database, ctx: RequestContext, server_id: str) -> Any:
    """The encrypted password the guest posted (system metadata), or ``""``."""
    with db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        return (inst.system_metadata or {}).get(PASSWORD_KEY, "")


def clear_password(db: Database, ctx: RequestContext, server_id: str) -> None:
    with db.session() as s:
        inst = get_instance(s, ctx, server_id)
        inst.system_metadata = {k: v for k, v in (inst.system_metadata or {}).items() if k != PASSWORD_KEY}

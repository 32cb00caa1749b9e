"""Neutron's standard-attribute tags, stored by resource id (ids are unique across resource
kinds, so one table serves networks, subnets, ports and security groups)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.db.models.network import NetworkTag
from novalite.errors import BadRequest

MAX_TAG_LENGTH = 255


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH or "," in tag or "/" in tag:
        raise BadRequest(f"Invalid input for operation: '{tag}' is not a valid tag.", kind="InvalidInput")
    return tag


def tags_of(s: Session, resource_id: str) -> list[str]:
    return sorted(s.scalars(select(NetworkTag.tag).where(NetworkTag.resource_id == resource_id)))


def replace(s: Session, resource_id: str, tags: Iterable[Any]) -> list[str]:
    wanted = sorted({check_tag(t) for t in tags})
    clear(s, resource_id)
    for tag in wanted:
        s.add(NetworkTag(resource_id=resource_id, tag=tag))
    s.flush()
    return wanted


def add(s: Session, resource_id: str, tag: str) -> bool:
    """Add one tag; False when it was already there."""
    if s.get(NetworkTag, (resource_id, check_tag(tag))) is not None:
        return False
    s.add(NetworkTag(resource_id=resource_id, tag=tag))
    return True


def remove(s: Session, resource_id: str, tag: str) -> bool:
    row = s.get(NetworkTag, (resource_id, tag))
    if row is None:
        return False
    s.delete(row)
    return True


def clear(s: Session, *resource_ids: str) -> None:
    if resource_ids:
        s.execute(delete(NetworkTag).where(NetworkTag.resource_id.in_(resource_ids)))

"""Per-project quota overrides stored as ``(project_id, resource, hard_limit)`` rows over a
dict of defaults: Neutron's ``NetworkQuota`` and Cinder's ``VolumeQuota`` tables. The callers
keep their own API's validation messages; this module only reads, writes and parses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.network import NetworkQuota
from novalite.db.models.volume import VolumeQuota

Override = TypeVar("Override", NetworkQuota, VolumeQuota)
MAX_LIMIT = 2**31 - 1


def limits(s: Session, model: type[Override], project_id: str, defaults: Mapping[str, int]) -> dict[str, int]:
    """``defaults`` with the project's stored overrides of those resources applied."""
    out = dict(defaults)
    for row in s.scalars(select(model).where(model.project_id == project_id)):
        if row.resource in out:
            out[row.resource] = row.hard_limit
    return out


def integer_limit(value: object) -> int:
    """A requested limit as an int (ints and integer strings, not booleans); ValueError otherwise.
    Whether it is in range (-1 .. MAX_LIMIT) is the caller's check, with its own message."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    return int(value)


def store(s: Session, model: type[Override], project_id: str, resource: str, hard_limit: int) -> None:
    """Insert or update the project's override of ``resource``."""
    row = s.get(model, (project_id, resource))
    if row is None:
        s.add(model(project_id=project_id, resource=resource, hard_limit=hard_limit))
    else:
        row.hard_limit = hard_limit


def reset(s: Session, model: type[Override], project_id: str) -> None:
    """Drop every override of the project (its limits are the defaults again)."""
    for row in s.scalars(select(model).where(model.project_id == project_id)):
        s.delete(row)

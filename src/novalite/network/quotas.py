"""Neutron quotas: per-project limits (defaults overridden by ``NetworkQuota`` rows), usage
counted from the live rows, and the check Neutron answers with 409 ``OverQuota``.

A limit of -1 means unlimited. Callers that check and then create should hold
``runtime.db.serialized(quota_lock(project_id))`` so two creations cannot both pass.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from novalite.db.models.network import (
    FloatingIP,
    Network,
    NetworkQuota,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from novalite.errors import BadRequest, Conflict
from novalite.services import quota_overrides

DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "security_group": 10,
    "security_group_rule": 100,
    "router": 10,
    "floatingip": 50,
}
_MODELS = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
    "router": Router,
    "floatingip": FloatingIP,
}


def quota_lock(project_id: str) -> str:
    return f"network-quota:{project_id}"


def limits(s: Session, project_id: str) -> dict[str, int]:
    return quota_overrides.limits(s, NetworkQuota, project_id, DEFAULTS)


def usage(s: Session, project_id: str) -> dict[str, int]:
    return {resource: count(s, project_id, resource) for resource in _MODELS}


def count(s: Session, project_id: str, resource: str) -> int:
    model = _MODELS[resource]
    q = select(func.count()).select_from(model).where(model.project_id == project_id)  # type: ignore[attr-defined]
    return int(s.scalar(q) or 0)


def headroom(s: Session, project_id: str, resource: str) -> int | None:
    """How many more ``resource`` the project may create (None: unlimited; may be negative)."""
    limit = limits(s, project_id)[resource]
    if limit < 0:
        return None
    return limit - count(s, project_id, resource)


def check(s: Session, project_id: str, resource: str, delta: int = 1) -> None:
    """Raise Neutron's 409 OverQuota when ``delta`` more would exceed the limit."""
    room = headroom(s, project_id, resource)
    if room is not None and delta > room:
        raise Conflict(f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")


def set_limits(s: Session, project_id: str, values: dict[str, object]) -> None:
    """Store overrides; 400 for unknown resources or values that are not integers >= -1."""
    if not project_id or len(project_id) > 64:
        raise BadRequest(
            f"Invalid input for project_id. Reason: '{project_id}' is not a valid project id.",
            kind="InvalidInput",
        )
    for resource, value in values.items():
        if resource in ("check_limit", "force", "project_id", "tenant_id"):  # request flags, not limits
            continue
        if resource not in DEFAULTS:
            raise BadRequest(f"Unrecognized attribute(s) '{resource}'", kind="HTTPBadRequest")
        try:
            number = quota_overrides.integer_limit(value)
        except ValueError:
            raise BadRequest(
                f"Invalid input for {resource}. Reason: '{value}' is not an integer.", kind="InvalidInput"
            ) from None
        if number < -1 or number > quota_overrides.MAX_LIMIT:
            raise BadRequest(
                f"Invalid input for {resource}. Reason: '{value}' should be >= -1.", kind="InvalidInput"
            )
        quota_overrides.store(s, NetworkQuota, project_id, resource, number)


def reset(s: Session, project_id: str) -> None:
    quota_overrides.reset(s, NetworkQuota, project_id)


def projects_with_overrides(s: Session) -> list[str]:
    return sorted(set(s.scalars(select(NetworkQuota.project_id))))

"""Neutron quotas: per-project limits (defaults overridden by ``NetworkQuota`` rows), usage
counted from the live rows, and the check Neutron answers with 409 ``OverQuota``.

A limit of -1 means unlimited. Callers that check and then create should hold
``runtime.db.serialized(quota_lock(project_id))`` so two creations cannot both pass.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from novalite.db.models.network import Network, NetworkQuota, Port, SecurityGroup, SecurityGroupRule, Subnet
from novalite.errors import BadRequest, Conflict

DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "security_group": 10,
    "security_group_rule": 100,
}
_MODELS = {
    "network": Network, "subnet": Subnet, "port": Port,
    "security_group": SecurityGroup, "security_group_rule": SecurityGroupRule,
}


def quota_lock(project_id: str) -> str:
    return f"network-quota:{project_id}"


def limits(s: Session, project_id: str) -> dict[str, int]:
    out = dict(DEFAULTS)
    for row in s.scalars(select(NetworkQuota).where(NetworkQuota.project_id == project_id)):
        if row.resource in out:
            out[row.resource] = row.hard_limit
    return out


def usage(s: Session, project_id: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for resource, model in _MODELS.items():
        q = select(func.count()).select_from(model).where(model.project_id == project_id)  # type: ignore[attr-defined]
        out[resource] = int(s.scalar(q) or 0)
    return out


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
        raise BadRequest(f"Invalid input for project_id. Reason: '{project_id}' is not a valid project id.",
                         kind="InvalidInput")
    for resource, value in values.items():
        if resource in ("check_limit", "force", "project_id", "tenant_id"):  # request flags, not limits
            continue
        if resource not in DEFAULTS:
            raise BadRequest(f"Unrecognized attribute(s) '{resource}'", kind="HTTPBadRequest")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadRequest(f"Invalid input for {resource}. Reason: '{value}' is not an integer.",
                             kind="InvalidInput")
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"Invalid input for {resource}. Reason: '{value}' is not an integer.",
                             kind="InvalidInput") from None
        if number < -1 or number > 2**31 - 1:
            raise BadRequest(f"Invalid input for {resource}. Reason: '{value}' should be >= -1.",
                             kind="InvalidInput")
        row = s.get(NetworkQuota, (project_id, resource))
        if row is None:
            s.add(NetworkQuota(project_id=project_id, resource=resource, hard_limit=number))
        else:
            row.hard_limit = number


def reset(s: Session, project_id: str) -> None:
    for row in s.scalars(select(NetworkQuota).where(NetworkQuota.project_id == project_id)):
        s.delete(row)


def projects_with_overrides(s: Session) -> list[str]:
    return sorted(set(s.scalars(select(NetworkQuota.project_id))))

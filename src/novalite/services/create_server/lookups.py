"""Read-only lookups into parts other engineers own (server groups, aggregates, hosts).

Each function tolerates the owning model module not existing yet: the registry loader skips
unwritten modules, so a missing module means "no such feature" (no groups, only the default
availability zone, hosts unknown) rather than an error.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext

DEFAULT_AZ = "nova"


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"novalite.db.models.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"novalite.db.models.{name}":
            return None
        raise


def _model(module: str, *names: str) -> Any:
    mod = _module(module)
    if mod is None:
        return None
    for name in names:
        cls = getattr(mod, name, None)
        if cls is not None:
            return cls
    return None


def server_group_visible(s: Session, ctx: RequestContext, group_uuid: str) -> bool:
    """Whether ctx may use the server group (False when groups are not built at all)."""
    try:
        from novalite.services import server_groups
    except ModuleNotFoundError as exc:
        if exc.name != "novalite.services.server_groups":
            raise
        return False
    return server_groups.get_group(s, ctx, group_uuid) is not None


def availability_zones(s: Session) -> set[str]:
    """The AZ names a server may ask for: the default zone plus every aggregate's zone."""
    zones = {DEFAULT_AZ}
    cls = _model("aggregates", "Aggregate")
    if cls is not None and hasattr(cls, "availability_zone"):
        query = select(cls.availability_zone).where(cls.availability_zone.is_not(None))
        if hasattr(cls, "deleted"):
            query = query.where(cls.deleted.is_(False))
        zones |= {z for (z,) in s.execute(query) if z}
    return zones


def host_aggregate_zones(s: Session, host: str) -> set[str] | None:
    """AZs set by the aggregates holding ``host``; None when aggregates are unknown here."""
    cls = _model("aggregates", "Aggregate")
    hosts_cls = _model("aggregates", "AggregateHost")
    if cls is None or hosts_cls is None or not hasattr(cls, "availability_zone"):
        return None
    query = (
        select(cls.availability_zone)
        .join(hosts_cls, hosts_cls.aggregate_id == cls.id)
        .where(hosts_cls.host == host)
    )
    return {z for (z,) in s.execute(query) if z}


def compute_host_exists(s: Session, host: str | None, node: str | None) -> bool | None:
    """Whether a compute host/node of that name exists; None when hosts are unknown here."""
    cls = _model("placement", "ComputeNode") or _model("compute", "ComputeNode")
    if cls is None:
        return None
    query = select(cls)
    if host is not None and hasattr(cls, "host"):
        query = query.where(cls.host == host)
    if node is not None and hasattr(cls, "hypervisor_hostname"):
        query = query.where(cls.hypervisor_hostname == node)
    return s.execute(query.limit(1)).first() is not None


def forget_group_members(s: Session, instance_uuids: list[str]) -> None:
    """Compensation helper: drop group memberships of servers that were never handed off."""
    cls = _model("server_groups", "InstanceGroupMember")
    if cls is not None:
        s.execute(delete(cls).where(cls.instance_uuid.in_(instance_uuids)))

"""Server groups (§6.7): create/list/get/delete with quotas, membership, scheduler snapshots.

Quotas (§7): ``server_groups`` is counted per project (and per user when a per-user limit
exists) through a counter registered with ``novalite.services.quotas``; create checks with
delta 1, inserts, then rechecks with delta 0 and removes the new group on failure (a
concurrent create may have slipped past the first check). ``server_group_members`` is counted
per group per user: ``add_member`` checks delta 1, inserts, rechecks delta 0 and removes the
member on failure. Callers hold ``runtime.db.serialized(f"quota:{project_id}")`` around both.

Contracts used elsewhere:
  ``get_group(s, ctx, group_uuid) -> InstanceGroup | None`` (None when absent, deleted, or
  another project's group for a non-admin);
  ``add_member(s, ctx, group_uuid, instance_uuid)`` (404 for an unknown group, 403 over quota);
  ``group_placement(s, group_uuid) -> GroupPlacement | None`` (policy, rules, live members' hosts:
  what the scheduler's filters and the compute side's late check read, Core statements only);
  ``late_policy_violation(s, group_uuid, instance_uuid, host) -> str | None`` (the compute side's
  check of the policy against where the members run now, Nova's ``_validate_instance_group_policy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import new_uuid, utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.server_groups import InstanceGroup, InstanceGroupMember
from novalite.domain.server_groups import max_per_host
from novalite.errors import BadRequest, NotFound, OverQuota
from novalite.services import quotas

POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
GROUPS_OVER = "Quota exceeded, too many server groups."
MEMBERS_OVER = "Quota exceeded, too many servers in group"


@dataclass(frozen=True)
class NewGroup:
    name: str
    policy: str
    rules: Mapping[str, Any]


def group_not_found(group_uuid: str) -> NotFound:
    return NotFound(f"Instance group {group_uuid} could not be found.", kind="InstanceGroupNotFound")


# --- counting -------------------------------------------------------------------------------


def count_groups(s: Session, project_id: str, user_id: str | None) -> int:
    """Live groups of the project (of one user in it when ``user_id`` is given)."""
    stmt = select(func.count(InstanceGroup.id)).where(
        InstanceGroup.project_id == project_id, InstanceGroup.deleted.is_(False)
    )
    if user_id:
        stmt = stmt.where(InstanceGroup.user_id == user_id)
    return int(s.scalar(stmt) or 0)


def _live_member() -> Any:
    """Members whose server is not deleted (a member without an instance row yet is live)."""
    return ~exists().where(
        and_(Instance.uuid == InstanceGroupMember.instance_uuid, Instance.deleted.is_(True))
    )


def count_members(s: Session, group_id: int, user_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(InstanceGroupMember)
        .where(
            InstanceGroupMember.group_id == group_id, InstanceGroupMember.user_id == user_id, _live_member()
        )
    )
    return int(s.scalar(stmt) or 0)


quotas.register_counter("server_groups", count_groups)


def _groups_over(s: Session, project_id: str, user_id: str, delta: int) -> bool:
    project_limit = quotas.effective_limits(s, project_id)["server_groups"]
    if project_limit >= 0 and count_groups(s, project_id, None) + delta > project_limit:
        return True
    user_limit = quotas.effective_limits(s, project_id, user_id)["server_groups"]
    return user_limit >= 0 and count_groups(s, project_id, user_id) + delta > user_limit


def _members_over(s: Session, ctx: RequestContext, group_id: int, delta: int) -> bool:
    limit = quotas.effective_limits(s, ctx.project_id, ctx.user_id)["server_group_members"]
    return limit >= 0 and count_members(s, group_id, ctx.user_id) + delta > limit


# --- groups ---------------------------------------------------------------------------------


def create_group(s: Session, ctx: RequestContext, new: NewGroup) -> InstanceGroup:
    """Quota check, insert, recheck (see the module docstring); 400 for rules on other policies."""
    if new.policy not in POLICIES:
        raise BadRequest(f"Invalid policy {new.policy}")
    if new.rules and new.policy != "anti-affinity":
        raise BadRequest("Only anti-affinity policy supports rules.")
    if _groups_over(s, ctx.project_id, ctx.user_id, 1):
        raise OverQuota(GROUPS_OVER, kind="OverQuota")
    group = InstanceGroup(
        uuid=new_uuid(),
        name=new.name,
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        policy=new.policy,
        rules=dict(new.rules),
        deleted=False,
    )
    s.add(group)
    s.flush()
    if _groups_over(s, ctx.project_id, ctx.user_id, 0):
        s.delete(group)
        s.flush()
        raise OverQuota(GROUPS_OVER, kind="OverQuota")
    return group


def get_group(s: Session, ctx: RequestContext, group_uuid: str) -> InstanceGroup | None:
    """The live group ``group_uuid`` if ctx may see it (its project, or any for an admin)."""
    stmt = select(InstanceGroup).where(InstanceGroup.uuid == group_uuid, InstanceGroup.deleted.is_(False))
    if not ctx.is_admin:
        stmt = stmt.where(InstanceGroup.project_id == ctx.project_id)
    return s.scalars(stmt.limit(1)).first()


def require_group(s: Session, ctx: RequestContext, group_uuid: str) -> InstanceGroup:
    group = get_group(s, ctx, group_uuid)
    if group is None:
        raise group_not_found(group_uuid)
    return group


def list_groups(
    s: Session, ctx: RequestContext, *, all_projects: bool, limit: int, offset: int
) -> list[InstanceGroup]:
    """Live groups of ctx's project (of every project for ``all_projects``), oldest first."""
    stmt = select(InstanceGroup).where(InstanceGroup.deleted.is_(False))
    if not all_projects:
        stmt = stmt.where(InstanceGroup.project_id == ctx.project_id)
    stmt = stmt.order_by(InstanceGroup.id).offset(offset).limit(limit)
    return list(s.scalars(stmt))


def delete_group(s: Session, ctx: RequestContext, group_uuid: str) -> None:
    """Mark the group deleted; its members' servers are not touched."""
    group = require_group(s, ctx, group_uuid)
    group.deleted = True
    group.deleted_at = utcnow()
    s.flush()


# --- members --------------------------------------------------------------------------------


def live_members(s: Session, group_ids: Sequence[int]) -> dict[int, list[str]]:
    """group id -> uuids of its members whose servers are not deleted, in joining order."""
    out: dict[int, list[str]] = {gid: [] for gid in group_ids}
    if not group_ids:
        return out
    stmt = (
        select(InstanceGroupMember.group_id, InstanceGroupMember.instance_uuid)
        .where(InstanceGroupMember.group_id.in_(list(group_ids)), _live_member())
        .order_by(InstanceGroupMember.created_at, InstanceGroupMember.instance_uuid)
    )
    for gid, instance_uuid in s.execute(stmt):
        out[gid].append(instance_uuid)
    return out


def add_member(s: Session, ctx: RequestContext, group_uuid: str, instance_uuid: str) -> None:
    """Add ``instance_uuid`` (owned by ctx's user) to the group: check, insert, recheck."""
    group = require_group(s, ctx, group_uuid)
    if s.get(InstanceGroupMember, (group.id, instance_uuid)) is not None:
        return
    if _members_over(s, ctx, group.id, 1):
        raise OverQuota(MEMBERS_OVER, kind="OverQuota")
    member = InstanceGroupMember(group_id=group.id, instance_uuid=instance_uuid, user_id=ctx.user_id)
    s.add(member)
    s.flush()
    if _members_over(s, ctx, group.id, 0):
        s.delete(member)
        s.flush()
        raise OverQuota(MEMBERS_OVER, kind="OverQuota")


# --- placement: where the members run -------------------------------------------------------


@dataclass(frozen=True)
class GroupPlacement:
    policy: str
    rules: dict[str, Any]
    member_hosts: dict[str, str]  # live member instance uuid -> its host (members with a host)


# Core statements (no ORM entity loads): the group row, deleted or not, and its live members' hosts
_GROUP = (
    select(InstanceGroup.id, InstanceGroup.policy, InstanceGroup.rules)
    .where(InstanceGroup.uuid == bindparam("group_uuid"))
    .limit(1)
)
_MEMBER_HOSTS = (
    select(Instance.uuid, Instance.host)
    .join(InstanceGroupMember, InstanceGroupMember.instance_uuid == Instance.uuid)
    .where(InstanceGroupMember.group_id == bindparam("group_id"), Instance.deleted.is_(False))
)


def group_placement(s: Session, group_uuid: str) -> GroupPlacement | None:
    """The group's policy, rules and live members' hosts; None when there is no such group."""
    conn = s.connection()
    row = conn.execute(_GROUP, {"group_uuid": group_uuid}).first()
    if row is None:
        return None
    group_id, policy, rules = row
    members = {str(u): str(h) for u, h in conn.execute(_MEMBER_HOSTS, {"group_id": group_id}).all() if h}
    return GroupPlacement(policy=str(policy or ""), rules=dict(rules or {}), member_hosts=members)


def late_policy_violation(s: Session, group_uuid: str, instance_uuid: str, host: str) -> str | None:
    """The group policy against where the other members really run now, for ``instance_uuid``
    about to be built on ``host``: the violation, or None."""
    group = group_placement(s, group_uuid)
    if group is None:
        return None
    others = {h for u, h in group.member_hosts.items() if u != instance_uuid}
    if group.policy == "affinity" and others and host not in others:
        return f"Affinity instance group policy was violated: members run on {', '.join(sorted(others))}"
    if group.policy == "anti-affinity":
        here = sum(1 for u, h in group.member_hosts.items() if h == host and u != instance_uuid)
        if here >= max_per_host(group.rules):
            return "Anti-affinity instance group policy was violated."
    return None

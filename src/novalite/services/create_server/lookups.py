"""Read-only lookups the create pipeline makes into parts it does not own (server groups, hosts)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.placement import ComputeNode
from novalite.db.models.server_groups import InstanceGroupMember
from novalite.services import server_groups


def server_group_visible(s: Session, ctx: RequestContext, group_uuid: str) -> bool:
    """Whether ctx may use the server group."""
    return server_groups.get_group(s, ctx, group_uuid) is not None


def compute_host_exists(s: Session, host: str | None, node: str | None) -> bool:
    """Whether a compute node on ``host`` / named ``node`` (either may be None) exists."""
    query = select(ComputeNode)
    if host is not None:
        query = query.where(ComputeNode.host == host)
    if node is not None:
        query = query.where(ComputeNode.hypervisor_hostname == node)
    return s.execute(query.limit(1)).first() is not None


def forget_group_members(s: Session, instance_uuids: list[str]) -> None:
    """Compensation helper: drop group memberships of servers that were never handed off."""
    s.execute(delete(InstanceGroupMember).where(InstanceGroupMember.instance_uuid.in_(instance_uuids)))

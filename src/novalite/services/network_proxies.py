"""The embedded Neutron as the compute API's network proxies (os-networks, os-security-groups,
os-security-group-rules; gone from 2.36) read it: lookups with Nova's 404s, and a group's
ingress rules with their remote groups, so the views do no I/O."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import Network, Port, PortSecurityGroup, SecurityGroup, SecurityGroupRule
from novalite.errors import NotFound
from novalite.network import networks, security_groups

RuleWithRemote = tuple[SecurityGroupRule, SecurityGroup | None]


def get_network(s: Session, ctx: RequestContext, network_id: str) -> Network:
    net = s.get(Network, network_id) if len(network_id) <= 36 else None
    if net is None or not networks.can_see(ctx, net):
        raise NotFound("Network not found", kind="NetworkNotFound")
    return net


def group_not_found(group_id: str) -> NotFound:
    return NotFound(f"Security group {group_id} not found.", kind="SecurityGroupNotFound")


def get_group(s: Session, ctx: RequestContext, group_id: str) -> SecurityGroup:
    group = s.get(SecurityGroup, group_id) if len(group_id) <= 36 else None
    if group is None or not ctx.can_access_project(group.project_id):
        raise group_not_found(group_id)
    return group


def project_groups(s: Session, ctx: RequestContext, *, all_tenants: bool) -> list[SecurityGroup]:
    """The project's groups (its default group created when missing); every project's for an
    admin asking for all tenants."""
    security_groups.ensure_default_group(s, ctx.project_id)
    q = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
    if not (ctx.is_admin and all_tenants):
        q = q.where(SecurityGroup.project_id == ctx.project_id)
    return list(s.scalars(q))


def server_groups(s: Session, instance_uuid: str) -> list[SecurityGroup]:
    """The groups on the server's ports."""
    q = (
        select(SecurityGroup)
        .join(PortSecurityGroup, PortSecurityGroup.security_group_id == SecurityGroup.id)
        .join(Port, Port.id == PortSecurityGroup.port_id)
        .where(Port.device_id == instance_uuid)
        .order_by(SecurityGroup.created_at, SecurityGroup.id)
        .distinct()
    )
    return list(s.scalars(q))


def with_remote(s: Session, rule: SecurityGroupRule) -> RuleWithRemote:
    """The rule and the group it admits traffic from (None for an address range)."""
    return rule, s.get(SecurityGroup, rule.remote_group_id) if rule.remote_group_id else None


def ingress_rules(s: Session, group: SecurityGroup) -> list[RuleWithRemote]:
    """Nova's view of a group: its ingress rules only."""
    return [with_remote(s, r) for r in security_groups.group_rules(s, group.id) if r.direction == "ingress"]


def get_rule(s: Session, ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
    rule = s.get(SecurityGroupRule, rule_id) if len(rule_id) <= 36 else None
    if rule is None or not ctx.can_access_project(rule.project_id):
        raise NotFound(f"Security group rule {rule_id} could not be found.", kind="SecurityGroupRuleNotFound")
    return rule

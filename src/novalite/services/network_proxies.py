"""The embedded Neutron as the compute API's network proxies (os-networks, os-security-groups,
os-security-group-rules, os-floating-ip-pools, os-floating-ips; gone from 2.36) and the
addFloatingIp/removeFloatingIp actions (gone from 2.44) see it: lookups with Nova's 404s, a
group's ingress rules with their remote groups, floating IPs as Nova shows them, and Neutron's
refusals turned into Nova's answers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import (
    FloatingIP,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound, NovaliteError
from novalite.network import floating_ips, networks, ports, security_groups

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


# -- floating IPs (os-floating-ip-pools, os-floating-ips, addFloatingIp/removeFloatingIp) --------


@dataclass(frozen=True)
class FloatingIPInfo:
    """A floating IP as Nova's proxy shows it: the pool is the external network's name."""

    id: str
    ip: str
    fixed_ip: str | None
    instance_id: str | None
    pool: str


def floating_ip_pools(s: Session, ctx: RequestContext) -> list[str]:
    """Nova's pools: the names of the external networks."""
    return [n.name for n in networks.visible_networks(s, ctx) if n.router_external]


def _info(s: Session, fip: FloatingIP) -> FloatingIPInfo:
    net = s.get(Network, fip.floating_network_id)
    port = s.get(Port, fip.fixed_port_id) if fip.fixed_port_id else None
    return FloatingIPInfo(
        id=fip.id,
        ip=fip.floating_ip_address,
        fixed_ip=fip.fixed_ip_address,
        instance_id=(port.device_id or None) if port is not None else None,
        pool=net.name if net else "",
    )


def list_floating_ips(s: Session, ctx: RequestContext) -> list[FloatingIPInfo]:
    """The project's floating IPs (Nova lists the caller's project only, admins included)."""
    q = select(FloatingIP).where(FloatingIP.project_id == ctx.project_id)
    return [_info(s, f) for f in s.scalars(q.order_by(FloatingIP.created_at, FloatingIP.id))]


def _get(s: Session, ctx: RequestContext, fip_id: str) -> FloatingIP:
    fip = s.get(FloatingIP, fip_id) if len(fip_id) <= 36 else None
    if fip is None or fip.project_id != ctx.project_id:
        raise NotFound(f"Floating IP not found for ID {fip_id}", kind="FloatingIpNotFound")
    return fip


def get_floating_ip(s: Session, ctx: RequestContext, fip_id: str) -> FloatingIPInfo:
    return _info(s, _get(s, ctx, fip_id))


def _pool_network(s: Session, ctx: RequestContext, pool: str | None) -> Network:
    """The external network named (or with the id) ``pool``; with no pool, the first one
    (Nova's default_floating_pool, ``nova``, names no network here)."""
    external = [n for n in networks.visible_networks(s, ctx) if n.router_external]
    found = [n for n in external if pool is None or pool in (n.name, n.id)]
    if not found:
        raise NotFound("Floating IP pool not found.", kind="FloatingIpPoolNotFound")
    return found[0]


def allocate_floating_ip(s: Session, ctx: RequestContext, pool: str | None) -> FloatingIPInfo:
    """Allocate from ``pool``; Neutron's refusals become Nova's (404 no more IPs, 403 quota)."""
    net = _pool_network(s, ctx, pool)
    try:
        with s.begin_nested():
            fip = floating_ips.create_floating_ip(s, _owner(ctx), {"floating_network_id": net.id})
    except Conflict as exc:
        if exc.kind == "OverQuota":
            msg = f"IP allocation over quota in pool {pool}." if pool else "IP allocation over quota."
            raise Forbidden(msg, kind="FloatingIpLimitExceeded") from None
        msg = f"No more floating IPs in pool {pool}." if pool else "No more floating IPs available."
        raise NotFound(msg, kind="NoMoreFloatingIps") from None
    except BadRequest as exc:
        raise BadRequest(exc.message, kind="FloatingIpBadRequest") from None
    return _info(s, fip)


def release_floating_ip(s: Session, ctx: RequestContext, fip_id: str) -> None:
    floating_ips.delete_floating_ip(s, _owner(ctx), _get(s, ctx, fip_id))


def _owner(ctx: RequestContext) -> RequestContext:
    """Nova calls Neutron as the user's project (with its service rights)."""
    return RequestContext(user_id=ctx.user_id, project_id=ctx.project_id, roles=("admin",))


def _by_address(s: Session, ctx: RequestContext, address: str) -> FloatingIP:
    q = select(FloatingIP).where(FloatingIP.floating_ip_address == address)
    if not ctx.is_admin:
        q = q.where(FloatingIP.project_id == ctx.project_id)
    fip = s.scalars(q).first()
    if fip is None:
        raise NotFound(f"Floating IP not found for address {address}.", kind="FloatingIpNotFoundForAddress")
    return fip


def add_floating_ip(
    s: Session, ctx: RequestContext, instance_uuid: str, address: str, fixed_address: str | None
) -> None:
    """Nova's addFloatingIp: map the floating IP to the server's port holding ``fixed_address``
    (default: its first fixed IPv4 address)."""
    q = select(Port).where(Port.device_id == instance_uuid).order_by(Port.created_at, Port.id)
    server_ports = list(s.scalars(q))
    fixed = [(p, ip.ip_address) for p in server_ports for ip in ports.port_ips(s, p.id)]
    if not fixed:
        raise BadRequest("No fixed IPs associated to instance", kind="FixedIpNotFoundForInstance")
    if fixed_address is not None:
        chosen = [(p, a) for p, a in fixed if a == fixed_address]
        if not chosen:
            raise BadRequest("Specified fixed address not assigned to instance", kind="FixedIpNotFound")
    else:
        chosen = [(p, a) for p, a in fixed if ipaddress.ip_address(a).version == 4]
        if not chosen:
            raise BadRequest(
                f"Unable to associate floating IP {address} to any fixed IPs for instance {instance_uuid}. "
                "Instance has no fixed IPv4 addresses to associate.",
                kind="FixedIpNotFoundForInstance",
            )
    fip = _by_address(s, ctx, address)
    port, fixed_ip = chosen[0]
    try:
        with s.begin_nested():
            floating_ips.associate(s, _owner(ctx), fip, port.id, fixed_ip)
            fip.revision_number += 1
    except NovaliteError as exc:
        raise BadRequest(
            f"Unable to associate floating IP {address} to fixed IP {fixed_ip} for instance "
            f"{instance_uuid}. Error: {exc.message}",
            kind="FloatingIpAssociateFailed",
        ) from None


def remove_floating_ip(s: Session, ctx: RequestContext, instance_uuid: str, address: str) -> None:
    """Nova's removeFloatingIp: 409 unless the floating IP is mapped to this server."""
    fip = _by_address(s, ctx, address)
    port = s.get(Port, fip.fixed_port_id) if fip.fixed_port_id else None
    if port is None or port.device_id != instance_uuid:
        raise Conflict(
            f"Floating IP {address} is not associated with instance {instance_uuid}.",
            kind="FloatingIpNotAssociated",
        )
    floating_ips.disassociate(fip)
    fip.revision_number += 1

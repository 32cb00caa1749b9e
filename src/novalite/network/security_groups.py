"""Security groups and their rules, with Neutron's checks and messages.

Every project has exactly one ``default`` group (``DefaultSecurityGroup`` enforces it); it is
created lazily the first time the project lists groups, creates a port or boots a server.
New groups start with Neutron's two egress-any rules; the default group also lets in
traffic from its own members (IPv4 and IPv6).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import (
    DefaultSecurityGroup,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.network import quotas, tags

PROTOCOL_NAMES = frozenset(
    {
        "ah",
        "dccp",
        "egp",
        "esp",
        "gre",
        "hopopt",
        "icmp",
        "igmp",
        "ip",
        "ipip",
        "ipv6-encap",
        "ipv6-frag",
        "ipv6-icmp",
        "icmpv6",
        "ipv6-nonxt",
        "ipv6-opts",
        "ipv6-route",
        "ospf",
        "pgm",
        "rsvp",
        "sctp",
        "tcp",
        "udp",
        "udplite",
        "vrrp",
    }
)
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"})
ICMP_PROTOCOLS = frozenset({"icmp", "ipv6-icmp", "icmpv6", "1", "58"})
ANY_PREFIX = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}


def group_not_found(group_id: str) -> NotFound:
    return NotFound(f"Security group {group_id} does not exist", kind="SecurityGroupNotFound")


def _add_rule(
    s: Session, group: SecurityGroup, *, direction: str, ethertype: str, remote_group_id: str | None = None
) -> None:
    s.add(
        SecurityGroupRule(
            security_group_id=group.id,
            project_id=group.project_id,
            direction=direction,
            ethertype=ethertype,
            remote_group_id=remote_group_id,
        )
    )


def _new_group(
    s: Session, project_id: str, name: str, description: str, stateful: bool = True
) -> SecurityGroup:
    group = SecurityGroup(project_id=project_id, name=name, description=description, stateful=stateful)
    s.add(group)
    s.flush()
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(s, group, direction="egress", ethertype=ethertype)
    return group


def ensure_default_group(s: Session, project_id: str) -> SecurityGroup:
    """The project's ``default`` group, created with Neutron's default rules when missing."""
    link = s.get(DefaultSecurityGroup, project_id)
    if link is not None:
        group = s.get(SecurityGroup, link.security_group_id)
        if group is not None:
            return group
    try:
        with s.begin_nested():
            group = _new_group(s, project_id, "default", "Default security group")
            for ethertype in ("IPv4", "IPv6"):
                _add_rule(s, group, direction="ingress", ethertype=ethertype, remote_group_id=group.id)
            s.add(DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
            s.flush()
    except IntegrityError:  # a concurrent first request won; use its group
        link = s.get(DefaultSecurityGroup, project_id)
        assert link is not None
        found = s.get(SecurityGroup, link.security_group_id)
        assert found is not None
        return found
    return group


def is_default(s: Session, group: SecurityGroup) -> bool:
    link = s.get(DefaultSecurityGroup, group.project_id)
    return link is not None and link.security_group_id == group.id


def visible_groups(s: Session, ctx: RequestContext) -> list[SecurityGroup]:
    ensure_default_group(s, ctx.project_id)
    q = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
    if not ctx.is_admin:
        q = q.where(SecurityGroup.project_id == ctx.project_id)
    return list(s.scalars(q))


def get_group(s: Session, ctx: RequestContext, group_id: str) -> SecurityGroup:
    group = s.get(SecurityGroup, group_id)
    if group is None or not ctx.can_access_project(group.project_id):
        raise group_not_found(group_id)
    return group


def create_group(
    s: Session, ctx: RequestContext, *, name: str, description: str, stateful: bool, project_id: str
) -> SecurityGroup:
    ensure_default_group(s, project_id)
    if name == "default":
        raise Conflict("Default security group already exists.", kind="SecurityGroupDefaultAlreadyExists")
    quotas.check(s, project_id, "security_group")
    return _new_group(s, project_id, name, description, stateful)


def update_group(s: Session, group: SecurityGroup, changes: dict[str, Any]) -> None:
    if "name" in changes and changes["name"] != group.name and is_default(s, group):
        raise Conflict(
            "Updating default security group not allowed.", kind="SecurityGroupCannotUpdateDefault"
        )
    if changes.get("name") == "default" and not is_default(s, group):
        raise Conflict("Default security group already exists.", kind="SecurityGroupDefaultAlreadyExists")
    for key in ("name", "description", "stateful"):
        if key in changes:
            setattr(group, key, changes[key])
    group.revision_number += 1


def delete_group(s: Session, ctx: RequestContext, group: SecurityGroup) -> None:
    if is_default(s, group) and not ctx.is_admin:
        raise Conflict(
            "Removing default security group not allowed.", kind="SecurityGroupCannotRemoveDefault"
        )
    used = s.scalars(select(PortSecurityGroup).where(PortSecurityGroup.security_group_id == group.id)).first()
    if used is not None:
        raise Conflict(f"Security Group {group.id} in use.", kind="SecurityGroupInUse")
    tags.clear(s, group.id)
    s.delete(group)


def group_rules(s: Session, group_id: str) -> list[SecurityGroupRule]:
    q = select(SecurityGroupRule).where(SecurityGroupRule.security_group_id == group_id)
    return list(s.scalars(q.order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)))


def visible_rules(s: Session, ctx: RequestContext) -> list[SecurityGroupRule]:
    q = select(SecurityGroupRule).order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
    if not ctx.is_admin:
        q = q.where(SecurityGroupRule.project_id == ctx.project_id)
    return list(s.scalars(q))


def rule_not_found(rule_id: str) -> NotFound:
    return NotFound(f"Security group rule {rule_id} does not exist", kind="SecurityGroupRuleNotFound")


def get_rule(s: Session, ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
    rule = s.get(SecurityGroupRule, rule_id)
    if rule is None or not ctx.can_access_project(rule.project_id):
        raise rule_not_found(rule_id)
    return rule


def _protocol(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("any", "")):
        return None
    text = str(value).lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is not None and text.isdigit() and 0 <= int(text) <= 255:
        return text
    if text in PROTOCOL_NAMES:
        return text
    raise BadRequest(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{sorted(PROTOCOL_NAMES)} and integer representations [0 to 255] are supported.",
        kind="SecurityGroupRuleInvalidProtocol",
    )


def _ports(protocol: str | None, low: int | None, high: int | None) -> tuple[int | None, int | None]:
    if low is None and high is None:
        return None, None
    if protocol is None:
        raise BadRequest(
            "Must also specify protocol if port range is given.",
            kind="SecurityGroupProtocolRequiredWithPorts",
        )
    if protocol in ICMP_PROTOCOLS:
        for value, what, attr in ((low, "type", "port-range-min"), (high, "code", "port-range-max")):
            if value is not None and not 0 <= value <= 255:
                raise BadRequest(
                    f"Invalid value for ICMP {what} ({attr}): {value}", kind="SecurityGroupInvalidIcmpValue"
                )
        if low is None:
            raise BadRequest(
                f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) is missing.",
                kind="SecurityGroupMissingIcmpType",
            )
        return low, high
    if protocol not in PORT_PROTOCOLS:
        raise BadRequest(
            f"Invalid protocol {protocol} for port range, only supported for TCP, UDP, UDPLITE, "
            "SCTP and DCCP.",
            kind="SecurityGroupInvalidProtocolForPortRange",
        )
    if low == 0 or high == 0:
        raise BadRequest("Invalid value for port 0", kind="SecurityGroupInvalidPortValue")
    if low is None or high is None or low > high:
        raise BadRequest(
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            kind="SecurityGroupInvalidPortRange",
        )
    return low, high


def _prefix(value: str | None, ethertype: str) -> str | None:
    if value is None:
        return None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise BadRequest(
            f"Invalid input for remote_ip_prefix. Reason: '{value}' is not a valid IP subnet.",
            kind="InvalidInput",
        ) from None
    if f"IPv{net.version}" != ethertype:
        raise BadRequest(
            f"Conflicting value ethertype {ethertype} for CIDR {value}",
            kind="SecurityGroupRuleParameterConflict",
        )
    # kept as given, with its prefix length (10.2.3.124/24 stays so, as Neutron answers and
    # Tempest's SecurityGroupRulesTestJSON expects)
    return str(ipaddress.ip_interface(value))


def create_rule(s: Session, ctx: RequestContext, fields: dict[str, Any]) -> SecurityGroupRule:
    """Create one rule from already type-checked fields (direction, ethertype, protocol, ports, remote)."""
    group = get_group(s, ctx, fields["security_group_id"])
    ethertype = fields.get("ethertype") or "IPv4"
    protocol = _protocol(fields.get("protocol"))
    low, high = _ports(protocol, fields.get("port_range_min"), fields.get("port_range_max"))
    remote_group_id = fields.get("remote_group_id")
    prefix = _prefix(fields.get("remote_ip_prefix"), ethertype)
    if remote_group_id is not None and prefix is not None:
        raise BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.",
            kind="SecurityGroupRemoteGroupAndRemoteIpPrefix",
        )
    if remote_group_id is not None:
        get_group(s, ctx, remote_group_id)
    candidate = (
        fields["direction"],
        ethertype,
        protocol,
        low,
        high,
        prefix or ANY_PREFIX[ethertype],
        remote_group_id,
    )
    for rule in group_rules(s, group.id):
        existing = (
            rule.direction,
            rule.ethertype,
            rule.protocol,
            rule.port_range_min,
            rule.port_range_max,
            rule.remote_ip_prefix or ANY_PREFIX[rule.ethertype],
            rule.remote_group_id,
        )
        if existing == candidate:
            raise Conflict(
                f"Security group rule already exists. Rule id is {rule.id}.", kind="SecurityGroupRuleExists"
            )
    quotas.check(s, group.project_id, "security_group_rule")
    rule = SecurityGroupRule(
        security_group_id=group.id,
        project_id=group.project_id,
        direction=fields["direction"],
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=low,
        port_range_max=high,
        remote_ip_prefix=prefix,
        remote_group_id=remote_group_id,
        description=fields.get("description") or "",
    )
    s.add(rule)
    group.revision_number += 1
    s.flush()
    return rule


def delete_rule(s: Session, rule: SecurityGroupRule) -> None:
    """Remove one rule; its group's revision moves on, as when a rule is added."""
    group = s.get(SecurityGroup, rule.security_group_id)
    s.delete(rule)
    if group is not None:
        group.revision_number += 1


def resolve_for_port(s: Session, ctx: RequestContext, project_id: str, ids: list[str]) -> list[str]:
    """Group ids a new or updated port may use (same project); 404 SecurityGroupNotFound otherwise."""
    out: list[str] = []
    for group_id in ids:
        group = s.get(SecurityGroup, group_id)
        if group is None or group.project_id != project_id and not ctx.is_admin:
            raise group_not_found(group_id)
        if group.id not in out:
            out.append(group.id)
    return out


def resolve_security_group(s: Session, project_id: str, name_or_id: str) -> str:
    """Nova's lookup of a requested security group: by id, else by name within the project.

    Raises 400 ``SecurityGroupNotFound`` or 409 ``NoUniqueMatch`` (Nova's messages), returns the id.
    """
    if name_or_id == "default":
        return ensure_default_group(s, project_id).id
    group = s.get(SecurityGroup, name_or_id)
    if group is not None and group.project_id == project_id:
        return group.id
    q = select(SecurityGroup).where(SecurityGroup.project_id == project_id, SecurityGroup.name == name_or_id)
    matches = list(s.scalars(q))
    if not matches:
        raise BadRequest(f"Security group {name_or_id} not found.", kind="SecurityGroupNotFound")
    if len(matches) > 1:
        raise Conflict("No Unique Match Found.", kind="NoUniqueMatch")
    return matches[0].id

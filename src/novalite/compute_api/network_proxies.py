"""The compute API's proxies to networking, gone from microversion 2.36 (404 from there on):

- ``os-networks``: list/show the networks the caller can see in the embedded Neutron
  (only ``id`` and ``label`` carry values, as in Nova since nova-network went away);
- ``os-security-groups``: list/show/create/delete the project's groups (Nova's view: ingress
  rules only, ``ip_range``/``group`` per rule);
- ``os-security-group-rules``: create/delete ingress rules.

``GET /servers/{id}/os-security-groups`` stays at every microversion: ``server_subresources``.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.db.models.network import Network, SecurityGroup
from novalite.errors import BadRequest, NotFound, NovaliteError
from novalite.network import networks, quotas, security_groups
from novalite.services import network_proxies as proxies
from novalite.services.network_proxies import RuleWithRemote
from novalite.services.server_queries import get_instance

NETWORK_FIELDS = (
    "id",
    "cidr",
    "netmask",
    "gateway",
    "broadcast",
    "dns1",
    "dns2",
    "cidr_v6",
    "gateway_v6",
    "label",
    "netmask_v6",
)
ADMIN_NETWORK_FIELDS = (
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "injected",
    "bridge",
    "vlan",
    "vpn_public_address",
    "vpn_public_port",
    "vpn_private_address",
    "dhcp_start",
    "project_id",
    "host",
    "bridge_interface",
    "multi_host",
    "priority",
    "rxtx_base",
    "mtu",
    "dhcp_server",
    "enable_dhcp",
    "share_address",
)


def _proxies_available(request: Request) -> None:
    # 2.36: the network proxy APIs are gone
    if request_version(request) >= V(2, 36):
        raise NotFound("The resource could not be found.")


router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(_proxies_available)])


# -- os-networks ----------------------------------------------------------------------------------


def network_view(ctx: RequestContext, net: Network) -> dict[str, Any]:
    fields = NETWORK_FIELDS + (ADMIN_NETWORK_FIELDS if ctx.is_admin else ())
    out: dict[str, Any] = dict.fromkeys(fields)
    out["id"], out["label"] = net.id, net.name
    return out


@router.get("/os-networks")
def list_networks(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"networks": [network_view(ctx, n) for n in networks.visible_networks(s, ctx)]}


@router.get("/os-networks/{network_id}")
def show_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"network": network_view(ctx, proxies.get_network(s, ctx, network_id))}


# -- views ----------------------------------------------------------------------------------------


def rule_view(rule_and_remote: RuleWithRemote) -> dict[str, Any]:
    """Nova's rule: tcp/udp without ports is 1-65535, other protocols without ports -1."""
    rule, remote = rule_and_remote
    low, high = rule.port_range_min, rule.port_range_max
    if rule.protocol is not None and low is None and high is None:
        low, high = (1, 65535) if rule.protocol.upper() in ("TCP", "UDP") else (-1, -1)
    out: dict[str, Any] = {
        "id": rule.id,
        "parent_group_id": rule.security_group_id,
        "ip_protocol": rule.protocol,
        "from_port": low,
        "to_port": high,
        "group": {},
        "ip_range": {},
    }
    if remote is not None:
        out["group"] = {"name": remote.name, "tenant_id": remote.project_id}
    else:
        out["ip_range"] = {"cidr": rule.remote_ip_prefix or security_groups.ANY_PREFIX[rule.ethertype]}
    return out


def group_view(group: SecurityGroup, rules: list[RuleWithRemote]) -> dict[str, Any]:
    """The group with its ingress rules (``proxies.ingress_rules``)."""
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "tenant_id": group.project_id,
        "rules": [rule_view(r) for r in rules],
    }


# -- os-security-groups ---------------------------------------------------------------------------


@router.get("/os-security-groups")
def list_groups(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    all_tenants = request.query_params.get("all_tenants", "0").lower() not in ("0", "false", "off", "no")
    with runtime(request).db.session() as s:  # may create the project's default group
        groups = proxies.project_groups(s, ctx, all_tenants=all_tenants)
        return {"security_groups": [group_view(g, proxies.ingress_rules(s, g)) for g in groups]}


@router.get("/os-security-groups/{group_id}")
def show_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        group = proxies.get_group(s, ctx, group_id)
        return {"security_group": group_view(group, proxies.ingress_rules(s, group))}


def _property(spec: dict[str, Any], name: str) -> str:
    """Nova's ``validate_property``: a string of 1-255 characters once stripped. The value is
    stored as given (Tempest creates a group named ' name ' and expects it back unchanged)."""
    value = spec.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"Security group {name} is not a string or unicode", kind="Invalid")
    stripped = value.strip()
    if not stripped:
        raise BadRequest(f"{name} has a minimum character requirement of 1.", kind="InvalidInput")
    if len(stripped) > 255:
        raise BadRequest(f"{name} has more than 255 characters.", kind="InvalidInput")
    return value


def _group_id(value: Any) -> str:
    """Nova's neutron ``validate_id``: a security group id in a rule must look like a UUID (400)."""
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise BadRequest("Security group id should be uuid", kind="Invalid") from None


def _body_dict(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(
            "Missing parameter dict"
            if not isinstance(body, dict) or key not in body
            else f"Invalid input for field/attribute {key}."
        )
    return body[key]  # type: ignore[no-any-return]


def _create_group(request: Request, ctx: RequestContext, spec: dict[str, Any]) -> dict[str, Any]:
    name, description = _property(spec, "name"), _property(spec, "description")
    with runtime(request).db.session() as s:
        try:
            group = security_groups.create_group(
                s, ctx, name=name, description=description, stateful=True, project_id=ctx.project_id
            )
        except NovaliteError as exc:
            if exc.kind == "OverQuota":
                raise BadRequest(
                    "Quota exceeded, too many security groups.", kind="SecurityGroupLimitExceeded"
                ) from None
            raise BadRequest(exc.message, kind=exc.kind) from None
        return {"security_group": group_view(group, proxies.ingress_rules(s, group))}


@router.post("/os-security-groups")
async def create_group(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    spec = _body_dict(await json_body(request), "security_group")
    return await run_in_threadpool(_create_group, request, ctx, spec)


def _update_group(
    request: Request, ctx: RequestContext, group_id: str, spec: dict[str, Any]
) -> dict[str, Any]:
    name, description = _property(spec, "name"), _property(spec, "description")
    with runtime(request).db.session() as s:
        group = proxies.get_group(s, ctx, group_id)
        try:
            security_groups.update_group(s, group, {"name": name, "description": description})
        except NovaliteError as exc:  # Neutron's conflicts are Nova's 400s
            raise BadRequest(exc.message, kind=exc.kind) from None
        s.flush()
        return {"security_group": group_view(group, proxies.ingress_rules(s, group))}


@router.put("/os-security-groups/{group_id}")
async def update_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    spec = _body_dict(await json_body(request), "security_group")
    return await run_in_threadpool(_update_group, request, ctx, group_id, spec)


@router.delete("/os-security-groups/{group_id}", status_code=202)
def delete_group(group_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        group = proxies.get_group(s, ctx, group_id)
        try:
            security_groups.delete_group(s, ctx, group)
        except NovaliteError as exc:  # Neutron's conflicts are Nova's 400s
            raise BadRequest(exc.message, kind=exc.kind) from None
    return Response(status_code=202)


# -- os-security-group-rules ----------------------------------------------------------------------


def _port(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(
            f"Invalid port range {value}. {name} must be an integer.", kind="InvalidPortRange"
        ) from None


def _rule_fields(spec: dict[str, Any], group: SecurityGroup) -> dict[str, Any]:
    protocol = spec.get("ip_protocol")
    if protocol is not None and (
        not isinstance(protocol, str) or protocol.upper() not in ("TCP", "UDP", "ICMP")
    ):
        raise BadRequest(f"Invalid IP protocol {protocol}.", kind="InvalidIpProtocol")
    low, high = _port(spec.get("from_port"), "from_port"), _port(spec.get("to_port"), "to_port")
    if protocol and protocol.upper() == "ICMP":
        low, high = (None if low == -1 else low), (None if high == -1 else high)
    elif protocol and (low is None or high is None or not 1 <= low <= high <= 65535):
        raise BadRequest(
            f"Invalid port range {low}:{high}. Valid TCP ports should be between 1-65535",
            kind="InvalidPortRange",
        )
    cidr, remote = spec.get("cidr"), spec.get("group_id")
    if cidr and remote:
        raise BadRequest("Can't specify both cidr and group_id for a security group rule", kind="Invalid")
    fields: dict[str, Any] = {
        "security_group_id": group.id,
        "direction": "ingress",
        "protocol": protocol.lower() if protocol else None,
        "port_range_min": low,
        "port_range_max": high,
    }
    if remote:
        fields["remote_group_id"] = str(remote)
    elif cidr:
        fields["remote_ip_prefix"] = str(cidr)
        fields["ethertype"] = "IPv6" if ":" in str(cidr) else "IPv4"
    return fields


def _create_rule(request: Request, ctx: RequestContext, spec: dict[str, Any]) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        group = proxies.get_group(s, ctx, _group_id(spec.get("parent_group_id")))
        if spec.get("group_id"):
            proxies.get_group(s, ctx, _group_id(spec["group_id"]))
        fields = _rule_fields(spec, group)
        try:
            with s.begin_nested():
                rule = security_groups.create_rule(s, ctx, fields)
        except NovaliteError as exc:
            if exc.kind == "SecurityGroupRuleExists":
                raise BadRequest(f"This rule already exists in group {group.id}", kind=exc.kind) from None
            raise BadRequest(exc.message, kind=exc.kind) from None
        return {"security_group_rule": rule_view(proxies.with_remote(s, rule))}


@router.post("/os-security-group-rules")
async def create_rule(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    spec = _body_dict(await json_body(request), "security_group_rule")
    return await run_in_threadpool(_create_rule, request, ctx, spec)


@router.delete("/os-security-group-rules/{rule_id}", status_code=202)
def delete_rule(rule_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        security_groups.delete_rule(s, proxies.get_rule(s, ctx, rule_id))
    return Response(status_code=202)


# -- os-floating-ip-pools, os-floating-ips --------------------------------------------------------


def floating_ip_view(fip: proxies.FloatingIPInfo) -> dict[str, Any]:
    return {
        "id": fip.id,
        "ip": fip.ip,
        "fixed_ip": fip.fixed_ip,
        "instance_id": fip.instance_id,
        "pool": fip.pool,
    }


@router.get("/os-floating-ip-pools")
def list_floating_ip_pools(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"floating_ip_pools": [{"name": name} for name in proxies.floating_ip_pools(s, ctx)]}


@router.get("/os-floating-ips")
def list_floating_ips(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"floating_ips": [floating_ip_view(f) for f in proxies.list_floating_ips(s, ctx)]}


@router.get("/os-floating-ips/{floating_ip_id}")
def show_floating_ip(
    floating_ip_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"floating_ip": floating_ip_view(proxies.get_floating_ip(s, ctx, floating_ip_id))}


def _allocate(request: Request, ctx: RequestContext, pool: str | None) -> dict[str, Any]:
    with runtime(request).db.serialized(quotas.quota_lock(ctx.project_id)) as s:
        return {"floating_ip": floating_ip_view(proxies.allocate_floating_ip(s, ctx, pool))}


@router.post("/os-floating-ips")
async def create_floating_ip(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    raw = await request.body()
    body = await json_body(request) if raw.strip() else None
    pool = body.get("pool") if isinstance(body, dict) else None
    if pool is not None and not isinstance(pool, str):
        raise BadRequest("Invalid input for field/attribute pool.")
    return await run_in_threadpool(_allocate, request, ctx, pool)


@router.delete("/os-floating-ips/{floating_ip_id}", status_code=202)
def delete_floating_ip(
    floating_ip_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        proxies.release_floating_ip(s, ctx, floating_ip_id)
    return Response(status_code=202)


# -- the addFloatingIp / removeFloatingIp server actions (gone from 2.44) -------------------------

ADDRESS: dict[str, Any] = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
ADD_FLOATING_IP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "addFloatingIp": {
            "type": "object",
            "properties": {"address": ADDRESS, "fixed_address": ADDRESS},
            "required": ["address"],
            "additionalProperties": False,
        }
    },
    "required": ["addFloatingIp"],
    "additionalProperties": False,
}
REMOVE_FLOATING_IP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "removeFloatingIp": {
            "type": "object",
            "properties": {"address": ADDRESS},
            "required": ["address"],
            "additionalProperties": False,
        }
    },
    "required": ["removeFloatingIp"],
    "additionalProperties": False,
}


def _before_244(request: Request) -> None:
    # 2.44: addFloatingIp and removeFloatingIp are gone
    if request_version(request) >= V(2, 44):
        raise NotFound("The resource could not be found.")


def add_floating_ip(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    _before_244(request)
    with runtime(request).db.session() as s:
        inst = get_instance(s, ctx, server_id)
        validate(ADD_FLOATING_IP_SCHEMA, body)
        spec = body["addFloatingIp"]
        proxies.add_floating_ip(s, ctx, inst.uuid, spec["address"], spec.get("fixed_address"))


def remove_floating_ip(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    _before_244(request)
    with runtime(request).db.session() as s:
        inst = get_instance(s, ctx, server_id)
        validate(REMOVE_FLOATING_IP_SCHEMA, body)
        proxies.remove_floating_ip(s, ctx, inst.uuid, body["removeFloatingIp"]["address"])

"""Neutron's attribute map for the resources we serve: which attributes a POST or PUT may carry,
their types, and the 400s Neutron answers ("Unrecognized attribute(s) ...", "Invalid input
for ...", "Cannot update read-only attribute ...").

``check_body`` returns the resource's attributes converted (booleans from "true"/"false",
integers from numeric strings), so the service layer only ever sees well-typed values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from novalite.errors import BadRequest

Converter = Callable[[str, Any], Any]


def _bad(name: str, value: Any, reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for {name}. Reason: {reason}", kind="InvalidInput")


def _string(limit: int) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise _bad(name, value, f"'{value}' is not a valid string.")
        if len(value) > limit:
            raise _bad(name, value, f"'{value}' exceeds maximum length of {limit}.")
        return value

    return convert


def _nullable(inner: Converter) -> Converter:
    def convert(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return convert


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad(name, value, f"'{value}' cannot be converted to boolean.")


def _int_range(low: int, high: int) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _bad(name, value, f"'{value}' is not an integer.")
        try:
            number = int(value)
        except ValueError:
            raise _bad(name, value, f"'{value}' is not an integer.") from None
        if not low <= number <= high:
            raise _bad(name, value, f"'{number}' is not in range {low} through {high}.")
        return number

    return convert


def _one_of(*choices: Any) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if value not in choices:
            raise _bad(name, value, f"'{value}' is not in {list(choices)}.")
        return value

    return convert


def _list_of(inner: Converter) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise _bad(name, value, f"'{value}' is not a list.")
        if len(value) > 1000:
            raise _bad(name, value, "too many items.")
        return [inner(name, item) for item in value]

    return convert


def _dict_of(keys: dict[str, Converter], required: tuple[str, ...] = ()) -> Converter:
    def convert(name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise _bad(name, value, f"'{value}' is not a dictionary.")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise _bad(name, value, f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        missing = [k for k in required if k not in value]
        if missing:
            raise _bad(
                name,
                value,
                f"Validation of dictionary's keys failed. Expected keys: {set(required)} "
                f"Provided keys: {set(value)}",
            )
        return {k: keys[k](f"{name}.{k}", v) for k, v in value.items()}

    return convert


def _any_dict(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise _bad(name, value, f"'{value}' is not a dictionary.")
    return value


def _port_value(name: str, value: Any) -> Any:
    """Neutron's port converter: None, or an integer 0..65535 ("Invalid value for port N")."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"Invalid value for port {value}", kind="SecurityGroupInvalidPortValue")
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for port {value}", kind="SecurityGroupInvalidPortValue") from None
    if not 0 <= number <= 65535:
        raise BadRequest(f"Invalid value for port {number}", kind="SecurityGroupInvalidPortValue")
    return number


def _protocol(name: str, value: Any) -> Any:
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    return _string(40)(name, value)


NAME = _string(255)
ID = _string(255)
TEXT = _string(255)
IP = _string(64)


@dataclass(frozen=True)
class Attr:
    convert: Converter
    post: bool = True
    put: bool = True
    required: bool = False
    admin_only: bool = False


PROJECT = _string(64)
_OWNER = {"tenant_id": Attr(PROJECT, put=False), "project_id": Attr(PROJECT, put=False)}
_POOL = _dict_of({"start": IP, "end": IP}, ("start", "end"))
_ROUTE = _dict_of({"destination": IP, "nexthop": IP}, ("destination", "nexthop"))
_FIXED_IP = _dict_of({"subnet_id": ID, "ip_address": IP})
_GATEWAY_INFO = _dict_of(
    {"network_id": ID, "enable_snat": _bool, "external_fixed_ips": _list_of(_FIXED_IP)}, ("network_id",)
)


def _GATEWAY(name: str, value: Any) -> Any:  # noqa: N802 - a converter, named as the others
    """A router's external_gateway_info; ``{}`` (as ``null``) clears the gateway."""
    return {} if value == {} else _GATEWAY_INFO(name, value)


RESOURCES: dict[str, dict[str, Attr]] = {
    "network": {
        "name": Attr(NAME),
        "description": Attr(TEXT),
        "admin_state_up": Attr(_bool),
        "shared": Attr(_bool),
        "router:external": Attr(_bool),
        "mtu": Attr(_int_range(68, 9216)),
        "port_security_enabled": Attr(_bool),
        "availability_zone_hints": Attr(_list_of(NAME), put=False),
        "dns_domain": Attr(_nullable(_string(255))),
        "qos_policy_id": Attr(_nullable(ID)),
        "is_default": Attr(_bool),
        "provider:network_type": Attr(_nullable(NAME)),
        "provider:physical_network": Attr(_nullable(NAME)),
        "provider:segmentation_id": Attr(_nullable(_int_range(0, 2**32))),
        **_OWNER,
    },
    "subnet": {
        "name": Attr(NAME),
        "description": Attr(TEXT),
        "network_id": Attr(ID, put=False, required=True),
        "ip_version": Attr(_int_range(4, 6), put=False, required=True),
        "cidr": Attr(IP, put=False, required=True),
        "gateway_ip": Attr(_nullable(IP)),
        "allocation_pools": Attr(_list_of(_POOL)),
        "enable_dhcp": Attr(_bool),
        "dns_nameservers": Attr(_list_of(IP)),
        "host_routes": Attr(_list_of(_ROUTE)),
        "ipv6_ra_mode": Attr(_nullable(_one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False),
        "ipv6_address_mode": Attr(
            _nullable(_one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False
        ),
        "subnetpool_id": Attr(_nullable(ID), put=False),
        "use_default_subnet_pool": Attr(_bool, put=False),
        "prefixlen": Attr(_nullable(_int_range(0, 128)), put=False),
        "segment_id": Attr(_nullable(ID)),
        "service_types": Attr(_list_of(NAME)),
        "dns_publish_fixed_ip": Attr(_bool),
        **_OWNER,
    },
    "port": {
        "name": Attr(NAME),
        "description": Attr(TEXT),
        "network_id": Attr(ID, put=False, required=True),
        "admin_state_up": Attr(_bool),
        "mac_address": Attr(IP),
        "fixed_ips": Attr(_list_of(_FIXED_IP)),
        "device_id": Attr(_string(255)),
        "device_owner": Attr(_string(255)),
        "security_groups": Attr(_nullable(_list_of(ID))),
        "port_security_enabled": Attr(_bool),
        "binding:host_id": Attr(_nullable(_string(255))),
        "binding:vnic_type": Attr(
            _one_of(
                "normal",
                "direct",
                "macvtap",
                "baremetal",
                "direct-physical",
                "virtio-forwarder",
                "smart-nic",
                "vdpa",
                "remote-managed",
            )
        ),
        "binding:profile": Attr(_nullable(_any_dict)),
        "allowed_address_pairs": Attr(_list_of(_any_dict)),
        "extra_dhcp_opts": Attr(_list_of(_any_dict)),
        "dns_name": Attr(_nullable(_string(255))),
        "qos_policy_id": Attr(_nullable(ID)),
        "propagate_uplink_status": Attr(_bool),
        **_OWNER,
    },
    "router": {
        "name": Attr(NAME),
        "description": Attr(TEXT),
        "admin_state_up": Attr(_bool),
        "external_gateway_info": Attr(_nullable(_GATEWAY)),
        "availability_zone_hints": Attr(_list_of(NAME), put=False),
        "routes": Attr(_nullable(_list_of(_ROUTE))),  # null clears them
        **_OWNER,
    },
    "floatingip": {
        "floating_network_id": Attr(ID, put=False, required=True),
        "floating_ip_address": Attr(_nullable(IP), put=False),
        "subnet_id": Attr(_nullable(ID), put=False),
        "port_id": Attr(_nullable(ID)),
        "fixed_ip_address": Attr(_nullable(IP)),
        "description": Attr(TEXT),
        "dns_name": Attr(_string(255), put=False),
        "dns_domain": Attr(_string(255), put=False),
        "qos_policy_id": Attr(_nullable(ID)),
        **_OWNER,
    },
    "security_group": {
        "name": Attr(NAME),
        "description": Attr(TEXT),
        "stateful": Attr(_bool),
        **_OWNER,
    },
    "security_group_rule": {
        "security_group_id": Attr(ID, put=False, required=True),
        "direction": Attr(_one_of("ingress", "egress"), put=False, required=True),
        "ethertype": Attr(_one_of("IPv4", "IPv6"), put=False),
        "protocol": Attr(_protocol, put=False),
        "port_range_min": Attr(_port_value, put=False),
        "port_range_max": Attr(_port_value, put=False),
        "remote_ip_prefix": Attr(_nullable(IP), put=False),
        "remote_group_id": Attr(_nullable(ID), put=False),
        "remote_address_group_id": Attr(_nullable(ID), put=False),
        "description": Attr(TEXT),
        **_OWNER,
    },
}


def check_create(resource: str, body: Any) -> tuple[list[dict[str, Any]], bool]:
    """A create body, single (``{resource: {...}}``) or bulk (``{resources: [{...}, ...]}``):
    the converted attribute dicts and whether it was a bulk request."""
    collection = resource + "s"
    if isinstance(body, dict) and collection in body and resource not in body:
        items = body[collection]
        if not isinstance(items, list) or not items or len(items) > 1000:
            raise BadRequest(
                f"Invalid input for {collection}. Reason: a non-empty list is required.", kind="InvalidInput"
            )
        return [check_body(resource, {resource: item}) for item in items], True
    return [check_body(resource, body)], False


def check_body(resource: str, body: Any, *, update: bool = False) -> dict[str, Any]:
    """Validate ``{resource: {...}}`` and return the converted attributes."""
    if not isinstance(body, dict) or resource not in body:
        raise BadRequest(f"Unable to find '{resource}' in request body", kind="HTTPBadRequest")
    attrs = body[resource]
    if not isinstance(attrs, dict):
        raise BadRequest(
            f"Invalid input for {resource}. Reason: '{attrs}' is not a dictionary.", kind="InvalidInput"
        )
    spec = RESOURCES[resource]
    unknown = sorted(k for k in attrs if k not in spec)
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'", kind="HTTPBadRequest")
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        attr = spec[key]
        if update and not attr.put:
            raise BadRequest(f"Cannot update read-only attribute {key}", kind="HTTPBadRequest")
        out[key] = attr.convert(key, value)
    if not update:
        missing = [k for k, a in spec.items() if a.required and k not in out]
        if missing:
            raise BadRequest(
                f"Failed to parse request. Required attribute '{missing[0]}' not specified",
                kind="HTTPBadRequest",
            )
    if "tenant_id" in out and "project_id" not in out:
        out["project_id"] = out["tenant_id"]
    if out.get("tenant_id") not in (None, out.get("project_id")):
        raise BadRequest("'project_id' and 'tenant_id' do not match", kind="HTTPBadRequest")
    return out

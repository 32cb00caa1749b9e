"""Device and namespace names derived from network and port ids.

Linux limits interface names to 15 characters; like Neutron we keep the first 11
characters of the id after a short prefix, which stays unique in practice for UUIDs.
"""

from __future__ import annotations

ID_CHARS = 11
BRIDGE_PREFIX = "brq-"
TAP_PREFIX = "tap"
DHCP_NS_PREFIX = "qdhcp-"
DHCP_HOST_VETH_PREFIX = "dhp-"  # host end of the DHCP veth, a bridge member
DHCP_NS_VETH_PREFIX = "ns-"  # namespace end, carries the DHCP server's address


def short(ident: str) -> str:
    return ident[:ID_CHARS]


def bridge_name(net_id: str) -> str:
    return BRIDGE_PREFIX + short(net_id)


def tap_name(port_id: str) -> str:
    return TAP_PREFIX + short(port_id)


def is_tap_name(ifname: str) -> bool:
    return ifname.startswith(TAP_PREFIX) and len(ifname) == len(TAP_PREFIX) + ID_CHARS


def dhcp_namespace(net_id: str) -> str:
    return DHCP_NS_PREFIX + net_id


def dhcp_host_veth(net_id: str) -> str:
    return DHCP_HOST_VETH_PREFIX + short(net_id)


def dhcp_ns_veth(net_id: str) -> str:
    return DHCP_NS_VETH_PREFIX + short(net_id)

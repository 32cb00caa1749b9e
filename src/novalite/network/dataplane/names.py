"""Device and namespace names derived from network and port ids.

Linux limits interface names to 15 characters; like Neutron we keep the first 11
characters of the id after a short prefix, which stays unique in practice for UUIDs.
"""

from __future__ import annotations

ID_CHARS = 11
BRIDGE_PREFIX = "brq-"
NETWORK_NS_PREFIX = "qbr-"  # the namespace holding a network's bridge on this host (l2)
TAP_PREFIX = "tap"
DHCP_NS_PREFIX = "qdhcp-"
DHCP_HOST_VETH_PREFIX = "dhp-"  # host end of the DHCP veth, a bridge member
DHCP_NS_VETH_PREFIX = "ns-"  # namespace end, carries the DHCP server's address


def short(ident: str) -> str:
    return ident[:ID_CHARS]


def bridge_name(net_id: str) -> str:
    return BRIDGE_PREFIX + short(net_id)


def network_namespace(net_id: str) -> str:
    return NETWORK_NS_PREFIX + net_id


def network_of_namespace(ns: str) -> str | None:
    """The network id of a ``qbr-<net id>`` namespace name, else None."""
    return ns[len(NETWORK_NS_PREFIX) :] if ns.startswith(NETWORK_NS_PREFIX) else None


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


# routers (Neutron's legacy L3 agent): a namespace per router, a veth pair per leg
ROUTER_NS_PREFIX = "qrouter-"
ROUTER_INTERFACE_PREFIX = "qr-"  # in the router's namespace, on an internal subnet
ROUTER_GATEWAY_PREFIX = "qg-"  # in the router's namespace, on the external network
ROUTER_INTERFACE_HOST_PREFIX = "qrb-"  # host end of a qr- veth, a bridge member
ROUTER_GATEWAY_HOST_PREFIX = "qgb-"  # host end of the qg- veth, on the external bridge


def router_namespace(router_id: str) -> str:
    return ROUTER_NS_PREFIX + router_id


def router_interface_ns(port_id: str) -> str:
    return ROUTER_INTERFACE_PREFIX + short(port_id)


def router_interface_host(port_id: str) -> str:
    return ROUTER_INTERFACE_HOST_PREFIX + short(port_id)


def router_gateway_ns(port_id: str) -> str:
    return ROUTER_GATEWAY_PREFIX + short(port_id)


def router_gateway_host(port_id: str) -> str:
    return ROUTER_GATEWAY_HOST_PREFIX + short(port_id)


# --expose-external-network: a veth from the host's namespace into the external network's
EXPOSE_HOST_PREFIX = "qbh-"  # in the host's namespace, carries the gateway address
EXPOSE_BRIDGE_PREFIX = "qbx-"  # in the network's namespace, a bridge member


def expose_host(net_id: str) -> str:
    return EXPOSE_HOST_PREFIX + short(net_id)


def expose_bridge(net_id: str) -> str:
    return EXPOSE_BRIDGE_PREFIX + short(net_id)

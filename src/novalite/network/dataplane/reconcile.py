"""Make this host's data plane match a desired state, idempotently.

The desired state is plain data (networks with their subnets, ports, security groups),
built by the caller from the network API's records. :func:`apply` creates what is
missing, updates what changed and removes what is no longer wanted: the ``qbr-*`` network
namespaces with their ``brq-*`` bridge, the ``tap*`` devices on them and their ``bridge novalite``
nftables table, and the ``qdhcp-*`` namespaces with their dnsmasq. Calling it twice with the same
state changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import netns

from novalite.network.dataplane import dhcp, l2, l3, metadata_proxy, names
from novalite.network.dataplane import security_groups as sg

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Network:
    id: str
    subnets: tuple[dhcp.DhcpSubnet, ...] = ()
    mtu: int | None = None
    dhcp_enabled: bool = True
    # addresses on the bridge in the host's namespace: only ``--expose-external-network``
    host_addresses: tuple[str, ...] = ()
    # VXLAN to the other hosts with ports on the network (l2_vxlan): this host's tunnel address and
    # theirs; no peer: no VXLAN device
    tunnel_local: str | None = None
    tunnel_peers: tuple[str, ...] = ()
    # the MAC of this host's DHCP port on the network (compute/dhcp_ports.py; its addresses are
    # the subnets' ``dhcp_ip``); None: a random one
    dhcp_mac: str | None = None


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac: str
    fixed_ips: tuple[str, ...] = ()
    hostname: str | None = None
    security_group_ids: tuple[str, ...] = ()
    port_security_enabled: bool = True


@dataclass(frozen=True)
class DesiredState:
    networks: tuple[Network, ...] = ()
    ports: tuple[Port, ...] = ()
    security_groups: tuple[sg.SecurityGroup, ...] = ()
    routers: tuple[l3.Router, ...] = ()


@dataclass
class Result:
    taps: dict[str, str] = field(default_factory=dict)  # port id -> tap name
    removed: list[str] = field(default_factory=list)


def _hostname(port: Port, ip: str) -> str:
    return port.hostname or "host-" + ip.replace(".", "-").replace(":", "-")


def dhcp_config(network: Network, ports: tuple[Port, ...]) -> dhcp.DhcpConfig:
    hosts = tuple(
        dhcp.DhcpHost(mac=p.mac, ip=ip, hostname=_hostname(p, ip))
        for p in ports
        if p.network_id == network.id
        for ip in p.fixed_ips
        if ":" not in ip
    )
    return dhcp.DhcpConfig(
        net_id=network.id,
        subnets=network.subnets,
        hosts=hosts,
        mtu=network.mtu,
        metadata_ip=metadata_proxy.METADATA_IP,
        mac=network.dhcp_mac,
    )


OWNED_FILE = "dataplane-owned.json"


def _wanted(state: DesiredState) -> dict[str, set[str]]:
    return {
        "networks": {n.id for n in state.networks},
        "bridges": {names.bridge_name(n.id) for n in state.networks},
        "taps": {names.tap_name(p.id) for p in state.ports},
        "dhcp": {n.id for n in state.networks if n.dhcp_enabled},
    }


def _owned(data_dir: Path) -> dict[str, set[str]]:
    """The networks (namespaces), bridges, taps and DHCP networks this data directory's deployment
    made: the only ones its stale removal touches, so that two deployments on one host leave each
    other's alone."""
    try:
        raw = json.loads((data_dir / OWNED_FILE).read_text())
    except (OSError, ValueError):
        raw = {}
    keys = ("networks", "bridges", "taps", "dhcp")
    return {k: set(raw.get(k, ())) if isinstance(raw, dict) else set() for k in keys}


def _record(data_dir: Path, owned: dict[str, set[str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / (OWNED_FILE + ".tmp")
    tmp.write_text(json.dumps({k: sorted(v) for k, v in owned.items()}))
    os.replace(tmp, data_dir / OWNED_FILE)


def apply(state: DesiredState, data_dir: Path) -> Result:
    result = Result()
    owned, wanted = _owned(data_dir), _wanted(state)
    _record(data_dir, {k: owned[k] | wanted[k] for k in owned})  # before anything is made
    for network in state.networks:
        l2.ensure_network(network.id, network.mtu)
        if network.dhcp_enabled:
            if dhcp.ensure(dhcp_config(network, state.ports), data_dir):
                _ensure_metadata_proxy(network.id, data_dir)
        else:
            dhcp.stop(network.id, data_dir)
    for network in state.networks:
        _ensure_tunnel(network)
    mtus = {n.id: n.mtu for n in state.networks}
    for port in state.ports:
        result.taps[port.id] = l2.ensure_port(port.network_id, port.id, port.mac)
        _set_mtu(port.network_id, result.taps[port.id], mtus.get(port.network_id))
    _apply_security_groups(state)
    for router in state.routers:
        l3.ensure(router, data_dir)
    for network in state.networks:
        l3.sync_host_addresses(network.id, network.host_addresses)
    result.removed = _remove_stale(state, data_dir)
    return result


def _apply_security_groups(state: DesiredState) -> None:
    """Each network's table, in its namespace, with chains for the ports on its bridge."""
    filters = [
        sg.PortFilter(
            port_id=p.id,
            tap=names.tap_name(p.id),
            mac=p.mac,
            fixed_ips=p.fixed_ips,
            security_group_ids=p.security_group_ids,
            port_security_enabled=p.port_security_enabled,
        )
        for p in state.ports
    ]
    for network in state.networks:
        taps = {names.tap_name(p.id) for p in state.ports if p.network_id == network.id}
        sg.apply(state.security_groups, filters, netns=l2.namespace(network.id), taps=taps)


def _ensure_tunnel(network: Network) -> None:
    """The network's VXLAN device on its bridge with exactly its peers, or none without peers."""
    from novalite.network.dataplane import l2_vxlan

    if network.tunnel_local and network.tunnel_peers:
        l2_vxlan.ensure(network.id, network.tunnel_local, mtu=network.mtu)
        l2_vxlan.set_peers(network.id, network.tunnel_peers)
    else:
        l2_vxlan.remove(network.id)


def _set_mtu(net_id: str, ifname: str, mtu: int | None) -> None:
    """A tap carries its network's MTU, as the bridge, the VXLAN device and the DHCP veth do, and
    as dnsmasq tells the guest (option 26). The tap is in the network's namespace."""
    if not mtu:
        return
    with l2.in_namespace(net_id) as nsr:
        found = nsr.link_lookup(ifname=ifname)
        if found and nsr.get_links(found[0])[0].get_attr("IFLA_MTU") != mtu:
            nsr.link("set", index=found[0], mtu=mtu)


def _ensure_metadata_proxy(net_id: str, data_dir: Path) -> None:
    """The network's metadata proxy; a failure leaves DHCP and L2 working (logged)."""
    try:
        metadata_proxy.ensure(net_id, data_dir)
    except (OSError, metadata_proxy.MetadataProxyError) as exc:
        LOG.warning("metadata proxy for network %s not running: %s", net_id, exc)


def _remove_stale(state: DesiredState, data_dir: Path) -> list[str]:
    wanted = _wanted(state)
    owned = _owned(data_dir)
    wanted_taps, wanted_bridges, wanted_dhcp = wanted["taps"], wanted["bridges"], wanted["dhcp"]
    removed: list[str] = []
    wanted_routers = {r.id for r in state.routers}
    for router_id in l3.known_routers(data_dir):
        if router_id not in wanted_routers:
            l3.remove(router_id, data_dir)
            removed.append(names.router_namespace(router_id))
    current = l2.list_state()
    on_bridges = {m for ms in current.bridges.values() for m in ms if names.is_tap_name(m)}
    for tap in sorted(((set(current.taps) | on_bridges) & owned["taps"]) - wanted_taps):
        l2.remove_link(tap)
        removed.append(tap)
    stale_dhcp = set(dhcp.running_networks(data_dir))
    present = set(netns.listnetns())
    stale_dhcp |= owned["dhcp"] & {
        ns[len(names.DHCP_NS_PREFIX) :] for ns in present if ns.startswith(names.DHCP_NS_PREFIX)
    }
    for net_id in sorted(stale_dhcp - wanted_dhcp):
        dhcp.stop(net_id, data_dir)
        removed.append(names.dhcp_namespace(net_id))
    here = {n for n in map(names.network_of_namespace, present) if n}
    for net_id in sorted((here & owned["networks"]) - wanted["networks"]):
        l2.remove_network(net_id, force=True)  # its bridge, VXLAN device and veth ends with it
        removed += [names.bridge_name(net_id), names.network_namespace(net_id)]
    # bridges an older novalite made in the host's namespace
    in_host = set(current.bridges) - set(current.namespaces)
    for bridge in sorted(in_host & (owned["bridges"] - wanted_bridges)):
        _remove_tunnels(current.bridges.get(bridge, ()))
        l2.remove_bridge(bridge)
        removed.append(bridge)
    _record(data_dir, wanted)
    return removed


def _remove_tunnels(members: Iterable[str]) -> None:
    """A stale host-namespace bridge's VXLAN device goes with it (removing a bridge leaves its
    members)."""
    from novalite.network.dataplane import l2_vxlan

    for member in members:
        if l2_vxlan.is_tunnel(member):
            l2_vxlan.remove_device(member)


def teardown(data_dir: Path) -> list[str]:
    """Remove everything novalite runs on this host's data plane."""
    removed = _remove_stale(DesiredState(), data_dir)
    sg.remove()  # the host's table, left by an older novalite
    return removed

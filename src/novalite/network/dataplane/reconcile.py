"""Make this host's data plane match a desired state, idempotently.

The desired state is plain data (networks with their subnets, ports, security groups),
built by the caller from the network API's records. :func:`apply` creates what is
missing, updates what changed and removes what is no longer wanted: ``brq-*`` bridges,
``tap*`` devices on them, ``qdhcp-*`` namespaces with their dnsmasq, and the
``bridge novalite`` nftables table. Calling it twice with the same state changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import netns

from novalite.network.dataplane import dhcp, l2, metadata_proxy, names
from novalite.network.dataplane import security_groups as sg

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Network:
    id: str
    subnets: tuple[dhcp.DhcpSubnet, ...] = ()
    mtu: int | None = None
    dhcp_enabled: bool = True


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
    )


def apply(state: DesiredState, data_dir: Path) -> Result:
    result = Result()
    for network in state.networks:
        l2.ensure_network(network.id, network.mtu)
        if network.dhcp_enabled:
            if dhcp.ensure(dhcp_config(network, state.ports), data_dir):
                _ensure_metadata_proxy(network.id, data_dir)
        else:
            dhcp.stop(network.id, data_dir)
    for port in state.ports:
        result.taps[port.id] = l2.ensure_port(port.network_id, port.id, port.mac)
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
    sg.apply(state.security_groups, filters)
    result.removed = _remove_stale(state, data_dir)
    return result


def _ensure_metadata_proxy(net_id: str, data_dir: Path) -> None:
    """The network's metadata proxy; a failure leaves DHCP and L2 working (logged)."""
    try:
        metadata_proxy.ensure(net_id, data_dir)
    except (OSError, metadata_proxy.MetadataProxyError) as exc:
        LOG.warning("metadata proxy for network %s not running: %s", net_id, exc)


def _remove_stale(state: DesiredState, data_dir: Path) -> list[str]:
    wanted_taps = {names.tap_name(p.id) for p in state.ports}
    wanted_bridges = {names.bridge_name(n.id) for n in state.networks}
    wanted_dhcp = {n.id for n in state.networks if n.dhcp_enabled}
    removed: list[str] = []
    current = l2.list_state()
    on_bridges = {m for ms in current.bridges.values() for m in ms if names.is_tap_name(m)}
    for tap in sorted((set(current.taps) | on_bridges) - wanted_taps):
        l2.remove_link(tap)
        removed.append(tap)
    stale_dhcp = set(dhcp.running_networks(data_dir))
    stale_dhcp |= {
        ns[len(names.DHCP_NS_PREFIX) :] for ns in netns.listnetns() if ns.startswith(names.DHCP_NS_PREFIX)
    }
    for net_id in sorted(stale_dhcp - wanted_dhcp):
        dhcp.stop(net_id, data_dir)
        removed.append(names.dhcp_namespace(net_id))
    for bridge in sorted(set(current.bridges) - wanted_bridges):
        l2.remove_bridge(bridge)
        removed.append(bridge)
    return removed


def teardown(data_dir: Path) -> list[str]:
    """Remove everything novalite runs on this host's data plane."""
    removed = _remove_stale(DesiredState(), data_dir)
    sg.remove()
    return removed

"""Routers and floating IPs of the QEMU host's data plane, read from the database
(docs/networking.md, Routers and floating IPs).

:func:`with_routers` adds to a desired state (built by ``compute/networking.py`` from this
host's ports) every router that is up and has an interface or a gateway, with its legs
(port, MAC, ``ip/prefix`` on the subnet), the external subnet's gateway for its default route,
its floating IPs that are associated to a fixed IP, and the networks its legs sit on. One QEMU
host per deployment (see Wiring), so that host runs every router, as a Neutron network node would.
With ``expose_external_network`` the external networks' bridges get their subnet gateway address
in the host's namespace (DevStack's ``br-ex``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.network import FloatingIP, Network, Port, PortIP, Router, Subnet

INTERFACE = "network:router_interface"


def _legs(s: Session, port_ids: list[str]) -> tuple[dict[str, Port], dict[str, list[tuple[str, Subnet]]]]:
    ports = {p.id: p for p in s.scalars(select(Port).where(Port.id.in_(port_ids)))} if port_ids else {}
    addresses: dict[str, list[tuple[str, Subnet]]] = {}
    if port_ids:
        rows = s.execute(
            select(PortIP.port_id, PortIP.ip_address, Subnet)
            .join(Subnet, Subnet.id == PortIP.subnet_id)
            .where(PortIP.port_id.in_(port_ids))
            .order_by(PortIP.ip_address)
        ).tuples()
        for port_id, address, subnet in rows:
            addresses.setdefault(port_id, []).append((address, subnet))
    return ports, addresses


def _v4(pairs: list[tuple[str, Subnet]]) -> list[tuple[str, Subnet]]:
    return [(a, sn) for a, sn in pairs if sn.ip_version == 4]


def with_routers(s: Session, state: Any, *, expose_external_network: bool = False) -> Any:
    """``state`` (a ``reconcile.DesiredState``) plus the routers and the networks they need."""
    from novalite.network.dataplane import l3
    from novalite.network.dataplane import reconcile as rc

    routers = [
        r for r in s.scalars(select(Router).where(Router.admin_state_up.is_(True)).order_by(Router.id))
    ]
    interface_ports = {
        r.id: list(
            s.scalars(
                select(Port.id)
                .where(Port.device_id == r.id, Port.device_owner == INTERFACE)
                .order_by(Port.id)
            )
        )
        for r in routers
    }
    gateway_ids = [r.gw_port_id for r in routers if r.gw_port_id]
    ports, addresses = _legs(s, [p for ids in interface_ports.values() for p in ids] + gateway_ids)
    net_ids = {p.network_id for p in ports.values()}
    networks = {n.id: n for n in s.scalars(select(Network).where(Network.id.in_(net_ids)))} if net_ids else {}

    def leg(port_id: str) -> l3.RouterPort | None:
        port = ports.get(port_id)
        if port is None:
            return None
        net = networks.get(port.network_id)
        return l3.RouterPort(
            port_id=port.id,
            network_id=port.network_id,
            mac=port.mac_address,
            addresses=tuple(
                f"{a}/{ipaddress.ip_network(sn.cidr).prefixlen}" for a, sn in _v4(addresses.get(port.id, []))
            ),
            mtu=net.mtu if net else None,
        )

    wanted: list[l3.Router] = []
    for r in routers:
        interfaces = tuple(x for x in (leg(p) for p in interface_ports[r.id]) if x is not None)
        gateway = leg(r.gw_port_id) if r.gw_port_id else None
        if not interfaces and gateway is None:
            continue
        gateway_ip = None
        if gateway is not None:
            gateway_ip = next(
                (sn.gateway_ip for _, sn in _v4(addresses.get(gateway.port_id, [])) if sn.gateway_ip), None
            )
        fips: tuple[l3.FloatingIP, ...] = ()
        if gateway is not None:
            fips = tuple(
                l3.FloatingIP(address=f.floating_ip_address, fixed_ip=f.fixed_ip_address)
                for f in s.scalars(
                    select(FloatingIP)
                    .where(FloatingIP.router_id == r.id, FloatingIP.fixed_ip_address.is_not(None))
                    .order_by(FloatingIP.floating_ip_address)
                )
                if f.fixed_ip_address and ":" not in f.floating_ip_address
            )
        internal = tuple(sorted({sn.cidr for x in interfaces for _, sn in _v4(addresses.get(x.port_id, []))}))
        wanted.append(
            l3.Router(
                id=r.id,
                interfaces=interfaces,
                gateway=gateway,
                gateway_ip=gateway_ip,
                enable_snat=r.enable_snat,
                floating_ips=fips,
                internal_cidrs=internal,
            )
        )

    have = {n.id for n in state.networks}
    needed = sorted(
        {x.network_id for r in wanted for x in (*r.interfaces, *((r.gateway,) if r.gateway else ()))}
    )
    added = tuple(
        rc.Network(id=n, mtu=networks[n].mtu if n in networks else None, dhcp_enabled=False)
        for n in needed
        if n not in have
    )
    all_networks = (*state.networks, *added)
    if expose_external_network:
        all_networks = tuple(_exposed(s, n) for n in all_networks)
    return dataclasses.replace(state, networks=all_networks, routers=tuple(wanted))


def _exposed(s: Session, network: Any) -> Any:
    net = s.get(Network, network.id)
    if net is None or not net.router_external:
        return network
    subnets = s.scalars(
        select(Subnet).where(Subnet.network_id == network.id, Subnet.ip_version == 4).order_by(Subnet.id)
    )
    host = tuple(
        f"{sn.gateway_ip}/{ipaddress.ip_network(sn.cidr).prefixlen}" for sn in subnets if sn.gateway_ip
    )
    return dataclasses.replace(network, host_addresses=host)

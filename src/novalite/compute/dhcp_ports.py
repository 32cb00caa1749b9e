"""Each QEMU host's own DHCP port on each network it serves (issue 20; Neutron's DHCP agent ports).

A network whose bridges on several hosts are joined by VXLAN is one L2 segment with one dnsmasq
per host. Were they all to answer as the same server (one address, as before), a guest's
DHCPREQUEST naming that server would reach every host's dnsmasq: the one that does not know the
guest's MAC takes the request as its own and answers DHCPNAK, and the guest starts over -- or
gives up -- whenever that NAK arrives before the ACK of its own host. So, as in Neutron, every host
has a port of its own on the network: ``device_owner`` ``network:dhcp``, ``binding:host_id`` the
host, ``device_id`` ``dhcp<uuid5 of the host>-<network id>``, an address on each DHCP-enabled IPv4
subnet from the subnet's pool. Its namespace's veth carries that port's MAC and addresses; the
guests' option 121 route to 169.254.169.254 points at it (the metadata proxy there still names the
instance by network and source address). ``openstack port list --device-owner network:dhcp`` shows
one port per host and network.

The agent makes the port when the host's first port on the network is plugged and deletes it with
the last one (:func:`sync`; idempotent). Deleting the network deletes these ports too, as Neutron
does (``network.networks.AUTO_DELETED_OWNERS``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import Network, Port, PortIP
from novalite.errors import NovaliteError
from novalite.network import ports

LOG = logging.getLogger(__name__)
DEVICE_OWNER = "network:dhcp"


def device_id(host: str, net_id: str) -> str:
    """Neutron's form: ``dhcp<host uuid>-<network id>`` (the host's uuid from its name here)."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{net_id}"


@dataclass(frozen=True)
class DhcpPort:
    id: str
    network_id: str
    mac: str
    addresses: tuple[tuple[str, str], ...]  # (subnet id, address), sorted by subnet id

    def subnet_ids(self) -> tuple[str, ...]:
        return tuple(sub for sub, _ in self.addresses)


def wanted(state: Any) -> dict[str, tuple[str, ...]]:
    """network id -> its DHCP-enabled IPv4 subnet ids, for the networks ``state`` serves DHCP on."""
    return {
        n.id: tuple(sorted(sub.id for sub in n.subnets if ipaddress.ip_network(sub.cidr).version == 4))
        for n in state.networks
        if n.dhcp_enabled and n.subnets
    }


def current(s: Session, host: str) -> list[DhcpPort]:
    """This host's DHCP ports (every one, duplicates included), oldest first."""
    rows = list(
        s.scalars(
            select(Port)
            .where(Port.device_owner == DEVICE_OWNER, Port.binding_host_id == host)
            .order_by(Port.created_at, Port.id)
        )
    )
    addresses: dict[str, list[tuple[str, str]]] = {}
    if rows:
        for port_id, subnet_id, address in s.execute(
            select(PortIP.port_id, PortIP.subnet_id, PortIP.ip_address).where(
                PortIP.port_id.in_([p.id for p in rows])
            )
        ).tuples():
            addresses.setdefault(port_id, []).append((subnet_id, address))
    return [
        DhcpPort(
            id=p.id,
            network_id=p.network_id,
            mac=p.mac_address,
            addresses=tuple(sorted(addresses.get(p.id, []))),
        )
        for p in rows
    ]


def in_line(have: list[DhcpPort], want: Mapping[str, tuple[str, ...]]) -> bool:
    """True when ``have`` is exactly one port per wanted network with an address on each subnet."""
    by_net = {p.network_id: p for p in have}
    return (
        len(by_net) == len(have)
        and set(by_net) == set(want)
        and all(by_net[n].subnet_ids() == subnets for n, subnets in want.items())
    )


def _service_context(project_id: str) -> RequestContext:
    return RequestContext(user_id="neutron", project_id=project_id, roles=("admin",))


def sync(s: Session, host: str, want: Mapping[str, tuple[str, ...]]) -> list[DhcpPort]:
    """Make this host's DHCP ports match ``want`` (network id -> subnet ids): create the missing,
    delete those of networks no longer served here, duplicates, and those whose subnets changed
    (made again). A network whose port cannot be made (no free address, quota) is logged and left
    without one: its dnsmasq then uses the subnet's last address, as without ports."""
    kept: dict[str, Port] = {}
    for info in current(s, host):  # oldest first: the one kept when there are two
        row = s.get(Port, info.id)
        if row is None:
            continue
        if (
            row.network_id in want
            and row.network_id not in kept
            and info.subnet_ids() == want[row.network_id]
        ):
            kept[row.network_id] = row
        else:
            ports.delete_port(s, _service_context(row.project_id), row)
    for net_id, subnet_ids in want.items():
        if net_id in kept:
            continue
        net = s.get(Network, net_id)
        if net is None:
            continue
        fields = {
            "network_id": net_id,
            "project_id": net.project_id,
            "device_owner": DEVICE_OWNER,
            "device_id": device_id(host, net_id),
            "binding:host_id": host,
            "fixed_ips": [{"subnet_id": sub} for sub in subnet_ids],
        }
        try:
            with s.begin_nested():
                ports.create_port(s, _service_context(net.project_id), fields)
        except NovaliteError as exc:
            LOG.warning("no DHCP port for network %s on host %s: %s", net_id, host, exc)
    s.flush()
    return current(s, host)


def with_dhcp_ports(state: Any, have: list[DhcpPort]) -> Any:
    """``state`` with each network's DHCP server address (per subnet) and MAC from its port."""
    by_net = {p.network_id: p for p in have}
    networks = []
    for n in state.networks:
        port = by_net.get(n.id)
        if port is None:
            networks.append(n)
            continue
        address = dict(port.addresses)
        subnets = tuple(
            dataclasses.replace(sub, dhcp_ip=address.get(sub.id) or sub.dhcp_ip) for sub in n.subnets
        )
        networks.append(dataclasses.replace(n, subnets=subnets, dhcp_mac=port.mac))
    return dataclasses.replace(state, networks=tuple(networks))

"""Two hosts' DHCP servers on one L2 segment (a network joined by VXLAN, issue 20).

Each host runs a dnsmasq for the network that knows only its own guests. Both hear every guest's
broadcasts; the other host's server must leave the guest alone. Before the fix both servers had
one address and were authoritative, and the other host's dnsmasq answered every DHCPREQUEST with
DHCPNAK ("wrong server-ID"), which made the second host's guest lose its lease now and then
(tests/e2e/test_qemu_two_hosts.py). Here the "other host" is a second network's DHCP namespace
whose veth is moved onto the first network's bridge: one segment, two servers, each with the
address and MAC of its own DHCP port (compute/dhcp_ports.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from novalite.network.dataplane import dhcp, names, reconcile

from .conftest import Guests, in_ns, sh

NET = "d1d1d1d1-0000-4000-8000-000000000001"
OTHER = "d2d2d2d2-0000-4000-8000-000000000002"  # stands in for the network on the other host
CIDR = "10.231.9.0/24"
GUEST = ("d1a1a1a1-0000-4000-8000-0000000000a1", "fa:16:3e:19:00:a1", "10.231.9.11")
STRANGER = ("d2b1b1b1-0000-4000-8000-0000000000b1", "fa:16:3e:19:00:b1", "10.231.9.12")
SERVERS = {NET: ("10.231.9.2", "fa:16:3e:19:00:02"), OTHER: ("10.231.9.3", "fa:16:3e:19:00:03")}


def _network(net_id: str) -> reconcile.Network:
    address, mac = SERVERS[net_id]
    subnet = dhcp.DhcpSubnet(id=f"s-{net_id[:4]}", cidr=CIDR, gateway_ip="10.231.9.1", dhcp_ip=address)
    return reconcile.Network(net_id, subnets=(subnet,), mtu=1450, dhcp_mac=mac)


def _log(data_dir: Path, net_id: str) -> str:
    path = dhcp.state_dir(data_dir, net_id) / "dnsmasq.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.timeout(180)
def test_the_other_hosts_dhcp_server_leaves_a_guest_it_does_not_know_alone(
    dataplane: tuple[Path, Guests],
) -> None:
    data_dir, guests = dataplane
    guest = guests.add(names.tap_name(GUEST[0]), GUEST[1])
    stranger = guests.add(names.tap_name(STRANGER[0]), STRANGER[1])
    ports = (
        reconcile.Port(GUEST[0], NET, GUEST[1], fixed_ips=(GUEST[2],), port_security_enabled=False),
        reconcile.Port(
            STRANGER[0], OTHER, STRANGER[1], fixed_ips=(STRANGER[2],), port_security_enabled=False
        ),
    )
    state = reconcile.DesiredState(networks=(_network(NET), _network(OTHER)), ports=ports)
    reconcile.apply(state, data_dir)
    # the other "host"'s DHCP server and its guest join this network's bridge: one segment
    # (each network's bridge is in its own namespace: the links move into this network's first)
    for link in (names.dhcp_host_veth(OTHER), names.tap_name(STRANGER[0])):
        here, there = names.network_namespace(NET), names.network_namespace(OTHER)
        sh("ip", "-n", there, "link", "set", link, "netns", here)
        in_ns(here, "ip", "link", "set", link, "master", names.bridge_name(NET), "up")

    # each server has its port's address and MAC
    for net_id, (address, mac) in SERVERS.items():
        shown = in_ns(names.dhcp_namespace(net_id), "ip", "-o", "addr", "show", names.dhcp_ns_veth(net_id))
        assert f"inet {address}/24" in shown.stdout
        link = in_ns(names.dhcp_namespace(net_id), "ip", "-o", "link", "show", names.dhcp_ns_veth(net_id))
        assert f"link/ether {mac}" in link.stdout

    for _ in range(3):  # a few rounds: the NAK raced the ACK
        lease = guests.dhcp(guest)
        assert lease.get("ip") == GUEST[2], _log(data_dir, NET) + _log(data_dir, OTHER)
        assert lease.get("mtu") == "1450"
        assert guests.dhcp(stranger).get("ip") == STRANGER[2]
        in_ns(guest, "ip", "addr", "flush", "dev", "eth0")
        in_ns(stranger, "ip", "addr", "flush", "dev", "eth0")
    # the guests' metadata route goes to their own host's server
    for net_id, (address, _) in SERVERS.items():
        assert f"169.254.169.254/32,{address}" in (dhcp.state_dir(data_dir, net_id) / "opts").read_text()
    mine, theirs = _log(data_dir, NET), _log(data_dir, OTHER)
    assert f"DHCPACK({names.dhcp_ns_veth(NET)}) {GUEST[2]}" in mine, mine
    assert f"DHCPDISCOVER({names.dhcp_ns_veth(OTHER)}) {GUEST[1]}" in theirs, theirs  # heard it ...
    assert "DHCPNAK" not in theirs and "DHCPNAK" not in mine, theirs + mine  # ... and kept quiet


def test_a_changed_dhcp_port_moves_the_server(dataplane: tuple[Path, Guests]) -> None:
    """Another address or MAC for the host's DHCP port (the port made again): dnsmasq restarts on
    the new address, and the veth takes the new MAC."""
    data_dir, guests = dataplane
    guest = guests.add(names.tap_name(GUEST[0]), GUEST[1])
    port = reconcile.Port(GUEST[0], NET, GUEST[1], fixed_ips=(GUEST[2],), port_security_enabled=False)
    network = _network(NET)
    reconcile.apply(reconcile.DesiredState(networks=(network,), ports=(port,)), data_dir)
    before = dhcp.pid(data_dir, NET)
    moved = dataclasses.replace(
        network,
        subnets=(dataclasses.replace(network.subnets[0], dhcp_ip="10.231.9.4"),),
        dhcp_mac="fa:16:3e:19:00:04",
    )
    reconcile.apply(reconcile.DesiredState(networks=(moved,), ports=(port,)), data_dir)
    assert dhcp.pid(data_dir, NET) not in (None, before)
    ns, veth = names.dhcp_namespace(NET), names.dhcp_ns_veth(NET)
    assert "inet 10.231.9.4/24" in in_ns(ns, "ip", "-o", "addr", "show", veth).stdout
    assert "10.231.9.2/" not in in_ns(ns, "ip", "-o", "addr", "show", veth).stdout
    assert "link/ether fa:16:3e:19:00:04" in in_ns(ns, "ip", "-o", "link", "show", veth).stdout
    lease = guests.dhcp(guest)
    assert lease.get("ip") == GUEST[2]
    assert "169.254.169.254/32,10.231.9.4" in (dhcp.state_dir(data_dir, NET) / "opts").read_text()

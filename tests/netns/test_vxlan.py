"""A network's bridges on two hosts joined by VXLAN (issue 20, item 1), on real kernel devices.

Two namespaces play the two compute hosts, joined by a veth pair (their underlay, 198.19.x.0/30
inside the namespaces only); each has the network's bridge, in a namespace of its own as on a
real host, and a "guest" namespace on it. With ``l2_vxlan`` each host gets the network's VXLAN
device (made in the host's namespace, moved to the bridge's; one VNI per network) and a unicast
flood entry for the other host: the guests ping each other across. Without the peer entry they
do not (nothing floods to a host that is not listed); a second network's VNI is another one and
its guests do not reach the first's. Everything is removed afterwards."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest

from novalite.network.dataplane import l2_vxlan, names
from tests.netns.conftest import in_ns, require_netns, sh


class Hosts:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        third = random.randint(200, 250)
        self.a, self.b = f"nlvxa-{tag}", f"nlvxb-{tag}"
        self.underlay = {self.a: f"198.19.{third}.5", self.b: f"198.19.{third}.6"}
        self.namespaces: list[str] = []

    def make(self) -> None:
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.a,
            "link",
            "add",
            "under0",
            "type",
            "veth",
            "peer",
            "name",
            "under0",
            "netns",
            self.b,
        )
        for ns, addr in self.underlay.items():
            in_ns(ns, "ip", "addr", "add", f"{addr}/30", "dev", "under0")
            in_ns(ns, "ip", "link", "set", "under0", "up")

    def bns(self, host: str, net_id: str) -> str:
        """The namespace holding ``net_id``'s bridge on ``host`` (``qbr-<net>`` on a real host)."""
        return f"{host}-{net_id[:8]}"

    def bridge(self, host: str, net_id: str) -> None:
        """What ``l2.ensure_network`` makes: the bridge in a namespace of its own, per host."""
        ns = self.bns(host, net_id)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        br = names.bridge_name(net_id)
        in_ns(ns, "ip", "link", "add", br, "type", "bridge")
        in_ns(ns, "ip", "link", "set", br, "up")

    def guest(self, host: str, net_id: str, address: str) -> str:
        ns = f"nlvxg-{uuid.uuid4().hex[:6]}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        tap = names.tap_name(uuid.uuid4().hex)
        bns = self.bns(host, net_id)
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", tap, "netns", bns)
        in_ns(bns, "ip", "link", "set", tap, "master", names.bridge_name(net_id), "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "link", "set", "eth0", "mtu", "1450")
        in_ns(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    require_netns()
    h = Hosts()
    try:
        h.make()
        yield h
    finally:
        h.close()
    listed = sh("ip", "netns", "list").stdout
    assert not any(ns in listed for ns in h.namespaces)


def _pings(ns: str, address: str, tries: int = 5) -> bool:
    return any(
        in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0
        for _ in range(tries)
    )


def _silent(ns: str, address: str) -> bool:
    in_ns(ns, "ip", "neigh", "flush", "dev", "eth0", check=False)
    return all(
        in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode != 0
        for _ in range(2)
    )


def test_guests_of_one_network_on_two_hosts_ping_each_other_over_vxlan(hosts: Hosts) -> None:
    net, other = str(uuid.uuid4()), str(uuid.uuid4())
    a, b = hosts.a, hosts.b
    for host in (a, b):
        hosts.bridge(host, net)
        hosts.bridge(host, other)
    ga = hosts.guest(a, net, "192.0.2.10")
    gb = hosts.guest(b, net, "192.0.2.20")
    oa = hosts.guest(a, other, "192.0.2.30")  # same addresses plan, another network

    for host, peer in ((a, b), (b, a)):
        for n in (net, other):
            l2_vxlan.ensure(n, hosts.underlay[host], netns=host, bridge_ns=hosts.bns(host, n), mtu=1450)
        got = l2_vxlan.set_peers(net, [hosts.underlay[peer]], bridge_ns=hosts.bns(host, net))
        assert got == (hosts.underlay[peer],)
    assert l2_vxlan.vni(net) != l2_vxlan.vni(other)
    ba = hosts.bns(a, net)
    tunnel = l2_vxlan.show(net, bridge_ns=ba)
    assert tunnel is not None and (tunnel.vni, tunnel.local) == (l2_vxlan.vni(net), hosts.underlay[a])
    # the device is on the bridge in the bridge's namespace, its UDP socket in the underlay's
    on_bridge = in_ns(ba, "ip", "-o", "link", "show", "master", names.bridge_name(net)).stdout
    assert l2_vxlan.device_name(net) in on_bridge
    assert l2_vxlan.device_name(net) not in in_ns(a, "ip", "-o", "link", "show").stdout

    assert _pings(ga, "192.0.2.20")  # across the hosts, through both bridges and the tunnel
    assert _pings(gb, "192.0.2.10")
    assert _silent(oa, "192.0.2.20")  # another network: another VNI, another bridge

    # idempotent: ensuring again changes nothing, the flood list stays the one peer
    l2_vxlan.ensure(net, hosts.underlay[a], netns=a, bridge_ns=ba, mtu=1450)
    assert l2_vxlan.set_peers(net, [hosts.underlay[b]], bridge_ns=ba) == (hosts.underlay[b],)
    assert _pings(ga, "192.0.2.20")

    # host b no longer listed on a (its last port gone): nothing floods there, ARP fails
    assert l2_vxlan.set_peers(net, [], bridge_ns=ba) == ()
    assert _silent(ga, "192.0.2.20")
    assert l2_vxlan.set_peers(net, [hosts.underlay[b]], bridge_ns=ba) == (hosts.underlay[b],)
    assert _pings(ga, "192.0.2.20")

    for host in (a, b):
        for n in (net, other):
            l2_vxlan.remove(n, bridge_ns=hosts.bns(host, n))
            l2_vxlan.remove(n, bridge_ns=hosts.bns(host, n))  # idempotent
            assert l2_vxlan.show(n, bridge_ns=hosts.bns(host, n)) is None
    assert _silent(ga, "192.0.2.20")

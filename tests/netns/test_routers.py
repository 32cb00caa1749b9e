"""Routers and floating IPs in ``qrouter-`` namespaces (no QEMU): client namespaces stand in
for guests on two tenant networks and for a host on the external network.

The external "host" has no route to the tenant networks, so every answer it gives to a guest
proves the router translated the guest's address (SNAT to the gateway or to a floating IP).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from novalite.network.dataplane import l3, names, reconcile
from novalite.network.dataplane import security_groups as sg

from .conftest import Guests, host_snapshot, in_ns

NET_A = "a27a27a2-0000-4000-8000-000000000001"
NET_B = "b27b27b2-0000-4000-8000-000000000002"
EXT = "e27e27e2-0000-4000-8000-0000000000e0"
ROUTER = "r27r27r2-0000-4000-8000-0000000000r0"
A1 = ("a1a2a7a1-0000-4000-8000-0000000000a1", "fa:16:3e:27:00:a1", "10.232.1.11")
B1 = ("b1b2b7b1-0000-4000-8000-0000000000b1", "fa:16:3e:27:00:b1", "10.232.2.11")
CLIENT = ("c1c2c7c1-0000-4000-8000-0000000000c1", "fa:16:3e:27:00:c1", "172.24.40.1")
QR_A = l3.RouterPort("9a9a9a9a-0000-4000-8000-00000000qra0", NET_A, "fa:16:3e:27:01:0a", ("10.232.1.1/24",))
QR_B = l3.RouterPort("9b9b9b9b-0000-4000-8000-00000000qrb0", NET_B, "fa:16:3e:27:01:0b", ("10.232.2.1/24",))
QG = l3.RouterPort("9e9e9e9e-0000-4000-8000-00000000qge0", EXT, "fa:16:3e:27:01:0e", ("172.24.40.10/24",))
FIP = "172.24.40.20"
GROUP = "5e275e27-0000-4000-8000-000000000g27"
RULES = (sg.SecurityGroupRule("egress", "IPv4"), sg.SecurityGroupRule("ingress", "IPv4", "icmp"))


def _state(router: l3.Router | None) -> reconcile.DesiredState:
    ports = [
        reconcile.Port(pid, net, mac, fixed_ips=(ip,), security_group_ids=(GROUP,))
        for net, (pid, mac, ip) in ((NET_A, A1), (NET_B, B1))
    ]
    # the external host: a port on the external network, unfiltered
    client = reconcile.Port(CLIENT[0], EXT, CLIENT[1], fixed_ips=(CLIENT[2],), port_security_enabled=False)
    ports.append(client)
    return reconcile.DesiredState(
        networks=tuple(reconcile.Network(n, dhcp_enabled=False) for n in (NET_A, NET_B, EXT)),
        ports=tuple(ports),
        security_groups=(sg.SecurityGroup(GROUP, RULES),),
        routers=(router,) if router else (),
    )


def _boot(data_dir: Path, guests: Guests, state: reconcile.DesiredState) -> dict[str, str]:
    spaces = {}
    for pid, mac, ip, prefix, gw in (
        (*A1, 24, "10.232.1.1"),
        (*B1, 24, "10.232.2.1"),
        (*CLIENT, 24, None),
    ):
        ns = guests.add(names.tap_name(pid), mac)
        in_ns(ns, "ip", "addr", "add", f"{ip}/{prefix}", "dev", "eth0")
        if gw:
            in_ns(ns, "ip", "route", "add", "default", "via", gw)
        spaces[pid] = ns
    reconcile.apply(state, data_dir)
    return spaces


def test_router_joins_subnets_snats_and_floats(dataplane: tuple[Path, Guests]) -> None:
    data_dir, guests = dataplane
    before = host_snapshot()
    try:
        spaces = _boot(data_dir, guests, _state(None))
        a1, b1, client = spaces[A1[0]], spaces[B1[0]], spaces[CLIENT[0]]

        # no router: the two tenant networks do not reach each other, nor the outside
        assert guests.silent(a1, B1[2])
        assert guests.silent(a1, CLIENT[2])

        # a router on both subnets: east-west traffic is routed
        joined = l3.Router(ROUTER, interfaces=(QR_A, QR_B))
        reconcile.apply(_state(joined), data_dir)
        assert names.router_namespace(ROUTER) in sh_netns()
        assert guests.pings(a1, B1[2])
        assert guests.pings(b1, A1[2])
        assert guests.silent(a1, CLIENT[2])  # no gateway yet

        # a gateway on the external network: SNAT to the gateway address lets both out
        gated = dataclasses.replace(joined, gateway=QG, gateway_ip=CLIENT[2])
        reconcile.apply(_state(gated), data_dir)
        assert guests.pings(a1, CLIENT[2])
        assert guests.pings(b1, CLIENT[2])
        assert guests.silent(client, A1[2])  # the tenant address is not reachable from outside

        # a floating IP for A1: the outside reaches A1 at it; A1 goes out as the floating IP
        floated = dataclasses.replace(gated, floating_ips=(l3.FloatingIP(FIP, A1[2]),))
        reconcile.apply(_state(floated), data_dir)
        assert guests.pings(client, FIP)
        assert guests.pings(a1, CLIENT[2])
        nft = in_ns(names.router_namespace(ROUTER), "nft", "list", "table", "ip", l3.NFT_TABLE).stdout
        assert f"dnat to {A1[2]}" in nft and f"snat to {FIP}" in nft
        assert "novalite_l3" not in sh_host_tables()  # the nat table lives in the namespace only

        # no SNAT: B1 (no floating IP) cannot go out any more; A1 still can, as its floating IP
        no_snat = dataclasses.replace(floated, enable_snat=False)
        reconcile.apply(_state(no_snat), data_dir)
        assert guests.silent(b1, CLIENT[2])
        assert guests.pings(a1, CLIENT[2])

        # idempotent: applying again changes nothing; a lost leg is rebuilt
        reconcile.apply(_state(no_snat), data_dir)
        in_ns(names.router_namespace(ROUTER), "ip", "link", "del", names.router_interface_ns(QR_B.port_id))
        reconcile.apply(_state(no_snat), data_dir)
        assert guests.pings(a1, B1[2])

        # the floating IP removed: the outside no longer reaches A1
        reconcile.apply(_state(dataclasses.replace(no_snat, floating_ips=())), data_dir)
        assert guests.silent(client, FIP)

        # an interface removed: B1 is cut off from A1
        reconcile.apply(_state(dataclasses.replace(no_snat, interfaces=(QR_A,), floating_ips=())), data_dir)
        assert guests.silent(a1, B1[2])
        links = in_ns(names.router_namespace(ROUTER), "ip", "-o", "link").stdout
        assert names.router_interface_ns(QR_B.port_id) not in links

        # the router deleted: its namespace and veths go
        reconcile.apply(_state(None), data_dir)
        assert names.router_namespace(ROUTER) not in sh_netns()
        assert guests.silent(a1, CLIENT[2])
    finally:
        guests.close()
        reconcile.teardown(data_dir)
    assert host_snapshot() == before


def test_teardown_removes_router_namespaces(dataplane: tuple[Path, Guests]) -> None:
    data_dir, guests = dataplane
    before = host_snapshot()
    router = l3.Router(ROUTER, interfaces=(QR_A,), gateway=QG, floating_ips=(l3.FloatingIP(FIP, A1[2]),))
    reconcile.apply(_state(router), data_dir)
    assert names.router_namespace(ROUTER) in sh_netns()
    assert l3.known_routers(data_dir) == [ROUTER]
    reconcile.teardown(data_dir)
    assert names.router_namespace(ROUTER) not in sh_netns()
    assert host_snapshot() == before


def sh_netns() -> list[str]:
    return host_snapshot()["netns"]


def sh_host_tables() -> str:
    return "\n".join(host_snapshot()["nft"])


EXPOSED = "e3e3e3e3-0000-4000-8000-0000000000e3"
OUTSIDE = ("c3c3c3c3-0000-4000-8000-0000000000c3", "fa:16:3e:27:00:c3", "198.51.100.2")


def test_an_exposed_external_network_is_reached_from_the_host_by_a_veth(
    dataplane: tuple[Path, Guests],
) -> None:
    """``--expose-external-network``: the gateway address sits on ``qbh-`` in the host's
    namespace, whose peer is on the bridge in the network's namespace (a documentation range,
    198.51.100.0/30: nothing private is routed in the host's namespace)."""
    data_dir, guests = dataplane
    ns = guests.add(names.tap_name(OUTSIDE[0]), OUTSIDE[1])
    in_ns(ns, "ip", "addr", "add", f"{OUTSIDE[2]}/30", "dev", "eth0")
    port = reconcile.Port(
        OUTSIDE[0], EXPOSED, OUTSIDE[1], fixed_ips=(OUTSIDE[2],), port_security_enabled=False
    )
    network = reconcile.Network(EXPOSED, dhcp_enabled=False, host_addresses=("198.51.100.1/30",))
    reconcile.apply(reconcile.DesiredState(networks=(network,), ports=(port,)), data_dir)
    host_links = host_snapshot()["host_links"]
    assert names.expose_host(EXPOSED) in host_links and names.bridge_name(EXPOSED) not in host_links
    ping = ["busybox", "ping", "-c", "1", "-W", "1", OUTSIDE[2]]
    assert any(subprocess.run(ping, capture_output=True, check=False).returncode == 0 for _ in range(5))

    hidden = dataclasses.replace(network, host_addresses=())
    reconcile.apply(reconcile.DesiredState(networks=(hidden,), ports=(port,)), data_dir)
    assert names.expose_host(EXPOSED) not in host_snapshot()["host_links"]
    assert in_ns(ns, "busybox", "ping", "-c", "1", "-W", "1", "198.51.100.1", check=False).returncode != 0

"""Two networks on real bridges, DHCP from dnsmasq, security groups in nftables.

Both networks use the same CIDR on purpose: tenants may overlap, and a guest of one
network must still not reach the other's guest at the very same address.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from novalite.network.dataplane import dhcp, l2, names, reconcile
from novalite.network.dataplane import security_groups as sg

from .conftest import Guests, host_snapshot, in_ns

NET_A = "a17a17a1-0000-4000-8000-000000000001"
NET_B = "b17b17b1-0000-4000-8000-000000000002"
CIDR = "10.231.7.0/24"
A1 = ("a1a1a1a1-0000-4000-8000-0000000000a1", "fa:16:3e:17:00:a1", "10.231.7.11")
A2 = ("a2a2a2a2-0000-4000-8000-0000000000a2", "fa:16:3e:17:00:a2", "10.231.7.12")
A3 = ("a3a3a3a3-0000-4000-8000-0000000000a3", "fa:16:3e:17:00:a3", "10.231.7.13")
B1 = ("b1b1b1b1-0000-4000-8000-0000000000b1", "fa:16:3e:17:00:b1", "10.231.7.12")
WEB = "5e5e5e5e-0000-4000-8000-00000000we00"
OTHER = "07707707-0000-4000-8000-0000000other"
ICMP_IN = sg.SecurityGroupRule("ingress", "IPv4", "icmp", remote_ip_prefix="0.0.0.0/0")


def _subnet(sid: str) -> dhcp.DhcpSubnet:
    return dhcp.DhcpSubnet(
        id=sid,
        cidr=CIDR,
        gateway_ip="10.231.7.1",
        dns_nameservers=("10.231.7.53",),
        host_routes=(dhcp.HostRoute("10.99.0.0/16", "10.231.7.254"),),
    )


def _state(*, icmp: bool, port_security_a2: bool = True) -> reconcile.DesiredState:
    rules = (sg.SecurityGroupRule("egress", "IPv4"), *((ICMP_IN,) if icmp else ()))
    ports = []
    for net, (pid, mac, ip) in ((NET_A, A1), (NET_A, A2), (NET_B, B1)):
        ports.append(
            reconcile.Port(
                id=pid,
                network_id=net,
                mac=mac,
                fixed_ips=(ip,),
                hostname=f"vm-{pid[:2]}",
                security_group_ids=(WEB,),
                port_security_enabled=port_security_a2 or pid != A2[0],
            )
        )
    return reconcile.DesiredState(
        networks=(
            reconcile.Network(NET_A, subnets=(_subnet("sa"),), mtu=1400),
            reconcile.Network(NET_B, subnets=(_subnet("sb"),), mtu=1400),
        ),
        ports=tuple(ports),
        security_groups=(sg.SecurityGroup(WEB, rules),),
    )


def _boot(data_dir: Path, guests: Guests, state: reconcile.DesiredState) -> dict[str, str]:
    """Client namespaces on veths named like the taps, then reconcile; port id -> namespace."""
    spaces = {}
    for pid, mac, _ip in (A1, A2, B1):
        spaces[pid] = guests.add(names.tap_name(pid), mac)
    reconcile.apply(state, data_dir)
    return spaces


def test_dhcp_gives_each_port_its_fixed_ip_and_subnet_options(dataplane: tuple[Path, Guests]) -> None:
    data_dir, guests = dataplane
    spaces = _boot(data_dir, guests, _state(icmp=True))
    lease = guests.dhcp(spaces[A1[0]])
    assert lease.get("ip") == A1[2]
    assert lease.get("router") == "10.231.7.1"
    assert lease.get("dns") == "10.231.7.53"
    assert lease.get("mtu") == "1400"
    assert lease.get("hostname") == "vm-a1"
    assert "10.99.0.0/16" in lease.get("staticroutes", "")
    assert guests.dhcp(spaces[B1[0]]).get("ip") == B1[2]

    # A port added later is served by the same dnsmasq, told by SIGHUP (no restart).
    served_by = dhcp.pid(data_dir, NET_A)
    state = _state(icmp=True)
    a3 = reconcile.Port(A3[0], NET_A, A3[1], fixed_ips=(A3[2],), security_group_ids=(WEB,))
    newcomer = guests.add(names.tap_name(A3[0]), A3[1])
    grown = reconcile.DesiredState(state.networks, (*state.ports, a3), state.security_groups)
    reconcile.apply(grown, data_dir)
    lease = guests.dhcp(newcomer)
    assert lease.get("ip") == A3[2]
    assert lease.get("hostname") == "host-10-231-7-13"
    assert dhcp.pid(data_dir, NET_A) == served_by


def test_ping_within_a_network_not_across_and_security_groups_toggle(
    dataplane: tuple[Path, Guests],
) -> None:
    data_dir, guests = dataplane
    spaces = _boot(data_dir, guests, _state(icmp=True))
    for pid in (A1[0], A2[0], B1[0]):
        assert guests.dhcp(spaces[pid]).get("ip")
    a1, b1 = spaces[A1[0]], spaces[B1[0]]

    assert guests.pings(a1, A2[2])  # same network, ICMP allowed
    # B1 has A2's address on the other network: the reply, if any, comes from A2 only.
    in_ns(b1, "ip", "link", "set", "eth0", "down")
    assert guests.pings(a1, A2[2])
    in_ns(b1, "ip", "link", "set", "eth0", "up")
    assert guests.silent(spaces[B1[0]], A1[2])  # B1 cannot reach A1 across networks

    reconcile.apply(_state(icmp=False), data_dir)  # the ICMP ingress rule goes
    assert guests.silent(a1, A2[2])
    reconcile.apply(_state(icmp=False, port_security_a2=False), data_dir)  # no filtering on A2
    assert guests.pings(a1, A2[2])
    reconcile.apply(_state(icmp=True), data_dir)  # the rule comes back
    assert guests.pings(a1, A2[2])

    # Ingress only from members of WEB (a remote group): A1 outside WEB gets no answer.
    members_only = sg.SecurityGroupRule("ingress", "IPv4", remote_group_id=WEB)
    state = _state(icmp=False)
    others = sg.SecurityGroup(OTHER, (sg.SecurityGroupRule("egress", "IPv4"),))
    web = sg.SecurityGroup(WEB, (*state.security_groups[0].rules, members_only))
    ports = tuple(
        dataclasses.replace(p, security_group_ids=(OTHER,)) if p.id == A1[0] else p for p in state.ports
    )
    reconcile.apply(dataclasses.replace(state, ports=ports, security_groups=(web, others)), data_dir)
    assert guests.silent(a1, A2[2])
    assert guests.pings(spaces[A2[0]], A1[2]) is False  # A1 has no ingress rule at all
    reconcile.apply(dataclasses.replace(state, security_groups=(web, others)), data_dir)  # A1 joins WEB
    assert guests.pings(a1, A2[2])


def test_a_guest_cannot_send_from_an_address_it_does_not_own(dataplane: tuple[Path, Guests]) -> None:
    data_dir, guests = dataplane
    spaces = _boot(data_dir, guests, _state(icmp=True))
    a1 = spaces[A1[0]]
    assert guests.dhcp(a1).get("ip") == A1[2]
    assert guests.dhcp(spaces[A2[0]]).get("ip") == A2[2]
    in_ns(a1, "ip", "addr", "add", "10.231.7.99/24", "dev", "eth0")
    assert guests.pings(a1, A2[2])  # its own address works
    assert not guests.pings(a1, A2[2], source="10.231.7.99", tries=2)


def test_reconcile_is_idempotent_and_teardown_leaves_nothing(tmp_path: Path) -> None:
    from .conftest import Guests as _Guests
    from .conftest import require_netns

    require_netns()
    before = host_snapshot()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    guests = _Guests(tmp_path)
    try:
        state = _state(icmp=True)
        first = reconcile.apply(state, data_dir)
        pid_a = dhcp.pid(data_dir, NET_A)
        second = reconcile.apply(state, data_dir)
        assert second.taps == first.taps and second.removed == []
        assert dhcp.pid(data_dir, NET_A) == pid_a  # nothing changed: dnsmasq kept
        current = l2.list_state()
        assert sorted(current.bridges) == sorted([names.bridge_name(NET_A), names.bridge_name(NET_B)])
        assert sorted(current.taps) == sorted(names.tap_name(p[0]) for p in (A1, A2, B1))
        tap = names.tap_name(A1[0])
        ns_a = l2.namespace(NET_A)
        assert in_ns(ns_a, "cat", f"/sys/class/net/{tap}/address").stdout.strip() == "fe:16:3e:17:00:a1"
        # each bridge in its network's namespace, nothing of the tenants in the host's
        assert current.namespaces[names.bridge_name(NET_A)] == ns_a
        host_links = host_snapshot()["host_links"]
        ours = (NET_A[:11], NET_B[:11], *(names.tap_name(p[0]) for p in (A1, A2, B1)))
        assert not any(mark in n for n in host_links for mark in ours)
        assert sg.table_exists(l2.namespace(NET_A)) and sg.table_exists(l2.namespace(NET_B))
        # chains for the network's own ports only
        table_a = in_ns(ns_a, "nft", "list", "table", "bridge", "novalite").stdout
        assert f'oifname "{names.tap_name(A2[0])}"' in table_a and names.tap_name(B1[0]) not in table_a
        # QEMU gets a descriptor on the tap in its namespace; an unknown tap is not created
        fd = l2.open_tap(tap)
        assert fd is not None
        os.close(fd)
        assert l2.open_tap(names.tap_name("f0f0f0f0-0000-4000-8000-000000000000")) is None
        assert names.tap_name("f0f0f0f0-0000-4000-8000-000000000000") not in host_snapshot()["links"]

        # Network B goes away: its bridge, tap, namespace and dnsmasq go with it.
        only_a = reconcile.DesiredState(
            networks=state.networks[:1], ports=state.ports[:2], security_groups=state.security_groups
        )
        removed = reconcile.apply(only_a, data_dir).removed
        assert names.bridge_name(NET_B) in removed and names.tap_name(B1[0]) in removed
        assert dhcp.pid(data_dir, NET_B) is None
        assert names.bridge_name(NET_B) not in l2.list_state().bridges
        assert l2.namespace(NET_B) not in host_snapshot()["netns"]

        # The bridge stays while a port is on it.
        assert l2.remove_network(NET_A) is False
    finally:
        guests.close()
        reconcile.teardown(data_dir)
    assert host_snapshot() == before

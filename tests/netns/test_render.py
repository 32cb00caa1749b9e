"""The nftables script built from security groups (pure: no root needed)."""

from __future__ import annotations

import pytest

from novalite.network.dataplane import dhcp
from novalite.network.dataplane import security_groups as sg

PORT = sg.PortFilter("p1", "tapp1", "FA:16:3E:00:00:01", ("10.0.0.5",), ("g1",))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (sg.SecurityGroupRule("ingress", "IPv4", "tcp", 22, 22, "192.0.2.0/24"),
         "ether type ip ip saddr 192.0.2.0/24 meta l4proto tcp th dport 22 accept"),
        (sg.SecurityGroupRule("ingress", "IPv4", "udp", 1000, 2000),
         "ether type ip meta l4proto udp th dport 1000-2000 accept"),
        (sg.SecurityGroupRule("egress", "IPv4", "icmp", 8, 0, "0.0.0.0/0"),
         "ether type ip meta l4proto icmp icmp type 8 icmp code 0 accept"),
        (sg.SecurityGroupRule("ingress", "IPv6", "ipv6-icmp"),
         "ether type ip6 meta l4proto ipv6-icmp accept"),
        (sg.SecurityGroupRule("ingress", "IPv4", "112"), "ether type ip meta l4proto 112 accept"),
        (sg.SecurityGroupRule("ingress", "IPv4", remote_group_id="g1"),
         "ether type ip ip saddr @sg_g1_v4 accept"),
        (sg.SecurityGroupRule("egress", "IPv6", remote_ip_prefix="2001:db8::/32"),
         "ether type ip6 ip6 daddr 2001:db8::/32 accept"),
        (sg.SecurityGroupRule("ingress", "IPv4", remote_ip_prefix="2001:db8::/32"), None),  # wrong family
        (sg.SecurityGroupRule("ingress", "IPv4", remote_group_id="unknown"), None),
    ],
)  # fmt: skip
def test_rule_expressions(rule: sg.SecurityGroupRule, expected: str | None) -> None:
    assert sg.rule_expression(rule, {"g1"}) == expected


def test_port_without_port_security_gets_no_chain_and_remote_groups_hold_member_ips() -> None:
    open_port = sg.PortFilter("p2", "tapp2", "fa:16:3e:00:00:02", ("10.0.0.6",), ("g1",), False)
    groups = [sg.SecurityGroup("g1", sg.default_group_rules("g1"))]
    script = sg.render(groups, [PORT, open_port], stateful=True)
    assert "chain out_tapp1" in script and "chain in_tapp1" in script
    assert "tapp2" not in script
    assert "elements = { 10.0.0.5, 10.0.0.6 }" in script
    assert "ether saddr != fa:16:3e:00:00:01 drop" in script  # anti-spoofing on the MAC
    assert "ct state established,related" in script


def test_every_sender_check_comes_before_any_receiver_check() -> None:
    other = sg.PortFilter("p0", "tapp0", "fa:16:3e:00:00:00", ("10.0.0.4",), ("g1",))
    lines = sg.render([sg.SecurityGroup("g1")], [PORT, other], stateful=False).splitlines()
    jumps = [line.split()[0] for line in lines if " jump " in line]
    assert jumps == ["iifname", "iifname", "oifname", "oifname"]


def test_dhcp_files_carry_fixed_ips_and_subnet_options() -> None:
    config = dhcp.DhcpConfig(
        net_id="n1",
        subnets=(dhcp.DhcpSubnet("s1", "10.0.0.0/24", "10.0.0.1", ("10.0.0.53",),
                                 (dhcp.HostRoute("10.9.0.0/16", "10.0.0.254"),)),),
        hosts=(dhcp.DhcpHost("FA:16:3E:00:00:01", "10.0.0.5", "vm1"),),
        mtu=1450,
    )  # fmt: skip
    assert dhcp.hosts_file(config) == "fa:16:3e:00:00:01,vm1,10.0.0.5\n"
    opts = dhcp.opts_file(config).splitlines()
    assert "tag:subnet0,option:router,10.0.0.1" in opts
    assert "tag:subnet0,option:dns-server,10.0.0.53" in opts
    assert "tag:subnet0,option:classless-static-route,10.9.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1" in opts
    assert "tag:subnet0,option:mtu,1450" in opts
    assert config.subnets[0].server_address() == "10.0.0.254"

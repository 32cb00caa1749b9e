"""Security groups as one nftables table, ``bridge novalite``, replaced atomically.

The table lives in each network's namespace (``l2``: where the network's bridge is) and holds
chains for that network's ports only; the remote-group sets hold every member's addresses.

Each filtered port gets two chains, jumped to from the bridge's forward hook by the
port's tap name: ``out_<tap>`` for what the guest sends (egress) and ``in_<tap>`` for what
it receives (ingress). A chain accepts what a rule of one of the port's groups allows and
drops the rest, as Neutron does; a port with ``port_security_enabled: false`` gets no chain
(nothing is filtered), a port with no group accepts nothing but ARP and DHCP.

Anti-spoofing: the guest may only send from its own MAC and fixed IPs (ARP included) and
may not answer DHCP. Remote groups are nft sets holding the members' fixed IPs.

Replies: where the kernel tracks connections on bridges (nf_conntrack_bridge), replies are
``ct state established,related``. Without it (:func:`bridge_conntrack_available` is False)
the chains fall back to recognising replies statelessly: ICMP echo replies and errors and
TCP segments that do not open a connection; UDP replies then need an explicit rule.
"""

from __future__ import annotations

import functools
import ipaddress
import shutil
import subprocess
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

TABLE = "novalite"
FAMILY = "bridge"

TCP_UDP = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "sctp": "sctp", "132": "sctp"}
ICMP4 = {"icmp", "1"}
ICMP6 = {"icmpv6", "ipv6-icmp", "58"}
ANY = {None, "", "any", "0"}


class NftError(RuntimeError):
    pass


@dataclass(frozen=True)
class SecurityGroupRule:
    direction: str  # "ingress" | "egress"
    ethertype: str = "IPv4"  # "IPv4" | "IPv6"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    rules: tuple[SecurityGroupRule, ...] = ()


@dataclass(frozen=True)
class PortFilter:
    port_id: str
    tap: str
    mac: str
    fixed_ips: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    port_security_enabled: bool = True
    allowed_address_pairs: tuple[str, ...] = field(default=())


def default_group_rules(group_id: str) -> tuple[SecurityGroupRule, ...]:
    """Neutron's ``default`` group: all egress, ingress only from members of the group."""
    return (
        SecurityGroupRule("egress", "IPv4"),
        SecurityGroupRule("egress", "IPv6"),
        SecurityGroupRule("ingress", "IPv4", remote_group_id=group_id),
        SecurityGroupRule("ingress", "IPv6", remote_group_id=group_id),
    )


def _ident(value: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in value)


def set_name(group_id: str, version: int) -> str:
    return f"sg_{_ident(group_id)[:24]}_v{version}"


def _family(ethertype: str) -> tuple[str, int]:
    return ("ip6", 6) if ethertype.lower() == "ipv6" else ("ip", 4)


def _protocol_match(rule: SecurityGroupRule, fam: str) -> list[str] | None:
    """nft expressions for the rule's protocol and ports; None when they cannot match."""
    proto = rule.protocol.lower() if rule.protocol is not None else None
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in ANY:
        return []
    if proto in TCP_UDP:
        parts = [f"meta l4proto {TCP_UDP[proto]}"]
        if lo is not None:
            parts.append(f"th dport {lo}" if hi in (None, lo) else f"th dport {lo}-{hi}")
        return parts
    if proto in ICMP4 | ICMP6:
        if proto in ICMP6 and fam == "ip":  # "icmp" on IPv6 means ICMPv6, as in Neutron
            return None
        kw = "icmp" if fam == "ip" else "icmpv6"
        parts = [f"meta l4proto {'icmp' if fam == 'ip' else 'ipv6-icmp'}"]
        if lo is not None:
            parts.append(f"{kw} type {lo}")
            if hi is not None:
                parts.append(f"{kw} code {hi}")
        return parts
    if proto is not None and proto.isdigit():
        return [f"meta l4proto {int(proto)}"]
    return [f"meta l4proto {proto}"]


def rule_expression(rule: SecurityGroupRule, known_groups: set[str]) -> str | None:
    fam, version = _family(rule.ethertype)
    parts = [f"ether type {fam}"]
    remote = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if net.version != version:
            return None
        if net.prefixlen:
            parts.append(f"{fam} {remote} {net}")
    elif rule.remote_group_id:
        if rule.remote_group_id not in known_groups:
            return None
        parts.append(f"{fam} {remote} @{set_name(rule.remote_group_id, version)}")
    proto = _protocol_match(rule, fam)
    if proto is None:
        return None
    return " ".join([*parts, *proto, "accept"])


def _elements(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


def _addresses(port: PortFilter, version: int) -> list[str]:
    out = []
    for value in (*port.fixed_ips, *port.allowed_address_pairs):
        if ipaddress.ip_network(value, strict=False).version == version:
            out.append(value)
    return out


ALWAYS_IN = [
    "ether type arp accept",
    "ether type ip udp sport 67 udp dport 68 accept",
    "ether type ip6 meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
    "nd-router-advert, mld-listener-query } accept",
]
STATELESS_REPLIES = [
    "ether type ip meta l4proto icmp icmp type { echo-reply, destination-unreachable, time-exceeded } accept",
    "ether type ip6 meta l4proto ipv6-icmp icmpv6 type { echo-reply, destination-unreachable, "
    "time-exceeded, packet-too-big } accept",
    "meta l4proto tcp tcp flags & (syn | ack) != syn accept",
]


def _out_chain(port: PortFilter, rules: list[str], stateful: bool) -> list[str]:
    v4, v6 = _addresses(port, 4), _addresses(port, 6)
    lines = [
        f"ether saddr != {port.mac.lower()} drop",
        "ether type ip udp sport 67 drop",  # no rogue DHCP server
        "ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        "ether type ip6 meta l4proto ipv6-icmp icmpv6 type nd-router-advert drop",
        "ether type ip6 meta l4proto ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
        "mld-listener-report, mld2-listener-report, nd-router-solicit } accept",
    ]
    if v4:
        lines.append(f"ether type arp arp saddr ip != {{ {_elements(v4)} }} drop")
        lines.append(f"ether type ip ip saddr != {{ {_elements(v4)} }} drop")
    else:
        lines += ["ether type arp arp operation reply drop", "ether type ip drop"]
    lines.append("ether type arp accept")
    lines.append("ether type ip udp sport 68 udp dport 67 accept")  # DHCP renewals, whatever the rules
    lines.append(
        f"ether type ip6 ip6 saddr != {{ fe80::/10, {_elements(v6)} }} drop"
        if v6
        else "ether type ip6 ip6 saddr != fe80::/10 drop"
    )
    lines += ["ct state established,related accept"] if stateful else STATELESS_REPLIES
    # An ``accept`` here would end the whole forward hook before the receiving port's
    # ``in_`` chain is consulted: what the sender may send goes on with ``return``.
    return [_to_return(line) for line in (*lines, *rules)] + ["drop"]


def _to_return(line: str) -> str:
    return line[: -len("accept")] + "return" if line.endswith(" accept") else line


def _in_chain(rules: list[str], stateful: bool) -> list[str]:
    lines = list(ALWAYS_IN)
    lines += ["ct state established,related accept"] if stateful else STATELESS_REPLIES
    return [*lines, *rules, "drop"]


def render(
    groups: Sequence[SecurityGroup],
    ports: Sequence[PortFilter],
    *,
    stateful: bool,
    taps: Collection[str] | None = None,
) -> str:
    """The whole table as an nft script; applying it replaces the previous table atomically.

    With ``taps``, only those ports get chains (the ports on one network's bridge); every port
    still counts as a member of its groups."""
    by_id = {g.id: g for g in groups}
    members: dict[str, list[str]] = {g.id: [] for g in groups}
    for port in ports:
        for gid in port.security_group_ids:
            if gid in members:
                members[gid] += [*port.fixed_ips, *port.allowed_address_pairs]
    out = [f"table {FAMILY} {TABLE} {{"]
    for gid in sorted(members):
        for version, kind in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            ips = [ip for ip in members[gid] if ipaddress.ip_address(ip.split("/")[0]).version == version]
            body = f" elements = {{ {_elements(ips)} }};" if ips else ""
            flags = " flags interval;" if any("/" in ip for ip in ips) else ""
            out.append(f"  set {set_name(gid, version)} {{ type {kind};{flags}{body} }}")
    sends: list[str] = []
    receives: list[str] = []
    for port in sorted(ports, key=lambda p: p.tap):
        if not port.port_security_enabled or (taps is not None and port.tap not in taps):
            continue
        ingress: list[str] = []
        egress: list[str] = []
        for gid in port.security_group_ids:
            for rule in by_id[gid].rules if gid in by_id else ():
                expr = rule_expression(rule, set(members))
                if expr is not None:
                    (ingress if rule.direction == "ingress" else egress).append(expr)
        name = _ident(port.tap)
        out.append(f"  chain out_{name} {{")
        out += [f"    {line}" for line in _out_chain(port, egress, stateful)]
        out.append("  }")
        out.append(f"  chain in_{name} {{")
        out += [f"    {line}" for line in _in_chain(ingress, stateful)]
        out.append("  }")
        sends.append(f'    iifname "{port.tap}" jump out_{name}')
        receives.append(f'    oifname "{port.tap}" jump in_{name}')
    out.append("  chain forward {")
    out.append("    type filter hook forward priority 0; policy accept;")
    out += sends + receives  # every sender check first: an in_ chain's accept is final
    out += ["  }", "}"]
    return "\n".join(out) + "\n"


def _nft_argv(netns: str | None) -> list[str]:
    nft = shutil.which("nft") or "nft"
    return ["ip", "netns", "exec", netns, nft] if netns else [nft]


def _nft(script: str, *, check: bool = False, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [*_nft_argv(netns), "-c", "-f", "-"] if check else [*_nft_argv(netns), "-f", "-"]
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=30, check=False)


@functools.cache
def bridge_conntrack_available() -> bool:
    """Whether ``ct state`` works in the bridge family here (checked, never applied)."""
    probe = (
        "table bridge novalite_probe {\n chain c { type filter hook forward priority 0;\n"
        "  ct state established accept\n }\n}\n"
    )
    return _nft(probe, check=True).returncode == 0


def apply(
    groups: Sequence[SecurityGroup],
    ports: Sequence[PortFilter],
    *,
    netns: str | None = None,
    taps: Collection[str] | None = None,
) -> str:
    """Replace the table in ``netns`` (None: the host's) with one built from ``groups`` and
    ``ports`` (chains for ``taps`` only, when given) in one transaction."""
    body = render(groups, ports, stateful=bridge_conntrack_available(), taps=taps)
    # Declaring then deleting the table first makes the replacement one atomic transaction
    # whether or not it already exists.
    script = f"table {FAMILY} {TABLE} {{}}\ndelete table {FAMILY} {TABLE}\n" + body
    result = _nft(script, netns=netns)
    if result.returncode != 0:
        raise NftError(f"nft refused the security group table: {result.stderr.strip()}")
    return body


def remove(netns: str | None = None) -> None:
    """Drop the table in ``netns`` (None: the host's): no filtering left. Idempotent."""
    _nft(f"table {FAMILY} {TABLE} {{}}\ndelete table {FAMILY} {TABLE}\n", netns=netns)


def table_exists(netns: str | None = None) -> bool:
    args = [*_nft_argv(netns), "list", "tables", FAMILY]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    return f"table {FAMILY} {TABLE}\n" in result.stdout + "\n"

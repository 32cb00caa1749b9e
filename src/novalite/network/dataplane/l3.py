"""Routers and floating IPs: one ``qrouter-<router id>`` namespace per router (Neutron's
legacy L3 agent).

Inside the namespace:

* ``qr-<port>``: one interface per router interface port, carrying the port's addresses (the
  subnet's gateway IP, usually) and MAC; its veth peer ``qrb-<port>`` is a member of that
  network's bridge, in the network's own namespace (``l2``);
* ``qg-<port>``: the gateway port on the external network, with its address, every floating
  IP as a /32, and the default route via the external subnet's gateway; its peer ``qgb-<port>``
  is on the external network's bridge;
* one nftables table ``ip novalite_l3`` (in the namespace, not the host's): a DNAT
  (floating IP -> fixed IP) in prerouting and a SNAT (fixed IP -> floating IP) in postrouting
  per floating IP, then, with ``enable_snat``, a masquerade of everything else leaving by
  ``qg-`` to the gateway address.

IP forwarding is switched on in the namespace only. State files live under
``<data_dir>/l3/<router id>`` (the router's nft script), so that a restart knows which
namespaces are its own and another deployment on the host leaves them alone. Every call is idempotent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

from novalite.network.dataplane import l2, names

NFT_TABLE = "novalite_l3"
SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)
LEG_PREFIXES = (names.ROUTER_INTERFACE_PREFIX, names.ROUTER_GATEWAY_PREFIX)


class L3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class RouterPort:
    """One leg of a router: its port, the network it sits on, its MAC and ``ip/prefix``es."""

    port_id: str
    network_id: str
    mac: str
    addresses: tuple[str, ...] = ()
    mtu: int | None = None


@dataclass(frozen=True)
class FloatingIP:
    address: str  # on the external network
    fixed_ip: str  # the internal port's address


@dataclass(frozen=True)
class Router:
    id: str
    interfaces: tuple[RouterPort, ...] = ()
    gateway: RouterPort | None = None
    gateway_ip: str | None = None  # the external subnet's gateway: the default route
    enable_snat: bool = True
    floating_ips: tuple[FloatingIP, ...] = ()
    # internal CIDRs SNAT applies to (the interface subnets); empty: whatever leaves by qg-
    internal_cidrs: tuple[str, ...] = ()


def state_dir(data_dir: Path) -> Path:
    return data_dir / "l3"


def _run(args: list[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30, check=False)


def _in_ns(ns: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run(["ip", "netns", "exec", ns, *args], stdin=stdin)


@contextlib.contextmanager
def _nsr(ns: str) -> Iterator[Any]:
    nsr = NetNS(ns)
    try:
        yield nsr
    finally:
        nsr.close()


def render_nft(router: Router) -> str:
    """The router's nat table, as one ``nft -f`` script that replaces the previous one."""
    lines = [
        f"table ip {NFT_TABLE} {{}}",
        f"delete table ip {NFT_TABLE}",
        f"table ip {NFT_TABLE} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    gw = router.gateway
    qg = names.router_gateway_ns(gw.port_id) if gw else None
    for fip in router.floating_ips if gw else ():
        lines.append(f"    ip daddr {fip.address} dnat to {fip.fixed_ip}")
    lines += [
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
    ]
    for fip in router.floating_ips if gw else ():
        lines.append(f"    ip daddr {fip.address} dnat to {fip.fixed_ip}")
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if gw and qg:
        for fip in router.floating_ips:
            lines.append(f'    oifname "{qg}" ip saddr {fip.fixed_ip} snat to {fip.address}')
        if router.enable_snat and gw.addresses:
            source = _ipv4(gw.addresses)
            if source:
                match = ""
                if router.internal_cidrs:
                    match = " ip saddr { " + ", ".join(router.internal_cidrs) + " }"
                lines.append(f'    oifname "{qg}"{match} snat to {source}')
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _ipv4(addresses: tuple[str, ...]) -> str | None:
    for a in addresses:
        iface = ipaddress.ip_interface(a)
        if iface.version == 4:
            return str(iface.ip)
    return None


def _pair(address: str) -> tuple[str, int]:
    iface = ipaddress.ip_interface(address)
    return str(iface.ip), iface.network.prefixlen


def _sync_leg(nsr: Any, ns: str, ns_end: str, host_end: str, leg: RouterPort, extra: tuple[str, ...]) -> int:
    """The veth pair of one leg: created if missing, MAC, MTU and exactly ``addresses`` + ``extra``."""
    l2.ensure_network(leg.network_id, leg.mtu)
    if not nsr.link_lookup(ifname=ns_end):
        with l2.in_namespace(leg.network_id) as brr:
            stale = brr.link_lookup(ifname=host_end)
            if stale:  # a peer left from an earlier namespace
                brr.link("del", index=stale[0])
            brr.link("add", ifname=host_end, kind="veth", peer={"ifname": ns_end, "net_ns_fd": ns})
    index = nsr.link_lookup(ifname=ns_end)[0]
    link = nsr.get_links(index)[0]
    if (link.get_attr("IFLA_ADDRESS") or "").lower() != leg.mac.lower():
        nsr.link("set", index=index, state="down")
        nsr.link("set", index=index, address=leg.mac.lower())
    if leg.mtu:
        nsr.link("set", index=index, mtu=leg.mtu)
    wanted = {_pair(a) for a in (*leg.addresses, *extra) if ipaddress.ip_interface(a).version == 4}
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in nsr.get_addr(index=index, family=2)}
    for address, prefix in sorted(have - wanted):
        nsr.addr("del", index=index, address=address, prefixlen=prefix)
    for address, prefix in sorted(wanted - have):
        nsr.addr("add", index=index, address=address, prefixlen=prefix)
    nsr.link("set", index=index, state="up")
    l2.plug(leg.network_id, host_end)
    return int(index)


def ensure(router: Router, data_dir: Path) -> None:
    """Create or update the router's namespace, legs, routes and nat table."""
    ns = names.router_namespace(router.id)
    d = state_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / router.id).touch()  # ours, before anything is created: a crash leaves it known
    if ns not in netns.listnetns():
        netns.create(ns)
    for knob in SYSCTLS:
        _in_ns(ns, "sysctl", "-qw", knob)
    with _nsr(ns) as nsr:
        nsr.link("set", index=nsr.link_lookup(ifname="lo")[0], state="up")
        wanted = set()
        for leg in router.interfaces:
            ns_end = names.router_interface_ns(leg.port_id)
            wanted.add(ns_end)
            _sync_leg(nsr, ns, ns_end, names.router_interface_host(leg.port_id), leg, ())
        gw_index = None
        if router.gateway:
            gw = router.gateway
            ns_end = names.router_gateway_ns(gw.port_id)
            wanted.add(ns_end)
            fips = tuple(f"{f.address}/32" for f in router.floating_ips)
            gw_index = _sync_leg(nsr, ns, ns_end, names.router_gateway_host(gw.port_id), gw, fips)
        for link in nsr.get_links():
            ifname = link.get_attr("IFLA_IFNAME")
            if ifname.startswith(LEG_PREFIXES) and ifname not in wanted:
                nsr.link("del", index=link["index"])  # takes its peer off the bridge with it
        _sync_default_route(nsr, gw_index, router.gateway_ip)
    script = render_nft(router)
    done = _in_ns(ns, shutil.which("nft") or "nft", "-f", "-", stdin=script)
    if done.returncode != 0:
        raise L3Error(f"nft in {ns} failed: {done.stderr.strip()}")
    (d / router.id).write_text(script)


def _sync_default_route(nsr: Any, gw_index: int | None, gateway_ip: str | None) -> None:
    routes = [r for r in nsr.get_routes(family=2, table=254) if r["dst_len"] == 0]
    want = gw_index is not None and gateway_ip is not None
    for r in routes:
        if not want or r.get_attr("RTA_GATEWAY") != gateway_ip or r.get_attr("RTA_OIF") != gw_index:
            nsr.route("del", dst="0.0.0.0/0", gateway=r.get_attr("RTA_GATEWAY"), oif=r.get_attr("RTA_OIF"))
    if want and not any(
        r.get_attr("RTA_GATEWAY") == gateway_ip and r.get_attr("RTA_OIF") == gw_index for r in routes
    ):
        try:
            nsr.route("add", dst="0.0.0.0/0", gateway=gateway_ip, oif=gw_index)
        except Exception as exc:  # gateway outside qg-'s subnets: no default route, say why
            raise L3Error(f"default route via {gateway_ip}: {exc}") from exc


def remove(router_id: str, data_dir: Path) -> None:
    """Remove the router's namespace (its legs go with it) and its state file. Idempotent."""
    ns = names.router_namespace(router_id)
    if ns in netns.listnetns():
        netns.remove(ns)
    (state_dir(data_dir) / router_id).unlink(missing_ok=True)


def known_routers(data_dir: Path) -> list[str]:
    """Routers this data directory's deployment made (another deployment's are left alone)."""
    d = state_dir(data_dir)
    return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def sync_host_addresses(net_id: str, addresses: tuple[str, ...]) -> None:
    """Exactly ``addresses`` (``ip/prefix``) in the host's namespace on the network's bridge.

    Only for ``--expose-external-network`` (DevStack's br-ex): a veth ``qbh-<net>`` in the
    host's namespace whose peer ``qbx-<net>`` is on the bridge in the network's namespace
    carries them; without addresses there is no such veth. Every other network has none.
    """
    host_end, bridge_end = names.expose_host(net_id), names.expose_bridge(net_id)
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=host_end)
        if not addresses:
            if found:
                ipr.link("del", index=found[0])  # its peer goes with it
            return
        if not found:
            l2.remove_member(net_id, bridge_end)  # a peer left alone
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": bridge_end})
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv6/conf/{host_end}/disable_ipv6").write_text("1")
            l2.plug(net_id, bridge_end)  # moved into the network's namespace
            found = ipr.link_lookup(ifname=host_end)
        index = found[0]
        wanted = {_pair(a) for a in addresses}
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
        for address, prefix in sorted(have - wanted):
            ipr.addr("del", index=index, address=address, prefixlen=prefix)
        for address, prefix in sorted(wanted - have):
            ipr.addr("add", index=index, address=address, prefixlen=prefix)
        ipr.link("set", index=index, state="up")

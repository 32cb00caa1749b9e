"""DHCP for one network: dnsmasq in a ``qdhcp-<net>`` namespace on a veth into the bridge (whose
other end, ``dhp-<net>``, is in the network's own namespace, ``l2``).

One dnsmasq serves every IPv4 subnet of the network, in ``static`` mode: it answers only
the MACs listed in its hosts file (MAC -> fixed IP, hostname), as Neutron's DHCP agent
does. With a network on several hosts (VXLAN) each host's dnsmasq is a server of its own: its
address and MAC are those of the host's DHCP port (``DhcpSubnet.dhcp_ip``, ``DhcpConfig.mac``;
``compute/dhcp_ports.py``), and it leaves requests addressed to the other servers alone.

Per-subnet options (router, DNS servers, classless static routes, MTU) go in an
options file. Both files are rewritten on change and dnsmasq re-reads them on SIGHUP;
the command line (subnets, addresses) changing means a restart.

Files live under ``<data_dir>/dhcp/<net id>/``: ``pid``, ``hosts``, ``opts``, ``leases``,
``cmdline``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import NetNS, netns

from novalite.network.dataplane import l2, names

LEASE_TIME = "86400s"


class DhcpError(RuntimeError):
    pass


@dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class DhcpSubnet:
    id: str
    cidr: str
    gateway_ip: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    dhcp_ip: str | None = None  # the server's own address; default: last usable address

    def server_address(self) -> str:
        if self.dhcp_ip:
            return self.dhcp_ip
        net = ipaddress.ip_network(self.cidr)
        return str(net.broadcast_address - 1)


@dataclass(frozen=True)
class DhcpHost:
    mac: str
    ip: str
    hostname: str


@dataclass(frozen=True)
class DhcpConfig:
    net_id: str
    subnets: tuple[DhcpSubnet, ...]
    hosts: tuple[DhcpHost, ...] = ()
    mtu: int | None = None
    metadata_ip: str | None = None  # a /32 route to it via the DHCP server (the metadata proxy)
    mac: str | None = None  # the server's MAC (its host's DHCP port's); None: the kernel's choice

    def server_addresses(self) -> list[str]:
        return [s.server_address() for s in _v4(self)]


def state_dir(data_dir: Path, net_id: str) -> Path:
    return data_dir / "dhcp" / net_id


def _tag(index: int) -> str:
    return f"subnet{index}"


def hosts_file(config: DhcpConfig) -> str:
    lines = []
    for host in sorted(config.hosts, key=lambda h: h.mac):
        lines.append(f"{host.mac.lower()},{host.hostname},{host.ip}")
    return "\n".join(lines) + "\n" if lines else ""


def opts_file(config: DhcpConfig) -> str:
    lines = []
    for i, subnet in enumerate(_v4(config)):
        tag = _tag(i)
        routes = [(r.destination, r.nexthop) for r in subnet.host_routes]
        if config.metadata_ip:  # Neutron's isolated metadata: the proxy is in the DHCP namespace
            routes.append((f"{config.metadata_ip}/32", subnet.server_address()))
        if subnet.gateway_ip:
            lines.append(f"tag:{tag},option:router,{subnet.gateway_ip}")
            # RFC 3442: a client given classless routes ignores option 3, so repeat the default.
            if routes:
                routes.append(("0.0.0.0/0", subnet.gateway_ip))
        else:
            lines.append(f"tag:{tag},option:router")  # no gateway: tell the client so
        if subnet.dns_nameservers:
            lines.append(f"tag:{tag},option:dns-server,{','.join(subnet.dns_nameservers)}")
        if routes:
            flat = ",".join(f"{dest},{hop}" for dest, hop in routes)
            lines.append(f"tag:{tag},option:classless-static-route,{flat}")
        if config.mtu:
            lines.append(f"tag:{tag},option:mtu,{config.mtu}")
    return "\n".join(lines) + "\n" if lines else ""


def _v4(config: DhcpConfig) -> list[DhcpSubnet]:
    return [s for s in config.subnets if ipaddress.ip_network(s.cidr).version == 4]


def command(config: DhcpConfig, data_dir: Path) -> list[str]:
    """dnsmasq's command line (without the ``ip netns exec`` prefix)."""
    d = state_dir(data_dir, config.net_id)
    cmd = [
        shutil.which("dnsmasq") or "dnsmasq",
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        "--port=0",  # DHCP only: no DNS service
        "--bind-interfaces",
        f"--interface={names.dhcp_ns_veth(config.net_id)}",
        "--except-interface=lo",
        f"--pid-file={d / 'pid'}",
        f"--dhcp-hostsfile={d / 'hosts'}",
        f"--dhcp-optsfile={d / 'opts'}",
        f"--dhcp-leasefile={d / 'leases'}",
        f"--log-facility={d / 'dnsmasq.log'}",  # its offers, acks and refusals, for diagnosis
        # not --dhcp-authoritative: with VXLAN every host's dnsmasq hears every guest of the network,
        # and an authoritative one NAKs ("wrong server-ID") each DHCPREQUEST addressed to another
        # host's server, often before that server's ACK arrives (issue 20's two-host flake); the
        # lease file keeps the leases across restarts instead
        "--user=root",
        "--group=root",
    ]
    for i, subnet in enumerate(_v4(config)):
        net = ipaddress.ip_network(subnet.cidr)
        cmd.append(f"--dhcp-range=set:{_tag(i)},{net.network_address},static,{net.netmask},{LEASE_TIME}")
    return cmd


def _ensure_namespace(config: DhcpConfig) -> None:
    ns = names.dhcp_namespace(config.net_id)
    host_end, ns_end = names.dhcp_host_veth(config.net_id), names.dhcp_ns_veth(config.net_id)
    if ns not in netns.listnetns():
        netns.create(ns)
    with l2.in_namespace(config.net_id) as brr:
        if not brr.link_lookup(ifname=host_end):
            peer: dict[str, object] = {"ifname": ns_end, "net_ns_fd": ns}
            if config.mac:
                peer["address"] = config.mac.lower()
            brr.link("add", ifname=host_end, kind="veth", peer=peer)
    l2.plug(config.net_id, host_end)
    with NetNS(ns) as nsr:
        index = nsr.link_lookup(ifname=ns_end)[0]
        lo = nsr.link_lookup(ifname="lo")[0]
        nsr.link("set", index=lo, state="up")
        if config.mac and nsr.get_links(index)[0].get_attr("IFLA_ADDRESS") != config.mac.lower():
            nsr.link("set", index=index, state="down")
            nsr.link("set", index=index, address=config.mac.lower())
        if config.mtu:
            nsr.link("set", index=index, mtu=config.mtu)
        wanted = set()
        for subnet in _v4(config):
            prefix = ipaddress.ip_network(subnet.cidr).prefixlen
            wanted.add((subnet.server_address(), prefix))
        have = {(a.get("address"), a["prefixlen"]) for a in nsr.get_addr(index=index, family=2)}
        for address, prefix in have - wanted:
            nsr.addr("del", index=index, address=address, prefixlen=prefix)
        for address, prefix in wanted - have:
            nsr.addr("add", index=index, address=address, prefixlen=prefix)
        nsr.link("set", index=index, state="up")


def pid(data_dir: Path, net_id: str) -> int | None:
    """dnsmasq's pid if it is running for this network."""
    try:
        value = int((state_dir(data_dir, net_id) / "pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except OSError:
        return None
    return value if b"dnsmasq" in cmdline and str(state_dir(data_dir, net_id)).encode() in cmdline else None


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def ensure(config: DhcpConfig, data_dir: Path) -> int:
    """Start or update the network's DHCP server; return dnsmasq's pid.

    Host/option changes are a SIGHUP; a changed command line (subnets) is a restart.
    """
    if not _v4(config):
        stop(config.net_id, data_dir)
        return 0
    d = state_dir(data_dir, config.net_id)
    d.mkdir(parents=True, exist_ok=True)
    _ensure_namespace(config)
    cmd = command(config, data_dir)
    changed = _write_if_changed(d / "hosts", hosts_file(config))
    changed = _write_if_changed(d / "opts", opts_file(config)) or changed
    # a new server address or MAC (another DHCP port) is a restart too: dnsmasq binds at start
    identity = [f"# server {' '.join(config.server_addresses())} {config.mac or ''}"]
    cmd_changed = _write_if_changed(d / "cmdline", "\n".join(cmd + identity) + "\n")
    running = pid(data_dir, config.net_id)
    if running is not None and cmd_changed:
        _kill(running)
        running = None
    if running is None:
        (d / "leases").touch()
        ns = names.dhcp_namespace(config.net_id)
        result = subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise DhcpError(f"dnsmasq for network {config.net_id} failed: {result.stderr.strip()}")
        running = _wait_pid(data_dir, config.net_id)
    elif changed:
        os.kill(running, signal.SIGHUP)
    return running


def _wait_pid(data_dir: Path, net_id: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = pid(data_dir, net_id)
        if found is not None:
            return found
        time.sleep(0.05)
    raise DhcpError(f"dnsmasq for network {net_id} wrote no pid file")


def _kill(value: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(value, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{value}").exists():
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(value, signal.SIGKILL)


def stop(net_id: str, data_dir: Path) -> None:
    """Stop dnsmasq, remove the veth, the namespace and the state files. Idempotent."""
    from novalite.network.dataplane import metadata_proxy

    metadata_proxy.stop(net_id, data_dir)
    running = pid(data_dir, net_id)
    if running is not None:
        _kill(running)
    l2.remove_member(net_id, names.dhcp_host_veth(net_id))
    ns = names.dhcp_namespace(net_id)
    if ns in netns.listnetns():
        netns.remove(ns)
    shutil.rmtree(state_dir(data_dir, net_id), ignore_errors=True)


def running_networks(data_dir: Path) -> list[str]:
    """Networks with a DHCP state directory here (running or not), for reconcile."""
    root = data_dir / "dhcp"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []

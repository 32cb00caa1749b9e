"""Layer 2: a Linux bridge per network, in a namespace of its own, and a tap per port on it.

Each network with a port on this host gets the namespace ``qbr-<net id>`` holding the bridge
``brq-<net>`` (no IP address, IPv6 off in the whole namespace) and its members: the ports' taps,
the VXLAN device (``l2_vxlan``), the bridge ends of the DHCP and router veths and the security
group table. The host's namespace holds no tenant bridge, so nothing the host itself does
(its routes, its firewall, another tool's bridge) meets tenant frames. The namespace is made
with the network's first port here and removed with its last.

Taps: QEMU runs in the host's namespace, and ``-netdev tap,ifname=...`` makes QEMU look the name
up there, where it would silently create a new unbridged tap. So the tap is made here, persistent,
inside the network's namespace, and QEMU is handed an open descriptor on it
(``-netdev tap,fd=N`` at start, QMP ``getfd`` for a hot-plug: :func:`open_tap`). We chose this over
letting QEMU open a tap in the host's namespace and moving it afterwards because the tap is then
never in the wrong place, not even for a moment, and a QEMU restart (stop/start, a migration's
destination) simply opens the same device again instead of racing the agent to move a new one.
A port device found in the host's namespace (a tap left by an older novalite, or a test's veth)
is moved in. Every call is idempotent: ensuring what exists changes nothing, removing what is
gone is not an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

from novalite.network.dataplane import names, nsenter

# bridge members that are not ports: the network's namespace goes even while they are on it
NOT_PORTS = (names.DHCP_HOST_VETH_PREFIX, names.EXPOSE_BRIDGE_PREFIX, "vxl-")  # vxl-: l2_vxlan's


@dataclass(frozen=True)
class L2State:
    """What exists on the host: bridge name -> member interface names, the port devices, and
    the network namespaces (bridge name -> namespace)."""

    bridges: dict[str, list[str]] = field(default_factory=dict)
    taps: list[str] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)


def namespace(net_id: str) -> str:
    return names.network_namespace(net_id)


@contextlib.contextmanager
def _ipr() -> Iterator[Any]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def in_namespace(net_id: str) -> Iterator[Any]:
    """A netlink handle inside the network's namespace (which must exist)."""
    nsr = NetNS(namespace(net_id))
    try:
        yield nsr
    finally:
        nsr.close()


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _network_namespaces() -> list[str]:
    return sorted(ns for ns in netns.listnetns() if names.network_of_namespace(ns))


def ensure_network(net_id: str, mtu: int | None = None) -> str:
    """Create (or keep) the network's namespace and bridge, up, with no address; return its name."""
    ns, bridge = namespace(net_id), names.bridge_name(net_id)
    if ns not in netns.listnetns():
        netns.create(ns)
    with in_namespace(net_id) as nsr:
        if _index(nsr, bridge) is None:
            # IPv6 off for every device made or moved here later: no link-local address, the
            # bridge's namespace takes no part in tenant traffic
            for scope in ("all", "default"):
                nsenter.write_sysctl(ns, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
            nsr.link("add", ifname=bridge, kind="bridge")
        index = _index(nsr, bridge)
        if mtu:
            nsr.link("set", index=index, mtu=mtu)
        nsr.link("set", index=index, state="up")
    return bridge


def _adopt(nsr: Any, net_id: str, ifname: str) -> int | None:
    """The index of ``ifname`` in the network's namespace, moving it in from the host's first."""
    index = _index(nsr, ifname)
    if index is None:
        with _ipr() as ipr:
            outside = _index(ipr, ifname)
            if outside is not None:
                ipr.link("set", index=outside, net_ns_fd=namespace(net_id))
        index = _index(nsr, ifname)
    return index


def plug(net_id: str, ifname: str) -> None:
    """Make an interface a member of the network's bridge, up (moved in from the host's namespace
    when it is there)."""
    with in_namespace(net_id) as nsr:
        bridge = _index(nsr, names.bridge_name(net_id))
        index = _adopt(nsr, net_id, ifname)
        if bridge is None or index is None:
            raise LookupError(f"no bridge for network {net_id} or no interface {ifname}")
        nsr.link("set", index=index, master=bridge, state="up")


def tap_mac(mac: str) -> str:
    """The tap's own MAC: the guest's with the first byte ``fe``, as libvirt does.

    The bridge then never learns the guest's address on the host side of the tap, and a
    bridge takes the lowest member MAC as its own, so ``fe`` keeps it from the taps'.
    """
    return "fe" + mac.lower()[2:]


def ensure_port(net_id: str, port_id: str, mac: str) -> str:
    """Create (or keep) the port's tap on the network's bridge; return the tap name."""
    ensure_network(net_id)
    tap = names.tap_name(port_id)
    with in_namespace(net_id) as nsr:
        if _adopt(nsr, net_id, tap) is None:
            nsenter.create_tap(namespace(net_id), tap)
            nsr.link("set", index=_index(nsr, tap), address=tap_mac(mac))
    plug(net_id, tap)
    return tap


def open_tap(tap: str) -> int | None:
    """An open descriptor on the port device ``tap`` for QEMU (``-netdev tap,fd=N``), from
    whichever network namespace holds it; None when no network here has it."""
    for ns in _network_namespaces():
        fd = nsenter.open_tap(ns, tap)
        if fd is not None:
            return fd
    return None


def _delete(ipr: Any, ifname: str) -> None:
    index = _index(ipr, ifname)
    if index is not None:
        ipr.link("del", index=index)


def remove_port(port_id: str) -> None:
    remove_link(names.tap_name(port_id))


def remove_member(net_id: str, ifname: str) -> None:
    """Remove one device from the network's namespace (a veth end, say). Idempotent."""
    if namespace(net_id) in netns.listnetns():
        with in_namespace(net_id) as nsr:
            _delete(nsr, ifname)


def members(net_id: str) -> list[str]:
    if namespace(net_id) not in netns.listnetns():
        return []
    with in_namespace(net_id) as nsr:
        bridge = _index(nsr, names.bridge_name(net_id))
        if bridge is None:
            return []
        return sorted(link.get("ifname") for link in nsr.get_links() if link.get("master") == bridge)


def remove_network(net_id: str, *, force: bool = False) -> bool:
    """Remove the network's namespace when no port is left on its bridge (or when ``force``);
    True if it is gone.

    The DHCP veth, the exposed gateway veth and the VXLAN device do not count as ports: they go
    with it. Every device is deleted before the namespace, since a tap QEMU still holds keeps
    the namespace itself alive after its name is gone.
    """
    left = [m for m in members(net_id) if not m.startswith(NOT_PORTS)]
    if left and not force:
        return False
    ns = namespace(net_id)
    if ns in netns.listnetns():
        with in_namespace(net_id) as nsr:
            for link in nsr.get_links():
                if link.get("ifname") != "lo":
                    with contextlib.suppress(Exception):  # a veth's peer may have gone with it
                        nsr.link("del", index=link["index"])
        netns.remove(ns)
    return True


def remove_bridge(bridge: str) -> None:
    """Remove a ``brq-*`` bridge by name, whatever is on it (for stale ones), with its namespace;
    one left in the host's namespace by an older novalite goes too. Idempotent."""
    if not bridge.startswith(names.BRIDGE_PREFIX):
        raise ValueError(f"{bridge} is not a novalite bridge")
    for ns in _network_namespaces():
        net_id = names.network_of_namespace(ns) or ""
        if names.bridge_name(net_id) == bridge:
            remove_network(net_id, force=True)
    with _ipr() as ipr:
        _delete(ipr, bridge)


def remove_link(ifname: str) -> None:
    """Remove a ``tap*`` link by name (a tap, or a veth standing in for one), wherever it is:
    in a network's namespace or the host's. Idempotent."""
    if not names.is_tap_name(ifname):
        raise ValueError(f"{ifname} is not a novalite port device")
    for ns in _network_namespaces():
        net_id = names.network_of_namespace(ns) or ""
        remove_member(net_id, ifname)
    with _ipr() as ipr:
        _delete(ipr, ifname)


def _scan(ipr: Any, bridges: dict[str, list[str]], taps: list[str]) -> list[str]:
    """Add the ``brq-*`` bridges with their members and our port devices seen by ``ipr``."""
    links = list(ipr.get_links())
    by_index = {link["index"]: link.get("ifname") for link in links}
    found = []
    for link in links:
        ifname = link.get("ifname")
        if _kind(link) == "bridge" and ifname.startswith(names.BRIDGE_PREFIX):
            bridges.setdefault(ifname, [])
            found.append(ifname)
        if names.is_tap_name(ifname) and _kind(link) in ("tun", "veth"):
            taps.append(ifname)
    for link in links:
        master = by_index.get(link.get("master"))
        if isinstance(master, str) and master in found:
            bridges[master].append(link.get("ifname"))
    return found


def list_state() -> L2State:
    """Bridges named ``brq-*`` with their members, and port devices named like ours, in the
    network namespaces (and, left by an older novalite, in the host's).

    Only ``tap`` + 11 id characters counts as ours: other software's ``tap0`` is left alone.
    """
    bridges: dict[str, list[str]] = {}
    taps: list[str] = []
    spaces: dict[str, str] = {}
    for ns in _network_namespaces():
        with contextlib.suppress(OSError), NetNS(ns) as nsr:  # removed meanwhile: nothing there
            for bridge in _scan(nsr, bridges, taps):
                spaces[bridge] = ns
    with _ipr() as ipr:
        host_taps: list[str] = []
        _scan(ipr, bridges, host_taps)
        taps += [t for t in host_taps if t not in taps]
    return L2State(
        bridges={b: sorted(m) for b, m in sorted(bridges.items())}, taps=sorted(set(taps)), namespaces=spaces
    )

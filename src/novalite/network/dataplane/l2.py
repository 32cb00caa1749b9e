"""Layer 2: a Linux bridge per network and a tap per port, in the host's namespace.

The bridge carries no IP address, so the host routes nothing for tenant networks; the
taps are plain bridge members that QEMU opens with
``-netdev tap,ifname=<tap>,script=no,downscript=no``. Every call is idempotent: ensuring
what exists changes nothing, removing what is gone is not an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from novalite.network.dataplane import names


@dataclass(frozen=True)
class L2State:
    """What exists on the host: bridge name -> member interface names."""

    bridges: dict[str, list[str]] = field(default_factory=dict)
    taps: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _ipr() -> Iterator[Any]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def _no_ipv6(ifname: str) -> None:
    """No link-local address either: the host must not take part in tenant traffic."""
    knob = Path("/proc/sys/net/ipv6/conf") / ifname / "disable_ipv6"
    with contextlib.suppress(OSError):
        knob.write_text("1")


def ensure_network(net_id: str, mtu: int | None = None) -> str:
    """Create (or keep) the network's bridge, up, with no address; return its name."""
    bridge = names.bridge_name(net_id)
    with _ipr() as ipr:
        if _index(ipr, bridge) is None:
            ipr.link("add", ifname=bridge, kind="bridge")
        _no_ipv6(bridge)
        index = _index(ipr, bridge)
        if mtu:
            ipr.link("set", index=index, mtu=mtu)
        ipr.link("set", index=index, state="up")
    return bridge


def plug(net_id: str, ifname: str) -> None:
    """Make an existing host interface a member of the network's bridge, up."""
    with _ipr() as ipr:
        bridge = _index(ipr, names.bridge_name(net_id))
        index = _index(ipr, ifname)
        if bridge is None or index is None:
            raise LookupError(f"no bridge for network {net_id} or no interface {ifname}")
        _no_ipv6(ifname)
        ipr.link("set", index=index, master=bridge, state="up")


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
    with _ipr() as ipr:
        if _index(ipr, tap) is None:
            ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
            ipr.link("set", index=_index(ipr, tap), address=tap_mac(mac))
    plug(net_id, tap)
    return tap


def _delete(ipr: Any, ifname: str) -> None:
    index = _index(ipr, ifname)
    if index is not None:
        ipr.link("del", index=index)


def remove_port(port_id: str) -> None:
    with _ipr() as ipr:
        _delete(ipr, names.tap_name(port_id))


def members(net_id: str) -> list[str]:
    with _ipr() as ipr:
        bridge = _index(ipr, names.bridge_name(net_id))
        if bridge is None:
            return []
        return sorted(link.get("ifname") for link in ipr.get_links() if link.get("master") == bridge)


def remove_network(net_id: str, *, force: bool = False) -> bool:
    """Remove the bridge when no port is left on it (or when ``force``); True if it is gone.

    The DHCP veth and the VXLAN device (``l2_vxlan``) do not count as ports: they go with it.
    """
    left = [
        m
        for m in members(net_id)
        if not m.startswith(names.DHCP_HOST_VETH_PREFIX) and not m.startswith("vxl-")  # l2_vxlan's
    ]
    if left and not force:
        return False
    with _ipr() as ipr:
        _delete(ipr, names.bridge_name(net_id))
    return True


def remove_bridge(bridge: str) -> None:
    """Remove a ``brq-*`` bridge by name, whatever is on it (for stale ones). Idempotent."""
    if not bridge.startswith(names.BRIDGE_PREFIX):
        raise ValueError(f"{bridge} is not a novalite bridge")
    with _ipr() as ipr:
        _delete(ipr, bridge)


def remove_link(ifname: str) -> None:
    """Remove a ``tap*`` link by name (a tap, or a veth standing in for one). Idempotent."""
    if not names.is_tap_name(ifname):
        raise ValueError(f"{ifname} is not a novalite port device")
    with _ipr() as ipr:
        _delete(ipr, ifname)


def list_state() -> L2State:
    """Bridges named ``brq-*`` with their members, and taps named like ours, on this host.

    Only ``tap`` + 11 id characters counts as ours: other software's ``tap0`` is left alone.
    """
    with _ipr() as ipr:
        links = list(ipr.get_links())
    by_index = {link["index"]: link.get("ifname") for link in links}
    bridges: dict[str, list[str]] = {}
    taps: list[str] = []
    for link in links:
        ifname = link.get("ifname")
        if _kind(link) == "bridge" and ifname.startswith(names.BRIDGE_PREFIX):
            bridges.setdefault(ifname, [])
        if _kind(link) == "tun" and names.is_tap_name(ifname):
            taps.append(ifname)
    for link in links:
        master = by_index.get(link.get("master"))
        if master in bridges:
            bridges[master].append(link.get("ifname"))
    return L2State(bridges={b: sorted(m) for b, m in sorted(bridges.items())}, taps=sorted(taps))

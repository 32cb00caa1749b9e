"""Layer 2 across hosts: a network's bridges on several hosts joined by VXLAN (issue 20, item 1).

Each host with a port on the network gets one VXLAN device ``vxl-<net>`` on the network's bridge
``brq-<net>``: VNI ``vni(net_id)``, its own underlay address as the local end, UDP 4789, MAC
learning from the underlay off. Broadcast, unknown unicast and multicast go by head-end
replication to an explicit list of peers -- one all-zero-MAC FDB entry per other host that has a
port on the network (Neutron's linuxbridge agent with l2population does the same) -- so nothing
depends on multicast in the underlay; the bridge learns the guests' MACs behind the device as
usual. ``set_peers`` makes the list exactly what is given (stale hosts removed), idempotently.

The device is created in the underlay's namespace (its UDP socket stays in the namespace it was
made in, so the tunnel runs over the host's own addresses and routes) and then moved into the
network's namespace, where the bridge is (``l2``); it is read and changed there.

:func:`ensure` takes ``netns``: the namespace that plays the host, i.e. the underlay (None: this
host's own), and every function ``bridge_ns``: the namespace holding the bridge (None: the
network's own ``qbr-<net id>``), so a test can run two "hosts" on one machine. The device's MTU is the
underlay's less the 50 bytes of VXLAN over IPv4 unless given.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns

from novalite.network.dataplane import names

PREFIX = "vxl-"
PORT = 4789  # IANA's VXLAN port
FLOOD_MAC = "00:00:00:00:00:00"  # the FDB entry the kernel floods BUM traffic to
OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
MAX_VNI = (1 << 24) - 1


def device_name(net_id: str) -> str:
    return PREFIX + names.short(net_id)


def vni(net_id: str) -> int:
    """The network's VNI, the same on every host: derived from its id (1 .. 2^24-1)."""
    digest = int.from_bytes(hashlib.sha256(net_id.encode()).digest()[:4], "big")
    return digest % MAX_VNI + 1


@dataclass(frozen=True)
class Tunnel:
    """What exists for one network on one host."""

    device: str
    vni: int
    local: str | None
    peers: tuple[str, ...]


def _bridge_ns(net_id: str, bridge_ns: str | None) -> str:
    return bridge_ns or names.network_namespace(net_id)


@contextlib.contextmanager
def _ipr(netns: str | None) -> Iterator[Any]:
    ipr = IPRoute(netns=netns) if netns else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def ensure(
    net_id: str,
    local_ip: str,
    *,
    netns: str | None = None,
    bridge_ns: str | None = None,
    mtu: int | None = None,
) -> str:
    """Create (or keep) the network's VXLAN device on its bridge (which must exist), up; return
    its name. A device whose VNI or local address differs is made again."""
    dev = device_name(net_id)
    want = vni(net_id)
    into = _bridge_ns(net_id, bridge_ns)
    with _ipr(into) as nsr:
        bridge = _index(nsr, names.bridge_name(net_id))
        if bridge is None:
            raise LookupError(f"no bridge for network {net_id}")
        index = _index(nsr, dev)
        if index is not None:
            current = _read(nsr, index)
            if (current.vni, current.local) != (want, local_ip):
                nsr.link("del", index=index)
                index = None
        if index is None:
            with _ipr(netns) as ipr:
                stale = _index(ipr, dev)  # made but not moved before a crash
                if stale is not None:
                    ipr.link("del", index=stale)
                ipr.link(
                    "add",
                    ifname=dev,
                    kind="vxlan",
                    vxlan_id=want,
                    vxlan_local=local_ip,
                    vxlan_port=PORT,
                    vxlan_learning=0,
                )
                ipr.link("set", index=_index(ipr, dev), net_ns_fd=into)
            index = _index(nsr, dev)
        if mtu:
            nsr.link("set", index=index, mtu=mtu)
        nsr.link("set", index=index, master=bridge, state="up")
    return dev


def _flood_list(ipr: Any, index: int) -> list[str]:
    return sorted(
        str(m.get("NDA_DST"))
        for m in ipr.fdb("dump", ifindex=index)
        if m.get("ifindex") == index and m.get("NDA_LLADDR") == FLOOD_MAC and m.get("NDA_DST")
    )


def _read(ipr: Any, index: int) -> Tunnel:
    link = ipr.get_links(index)[0]
    data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    return Tunnel(
        device=str(link.get_attr("IFLA_IFNAME")),
        vni=int(data.get_attr("IFLA_VXLAN_ID")),
        local=data.get_attr("IFLA_VXLAN_LOCAL"),
        peers=tuple(_flood_list(ipr, index)),
    )


def set_peers(net_id: str, peers: Iterable[str], *, bridge_ns: str | None = None) -> tuple[str, ...]:
    """Make the device's flood list exactly ``peers`` (the other hosts' underlay addresses that
    have a port on the network); returns it."""
    wanted = sorted(set(peers))
    with _ipr(_bridge_ns(net_id, bridge_ns)) as ipr:
        index = _index(ipr, device_name(net_id))
        if index is None:
            raise LookupError(f"no VXLAN device for network {net_id}")
        have = _flood_list(ipr, index)
        for peer in have:
            if peer not in wanted:
                ipr.fdb("del", ifindex=index, lladdr=FLOOD_MAC, dst=peer)
        for peer in wanted:
            if peer not in have:
                ipr.fdb("append", ifindex=index, lladdr=FLOOD_MAC, dst=peer)
        return tuple(_flood_list(ipr, index))


def show(net_id: str, *, bridge_ns: str | None = None) -> Tunnel | None:
    into = _bridge_ns(net_id, bridge_ns)
    if into not in netns_names():
        return None
    with _ipr(into) as ipr:
        index = _index(ipr, device_name(net_id))
        return None if index is None else _read(ipr, index)


def remove(net_id: str, *, bridge_ns: str | None = None) -> None:
    """Remove the network's VXLAN device (its FDB entries go with it). Idempotent."""
    into = _bridge_ns(net_id, bridge_ns)
    if into not in netns_names():
        return
    with _ipr(into) as ipr:
        index = _index(ipr, device_name(net_id))
        if index is not None:
            ipr.link("del", index=index)


def remove_device(ifname: str, *, netns: str | None = None) -> None:
    """Remove a ``vxl-*`` device by name from ``netns`` (None: the host's). Idempotent."""
    if not is_tunnel(ifname):
        raise ValueError(f"{ifname} is not a novalite VXLAN device")
    with _ipr(netns) as ipr:
        index = _index(ipr, ifname)
        if index is not None:
            ipr.link("del", index=index)


def netns_names() -> list[str]:
    return list(pyroute2_netns.listnetns())


def is_tunnel(ifname: str) -> bool:
    """A bridge member that is not a port: ``l2.remove_network`` does not count it."""
    return ifname.startswith(PREFIX)

"""A QEMU host's tunnel address (``my_ip``): where the other hosts' VXLAN devices send this host's
networks' traffic. It is stored as the host's compute node ``host_ip`` (``compute.hosts``), which
every host reads to find its peers (``compute.networking``)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def default_route_address(route_table: Path = Path("/proc/net/route")) -> str | None:
    """The IPv4 address of the interface holding the default route in this network namespace."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    ifname = next((f[0] for f in (line.split() for line in lines) if len(f) > 2 and f[1] == "00000000"), None)
    if ifname is None:
        return None
    try:
        from pyroute2 import IPRoute
    except ImportError:
        return _address_by_connect()
    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            return None
        for addr in ipr.get_addr(family=socket.AF_INET, index=links[0]):
            value = addr.get_attr("IFA_ADDRESS")
            if value:
                return str(value)
    return None


def _address_by_connect() -> str | None:
    """The source address the kernel picks towards a public address (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            return str(sock.getsockname()[0])
    except OSError:
        return None


def my_ip(settings: Any) -> str:
    """``my_ip`` when set (it must be an IPv4 address), else the default route's address, else
    127.0.0.1."""
    configured = str(getattr(settings, "my_ip", "") or "").strip()
    if configured:
        try:
            return str(ipaddress.IPv4Address(configured))
        except ValueError:
            raise SystemExit(f"novalite: my_ip must be an IPv4 address, not {configured!r}") from None
    return default_route_address() or LOOPBACK

"""Address management, pure: subnet CIDR checks, default gateway and allocation pools,
first free address in the pools, SLAAC (EUI-64) addresses and MAC generation.

Nothing here touches the database; ``network.ports`` feeds it the addresses already taken.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from novalite.errors import BadRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SLAAC_MODES = ("slaac", "dhcpv6-stateless")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
MAC_PREFIX = "fa:16:3e"


def parse_cidr(cidr: str, ip_version: int) -> IPNetwork:
    """The subnet's network; 400 (Neutron's InvalidInput) when malformed or of the wrong family."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except (ValueError, TypeError):
        raise BadRequest(
            f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.", kind="InvalidInput"
        ) from None
    if net.version != ip_version:
        raise BadRequest(
            "Invalid input for operation: Cidr and IP version are not compatible.", kind="InvalidInput"
        )
    if (
        "/" in cidr
        and ipaddress.ip_network(cidr, strict=False).network_address != ipaddress.ip_interface(cidr).ip
    ):
        raise BadRequest(
            f"Invalid input for cidr. Reason: '{cidr}' isn't a recognized IP subnet cidr, "
            f"'{net}' is recommended.",
            kind="InvalidInput",
        )
    if ip_version == 4 and net.prefixlen > 30 or ip_version == 6 and net.prefixlen > 126:
        raise BadRequest(
            f"Invalid input for operation: Requested subnet with cidr: {net} is too small.",
            kind="InvalidInput",
        )
    return net


def parse_ip(value: str, what: str = "ip_address") -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise BadRequest(
            f"Invalid input for {what}. Reason: '{value}' is not a valid IP address.", kind="InvalidInput"
        ) from None


def default_gateway(net: IPNetwork) -> str:
    return str(net.network_address + 1)


def default_pools(net: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    """The whole usable range minus the gateway (IPv4 also minus network and broadcast)."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    ranges: list[tuple[int, int]] = [(first, last)]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        ranges = (
            [piece for lo, hi in ranges for piece in ((lo, gw - 1), (gw + 1, hi)) if piece[0] <= piece[1]]
            if first <= gw <= last
            else ranges
        )
    make = ipaddress.ip_address
    return [{"start": str(make(lo)), "end": str(make(hi))} for lo, hi in ranges]


def check_pools(net: IPNetwork, pools: list[dict[str, str]], gateway: str | None) -> list[dict[str, str]]:
    """Validate requested pools: inside the CIDR, start <= end, no overlap, not holding the gateway."""
    spans: list[tuple[int, int]] = []
    for pool in pools:
        start, end = parse_ip(pool["start"], "allocation_pools"), parse_ip(pool["end"], "allocation_pools")
        if start.version != net.version or start not in net or end not in net or int(start) > int(end):
            raise BadRequest(
                f"The allocation pool {pool['start']}-{pool['end']} spans beyond the subnet cidr {net}.",
                kind="OutOfBoundsAllocationPool",
            )
        spans.append((int(start), int(end)))
    spans.sort()
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        if lo <= hi:
            raise BadRequest("Found overlapping allocation pools.", kind="OverlappingAllocationPools")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        if any(lo <= gw <= hi for lo, hi in spans):
            raise BadRequest(
                f"Gateway ip {gateway} conflicts with allocation pool.",
                kind="GatewayConflictWithAllocationPools",
            )
    return [
        {"start": str(ipaddress.ip_address(lo)), "end": str(ipaddress.ip_address(hi))} for lo, hi in spans
    ]


def in_pools(address: str, pools: Iterable[dict[str, str]]) -> bool:
    value = int(ipaddress.ip_address(address))
    return any(
        int(ipaddress.ip_address(p["start"])) <= value <= int(ipaddress.ip_address(p["end"])) for p in pools
    )


def first_free(pools: list[dict[str, str]], taken: set[str]) -> str | None:
    """The lowest address in the pools that is not in ``taken`` (None when all are used).

    Visits at most ``len(taken) + 1`` addresses per pool, so a /64 costs no more than a /26.
    """
    used = {int(ipaddress.ip_address(t)) for t in taken}
    for pool in sorted(pools, key=lambda p: int(ipaddress.ip_address(p["start"]))):
        value = int(ipaddress.ip_address(pool["start"]))
        end = int(ipaddress.ip_address(pool["end"]))
        while value <= end:
            if value not in used:
                return str(ipaddress.ip_address(value))
            value += 1
    return None


def eui64_address(net: IPNetwork, mac: str) -> str:
    """The SLAAC address a host with ``mac`` configures on a /64 (modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    suffix = int.from_bytes(bytes(iid), "big")
    return str(ipaddress.ip_address(int(net.network_address) | suffix))


def random_mac(rng: random.Random | None = None) -> str:
    """A locally administered unicast MAC with OpenStack's ``fa:16:3e`` prefix."""
    r = rng or random.SystemRandom()
    return MAC_PREFIX + "".join(f":{r.randrange(256):02x}" for _ in range(3))


def valid_mac(mac: str) -> bool:
    parts = mac.split(":")
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        return False
    try:
        first = int(parts[0], 16)
        for p in parts[1:]:
            int(p, 16)
    except ValueError:
        return False
    return not first & 1 and mac.lower() != "00:00:00:00:00:00"

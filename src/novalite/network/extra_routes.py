"""A router's extra routes (Neutron's ``extraroute``): ``routes`` is replaced by a router
update, each nexthop must be on a subnet of one of the router's ports (and not one of its own
addresses), and an interface a nexthop needs cannot be removed. No data plane."""

from __future__ import annotations

import ipaddress

from sqlalchemy.orm import Session

from novalite.db.models.network import Port, Router, Subnet
from novalite.errors import BadRequest, Conflict
from novalite.network import ports

MAX_ROUTES = 30  # Neutron's max_routes


def _route_value(kind: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if kind == "subnet":
            return ipaddress.ip_network(value, strict=False)
        ipaddress.ip_address(value)
    except ValueError:
        what = "IP subnet" if kind == "subnet" else "IP address"
        raise BadRequest(
            f"Invalid input for routes. Reason: '{value}' is not a valid {what}.", kind="InvalidInput"
        ) from None
    return None


def checked(
    s: Session, router: Router, routes: list[dict[str, str]], router_ports: list[Port]
) -> list[dict[str, str]]:
    """Neutron's checks: at most 30; each nexthop on a subnet of one of the router's ports and not
    one of the router's own addresses."""
    if len(routes) > MAX_ROUTES:
        raise BadRequest(
            f"Unable to complete operation for {router.id}. The number of routes exceeds the maximum "
            f"{MAX_ROUTES}.",
            kind="RoutesExhausted",
        )
    seen: set[tuple[str, str]] = set()
    for route in routes:
        _route_value("subnet", route["destination"])
        _route_value("address", route["nexthop"])
        key = (route["destination"], route["nexthop"])
        if key in seen:
            raise BadRequest(
                f"Invalid input for routes. Reason: Duplicate hostroute '{route}'.", kind="InvalidInput"
            )
        seen.add(key)
    own = [ip for p in router_ports for ip in ports.port_ips(s, p.id)]
    cidrs = [ipaddress.ip_network(sub.cidr) for ip in own if (sub := s.get(Subnet, ip.subnet_id)) is not None]
    addresses = {ipaddress.ip_address(ip.ip_address) for ip in own}
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        reason = None
        if not any(hop in cidr for cidr in cidrs):
            reason = "the nexthop is not connected with router"
        elif hop in addresses:
            reason = "the nexthop is used by router"
        if reason:
            raise BadRequest(f"Invalid format for routes: {routes}, {reason}", kind="InvalidRoutes")
    return [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in routes]


def check_not_needed(router: Router, subnet: Subnet) -> None:
    """409 when a route's nexthop is on ``subnet`` (whose interface is being removed)."""
    cidr = ipaddress.ip_network(subnet.cidr)
    if any(ipaddress.ip_address(r["nexthop"]) in cidr for r in router.routes or []):
        raise Conflict(
            f"Router interface for subnet {subnet.id} on router {router.id} cannot be deleted, as it is "
            "required by one or more routes.",
            kind="RouterInterfaceInUseByRoute",
        )

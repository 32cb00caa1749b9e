"""What the compute side needs from networking, as plain Python over a session.

Behind these functions is the embedded Neutron subset; a client for a real Neutron can
offer the same functions later. Nothing here returns ORM objects: networks and ports come
back as frozen dataclasses. Errors raised by the ``validate_*``/``resolve_*`` helpers are
the ones Nova answers for ``POST /servers`` (nova-create-pipeline.md §2.2 step 5.3-5.4):
400/409 with Nova's messages. The ``allocate``/``bind``/``release`` helpers are used by the
compute agent and raise Neutron's errors (e.g. 409 ``IpAddressGenerationFailure``).

Also the seeder: the shared external ``public`` network and a ``private`` network (IPv4 and
IPv6 SLAAC subnets) plus a ``default`` security group for the admin and demo projects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import Network, Port, PortIP
from novalite.domain.request_spec import RequestedNetwork
from novalite.errors import BadRequest, Conflict, Forbidden
from novalite.network import networks, ports, quotas, security_groups, tags
from novalite.network.floating_ips import floating_addresses
from novalite.network.security_groups import resolve_security_group

__all__ = [
    "FixedIP",
    "NetworkInfo",
    "PortInfo",
    "RequestedNetwork",
    "allocate_port",
    "bind_port",
    "floating_addresses",
    "get_network",
    "get_port",
    "instance_addresses",
    "list_available_networks",
    "ports_allowed",
    "release_ports_for_device",
    "resolve_security_group",
    "seed",
    "unmap_floating_ips",
    "validate_requested_networks",
]


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    project_id: str
    shared: bool
    external: bool
    mtu: int
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str
    version: int


@dataclass(frozen=True)
class PortInfo:
    id: str
    network_id: str
    network_name: str
    project_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...]
    device_id: str
    device_owner: str
    host: str
    status: str
    security_group_ids: tuple[str, ...]
    mtu: int


def _agent(project_id: str) -> RequestContext:
    """Nova acts on Neutron with a service (admin) identity on behalf of ``project_id``."""
    return RequestContext(user_id="nova", project_id=project_id, roles=("admin",))


def _network_info(s: Session, net: Network) -> NetworkInfo:
    return NetworkInfo(
        id=net.id,
        name=net.name,
        project_id=net.project_id,
        shared=net.shared,
        external=net.router_external,
        mtu=net.mtu,
        subnet_ids=tuple(sub.id for sub in networks.network_subnets(s, net.id)),
    )


def _port_info(s: Session, port: Port) -> PortInfo:
    net = s.get(Network, port.network_id)
    ips = tuple(
        FixedIP(ip.subnet_id, ip.ip_address, ipaddress.ip_address(ip.ip_address).version)
        for ip in ports.port_ips(s, port.id)
    )
    return PortInfo(
        id=port.id,
        network_id=port.network_id,
        network_name=net.name if net else "",
        project_id=port.project_id,
        mac_address=port.mac_address,
        fixed_ips=ips,
        device_id=port.device_id,
        device_owner=port.device_owner,
        host=port.binding_host_id,
        status=port.status,
        security_group_ids=tuple(ports.port_group_ids(s, port.id)),
        mtu=net.mtu if net else 1500,
    )


def list_available_networks(s: Session, project_id: str) -> list[NetworkInfo]:
    """Networks a server of ``project_id`` lands on when none is requested: the project's own
    (not shared, not external) plus every shared network, as Nova asks Neutron for them."""
    q = (
        select(Network)
        .where(
            or_(
                (Network.project_id == project_id)
                & Network.shared.is_(False)
                & Network.router_external.is_(False),
                Network.shared.is_(True),
            )
        )
        .order_by(Network.created_at, Network.id)
    )
    return [_network_info(s, n) for n in s.scalars(q)]


def get_network(s: Session, project_id: str, network_id: str) -> NetworkInfo | None:
    """The network if ``project_id`` can see it (own, shared or external), else None."""
    net = s.get(Network, network_id)
    if net is None or not (net.project_id == project_id or net.shared or net.router_external):
        return None
    return _network_info(s, net)


def get_port(s: Session, port_id: str) -> PortInfo | None:
    port = s.get(Port, port_id)
    return None if port is None else _port_info(s, port)


def ports_allowed(s: Session, project_id: str, ports_per_instance: int, max_count: int) -> int:
    """How many instances the port quota leaves room for (at most ``max_count``).

    Raises 403 ``PortLimitExceeded`` when the project is already over its port quota.
    """
    room = quotas.headroom(s, project_id, "port")
    if room is None or ports_per_instance == 0:
        return max_count
    if room < 0:
        raise Forbidden("Maximum number of ports exceeded", kind="PortLimitExceeded")
    return min(max_count, room // ports_per_instance)


def _check_port(s: Session, project_id: str, port_id: str) -> None:
    port = s.get(Port, port_id)
    if port is None or port.project_id != project_id:
        raise BadRequest(f"Port id {port_id} could not be found.", kind="PortNotFound")
    if port.device_id:
        raise Conflict(f"Port {port_id} is still in use.", kind="PortInUse")
    if not ports.port_ips(s, port_id):
        raise BadRequest(
            f"Port {port_id} requires a FixedIP in order to be used.", kind="PortRequiresFixedIP"
        )


def _check_network(s: Session, project_id: str, req: RequestedNetwork) -> None:
    assert req.network_id is not None
    info = get_network(s, project_id, req.network_id)
    if info is None:
        raise BadRequest(f"Network {req.network_id} could not be found.", kind="NetworkNotFound")
    if not info.subnet_ids:
        raise BadRequest(
            f"Network {req.network_id} requires a subnet in order to boot instances on.",
            kind="NetworkRequiresSubnet",
        )
    if req.fixed_ip is not None:
        q = (
            select(Port)
            .join(PortIP, PortIP.port_id == Port.id)
            .where(Port.network_id == req.network_id, PortIP.ip_address == req.fixed_ip)
        )
        holder = s.scalars(q).first()
        if holder is not None:
            raise BadRequest(
                f"Fixed IP address {req.fixed_ip} is already in use on instance {holder.device_id}.",
                kind="FixedIpAlreadyInUse",
            )


def validate_requested_networks(
    s: Session, *, project_id: str, requested: str | Sequence[RequestedNetwork] | None, max_count: int
) -> int:
    """Nova's ``validate_networks``: check the request and return how many instances (<= max_count)
    the port quota allows. ``requested`` is ``"none"``, ``"auto"``, None (nothing given) or a list."""
    if requested == "none":
        return max_count
    if requested is None or requested == "auto":
        available = list_available_networks(s, project_id)
        if len(available) > 1:
            raise Conflict(
                "More than one possible network found. Specify network ID(s) to select which one(s) "
                "to connect to.",
                kind="NetworkAmbiguous",
            )
        if not available:
            if requested == "auto":  # Neutron's auto-allocated topology (rolled back with the create)
                from novalite.network import auto_allocate

                auto_allocate.allocate(s, project_id)
                return ports_allowed(s, project_id, 1, max_count)
            return max_count
        return ports_allowed(s, project_id, 1, max_count)
    assert not isinstance(requested, str)
    needed = 0
    for req in requested:
        if req.port_id:
            _check_port(s, project_id, req.port_id)
        else:
            _check_network(s, project_id, req)
            needed += 1
    return ports_allowed(s, project_id, needed, max_count)


def allocate_port(
    s: Session,
    *,
    project_id: str,
    network_id: str,
    device_id: str,
    device_owner: str,
    host: str,
    fixed_ip: str | None = None,
    security_group_ids: Sequence[str] | None = None,
) -> PortInfo:
    """Create a port for an instance (device) on ``network_id``, bound to ``host``.

    ``security_group_ids`` None means the project's default group. Raises Neutron's errors:
    409 OverQuota / IpAddressGenerationFailure / IpAddressAlreadyAllocated, 404 NetworkNotFound.
    """
    fields: dict[str, Any] = {
        "network_id": network_id,
        "project_id": project_id,
        "device_id": device_id,
        "device_owner": device_owner,
        "binding:host_id": host,
    }
    if fixed_ip is not None:
        fields["fixed_ips"] = [{"ip_address": fixed_ip}]
    if security_group_ids is not None:
        fields["security_groups"] = list(security_group_ids)
    port = ports.create_port(s, _agent(project_id), fields)
    return _port_info(s, port)


def bind_port(
    s: Session, port_id: str, *, host: str, device_id: str, device_owner: str = "compute:nova"
) -> PortInfo:
    """Attach an existing (pre-created) port to an instance on ``host``; the port becomes ACTIVE."""
    port = s.get(Port, port_id)
    if port is None:
        raise ports.port_not_found(port_id)
    if port.device_id and port.device_id != device_id:
        raise Conflict(f"Port {port_id} is still in use.", kind="PortInUse")
    port.device_id, port.device_owner, port.binding_host_id, port.status = (
        device_id,
        device_owner,
        host,
        "ACTIVE",
    )
    port.revision_number += 1
    s.flush()
    return _port_info(s, port)


def release_ports_for_device(s: Session, device_id: str, *, keep: Iterable[str] = ()) -> list[str]:
    """Delete the ports of ``device_id`` (their addresses are free again at once); ports in
    ``keep`` (pre-existing ports the user passed in) are only unbound. Safe to call twice."""
    kept = set(keep)
    released: list[str] = []
    found = list(s.scalars(select(Port).where(Port.device_id == device_id)))
    # the floating IPs of the ports that go stay allocated, unmapped (as Neutron does)
    ports.disassociate_floating_ips(s, [p.id for p in found if p.id not in kept])
    for port in found:
        released.append(port.id)
        if port.id in kept:
            port.device_id, port.device_owner, port.binding_host_id, port.status = "", "", "", "DOWN"
        else:
            tags.clear(s, port.id)
            s.delete(port)
    s.flush()
    return released


def unmap_floating_ips(s: Session, port_ids: Iterable[str]) -> None:
    """The floating IPs of ports about to be deleted stay allocated, unmapped (as Neutron does)."""
    ports.disassociate_floating_ips(s, list(port_ids))


def instance_addresses(s: Session, device_id: str) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses`` for a server: network name -> fixed IPs of the device's ports."""
    out: dict[str, list[dict[str, Any]]] = {}
    q = select(Port).where(Port.device_id == device_id).order_by(Port.created_at, Port.id)
    for port in s.scalars(q):
        info = _port_info(s, port)
        for ip in info.fixed_ips:
            out.setdefault(info.network_name, []).append(
                {
                    "version": ip.version,
                    "addr": ip.ip_address,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": info.mac_address,
                }
            )
    return out


def ensure_default_security_group(s: Session, project_id: str) -> str:
    return security_groups.ensure_default_group(s, project_id).id


def _seed_network(
    s: Session, *, project_id: str, name: str, external: bool, subnets: list[dict[str, Any]]
) -> None:
    q = select(Network).where(Network.project_id == project_id, Network.name == name)
    if s.scalars(q).first() is not None:
        return
    ctx = _agent(project_id)
    net = networks.create_network(
        s, ctx, {"name": name, "project_id": project_id, "router:external": external}
    )
    for fields in subnets:
        networks.create_subnet(s, ctx, dict(fields, network_id=net.id, project_id=project_id))


def seed(runtime: Any, s: Session, ids: dict[str, str]) -> None:
    """Idempotent first-start data: ``public`` (external), per-project ``private``, ``default`` groups."""
    admin, demo = ids["admin_project"], ids["demo_project"]
    _seed_network(
        s,
        project_id=admin,
        name="public",
        external=True,
        subnets=[{"name": "public-subnet", "ip_version": 4, "cidr": "172.24.4.0/24", "enable_dhcp": False}],
    )
    for project_id in (admin, demo):
        _seed_network(
            s,
            project_id=project_id,
            name="private",
            external=False,
            subnets=[
                {"name": "private-subnet", "ip_version": 4, "cidr": "10.0.0.0/26"},
                {
                    "name": "ipv6-private-subnet",
                    "ip_version": 6,
                    "cidr": "fd00::/64",
                    "ipv6_ra_mode": "slaac",
                    "ipv6_address_mode": "slaac",
                },
            ],
        )
        security_groups.ensure_default_group(s, project_id)
    s.flush()

"""Where the server should go: AZ parsing, forced hosts, 2.74 requested destination, AZ checks."""

from __future__ import annotations

from sqlalchemy.orm import Session

from novalite.errors import BadRequest
from novalite.services import zones
from novalite.services.create_server import lookups
from novalite.services.create_server.plan import RequestedPlacement
from novalite.services.create_server.request import CreateServerRequest

FORCED_HOST_RULE = "os_compute_api:servers:create:forced_host"
REQUESTED_DESTINATION_RULE = "compute:servers:create:requested_destination"


def parse_availability_zone(req: CreateServerRequest) -> RequestedPlacement:
    """``az``, ``az:host``, ``az:host:node``, ``az::node`` (§1.3 step 6); forcing a host is admin-only."""
    raw = req.availability_zone
    if raw is None or ":" not in raw:
        return RequestedPlacement(availability_zone=raw or None)
    parts = raw.split(":")
    if len(parts) > 3:
        raise BadRequest("Unable to parse availability_zone", kind="InvalidInput")
    zone = parts[0] or None
    host = parts[1] or None
    node = (parts[2] or None) if len(parts) == 3 else None
    if host is not None or node is not None:
        req.ctx.require_admin(FORCED_HOST_RULE)
    return RequestedPlacement(availability_zone=zone, forced_host=host, forced_node=node)


def add_requested_destination(req: CreateServerRequest, dest: RequestedPlacement) -> RequestedPlacement:
    """2.74 ``host`` / ``hypervisor_hostname``: admin-only, exclusive with the ``az:host`` syntax."""
    if req.host is None and req.hypervisor_hostname is None:
        return dest
    req.ctx.require_admin(REQUESTED_DESTINATION_RULE)
    if dest.forced_host is not None or dest.forced_node is not None:
        raise BadRequest(
            "The requested availability zone contains ':'. Cannot specify both host and/or "
            "hypervisor_hostname and availability_zone with host and/or node."
        )
    return RequestedPlacement(
        availability_zone=dest.availability_zone,
        requested_host=req.host,
        requested_node=req.hypervisor_hostname,
    )


def reconcile_forced_host_zone(s: Session, dest: RequestedPlacement) -> RequestedPlacement:
    """Keep the AZ only if the forced host really is in it; otherwise the host's own AZ applies."""
    if dest.forced_host is None or dest.availability_zone is None:
        return dest
    if zones.host_in_zone(s, dest.forced_host, dest.availability_zone):
        return dest
    return RequestedPlacement(
        availability_zone=None, forced_host=dest.forced_host, forced_node=dest.forced_node
    )


def check_availability_zone(s: Session, dest: RequestedPlacement) -> None:
    """§2.1 #4: a requested AZ (without forced host) must exist."""
    if dest.availability_zone is None or dest.forced_host is not None or dest.forced_node is not None:
        return
    if dest.availability_zone not in zones.zone_names(s):
        raise BadRequest("The requested availability zone is not available", kind="InvalidRequest")


def check_requested_destination(s: Session, dest: RequestedPlacement) -> None:
    """§2.3 #1: the 2.74 host/node must exist (ComputeHostNotFound, 400)."""
    if dest.requested_host is None and dest.requested_node is None:
        return
    if not lookups.compute_host_exists(s, dest.requested_host, dest.requested_node):
        name = dest.requested_host or dest.requested_node
        raise BadRequest(f"Compute host {name} could not be found.", kind="ComputeHostNotFound")

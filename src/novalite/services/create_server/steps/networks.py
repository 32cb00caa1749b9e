"""Requested networks (§1.3 step 10, §2.1 #1-2, §2.2 5.3-5.4).

Parsing and the pre-checks need nothing but the request; existence, ambiguity and the port
quota are asked of the embedded network service (``novalite.network.service``).
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any, cast

from sqlalchemy.orm import Session

from novalite.domain.request_spec import RequestedNetwork, RequestedNetworks
from novalite.errors import BadRequest, OverQuota
from novalite.network import service as network
from novalite.services.create_server.request import CreateServerRequest


def _is_uuid(value: Any) -> bool:
    try:
        uuidlib.UUID(str(value))
    except ValueError:
        return False
    return True


def parse_networks(req: CreateServerRequest) -> RequestedNetworks:
    """``"none"`` / ``"auto"`` / None stay as they are; a list becomes ``RequestedNetwork`` values."""
    if req.networks is None or isinstance(req.networks, str):
        return cast(RequestedNetworks, req.networks)  # the schema allows no string but "none" / "auto"
    seen_ports: set[str] = set()
    out = []
    for item in req.networks:
        port = item.get("port")
        network_id = None
        if port:
            if item.get("fixed_ip"):
                raise BadRequest(
                    f"Specified Fixed IP '{item['fixed_ip']}' cannot be used with port '{port}': "
                    "the two cannot be specified together."
                )
            if port in seen_ports:
                raise BadRequest(f"Port {port} is already in use.")  # duplicate port in one request
            seen_ports.add(port)
        else:
            net = item.get("uuid")
            if net is None:
                raise BadRequest("Bad network format: missing 'uuid'")
            if not _is_uuid(net):
                raise BadRequest(f"Bad networks format: network uuid is not in proper format ({net})")
            network_id = net
        out.append(
            RequestedNetwork(
                network_id=network_id, port_id=port, fixed_ip=item.get("fixed_ip"), tag=item.get("tag")
            )
        )
    return tuple(out)


def precheck_networks(req: CreateServerRequest, networks: RequestedNetworks) -> None:
    """§2.1 #1-2: a fixed IP or a port cannot be shared by several instances."""
    if not isinstance(networks, tuple) or req.max_count <= 1:
        return
    if any(n.network_id and n.fixed_ip for n in networks):
        raise BadRequest(
            "max_count cannot be greater than 1 if an fixed_ip is specified.",
            kind="InvalidFixedIpAndMaxCountRequest",
        )
    if any(n.port_id for n in networks):
        raise BadRequest(
            "Unable to launch multiple instances with a single configured port ID. Please "
            "launch your instance one by one with different ports.",
            kind="MultiplePortsNotApplicable",
        )


def validate_networks(s: Session, req: CreateServerRequest, networks: RequestedNetworks) -> int:
    """Nova's ``validate_networks`` through the network service: how many instances the port
    quota allows (403 ``PortLimitExceeded`` below min_count; silently fewer below max_count)."""
    allowed = network.validate_requested_networks(
        s, project_id=req.ctx.project_id, requested=networks, max_count=req.max_count
    )
    if allowed < req.min_count:
        raise OverQuota("Maximum number of ports exceeded", kind="PortLimitExceeded")
    return min(allowed, req.max_count)


def check_security_groups(s: Session, req: CreateServerRequest) -> None:
    """Each group other than the literal ``default`` must resolve (400 / 409 on duplicates)."""
    for name in req.security_groups:
        if name != "default":
            network.resolve_security_group(s, req.ctx.project_id, name)

"""Requested networks (§1.3 step 10, §2.1 #1-2, §2.2 5.4).

Without an embedded Neutron a requested network or port cannot exist, so explicit lists answer
``NetworkNotFound`` / ``PortNotFound``; ``none`` and ``auto`` (and no networks before 2.37) pass.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from novalite.errors import BadRequest
from novalite.services.create_server.request import CreateServerRequest


def _is_uuid(value: Any) -> bool:
    try:
        uuidlib.UUID(str(value))
    except ValueError:
        return False
    return True


def parse_networks(req: CreateServerRequest) -> Any:
    """``"none"`` / ``"auto"`` / None stay as they are; a list becomes requested-network dicts."""
    if req.networks is None or isinstance(req.networks, str):
        return req.networks
    seen_ports: set[str] = set()
    out = []
    for item in req.networks:
        port = item.get("port")
        entry = {"network_id": None, "port_id": port, "fixed_ip": item.get("fixed_ip"), "tag": item.get("tag")}
        if port:
            if item.get("fixed_ip"):
                raise BadRequest(f"Specified Fixed IP '{item['fixed_ip']}' cannot be used with port '{port}': "
                                 "the two cannot be specified together.")
            if port in seen_ports:
                raise BadRequest(f"Port {port} is already in use.")  # duplicate port in one request
            seen_ports.add(port)
        else:
            net = item.get("uuid")
            if net is None:
                raise BadRequest("Bad network format: missing 'uuid'")
            if not _is_uuid(net):
                raise BadRequest(f"Bad networks format: network uuid is not in proper format ({net})")
            entry["network_id"] = net
        out.append(entry)
    return out


def precheck_networks(req: CreateServerRequest, networks: Any) -> None:
    """§2.1 #1-2: a fixed IP or a port cannot be shared by several instances."""
    if not isinstance(networks, list) or req.max_count <= 1:
        return
    if any(n["network_id"] and n["fixed_ip"] for n in networks):
        raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.",
                         kind="InvalidFixedIpAndMaxCountRequest")
    if any(n["port_id"] for n in networks):
        raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                         "launch your instance one by one with different ports.",
                         kind="MultiplePortsNotApplicable")


def validate_networks(networks: Any) -> None:
    """Every explicitly requested port or network must exist (none can, for now)."""
    if not isinstance(networks, list):
        return
    for n in networks:
        if n["port_id"]:
            raise BadRequest(f"Port id {n['port_id']} could not be found.", kind="PortNotFound")
        raise BadRequest(f"Network {n['network_id']} could not be found.", kind="NetworkNotFound")

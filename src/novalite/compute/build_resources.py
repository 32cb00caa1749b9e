"""The ``_build_resources`` part of a build: networks, then block devices.

Networking follows the request: ``"none"`` -> no port; nothing or ``"auto"`` -> one port on
the project's only available network (none available -> no port); a list -> a new port per
``network_id`` (with its ``fixed_ip``) and the user's ``port_id`` ports bound to this host.
A networking failure aborts the build ("Failed to allocate the network(s), not rescheduling.").
Block devices: the mappings are recorded as given; the ``destination_type: volume`` ones are
attached by ``volume.service.attach_for_instance``.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from novalite.compute.build import Abort, Build, set_task_state
from novalite.db.base import Database
from novalite.domain.states import TaskState
from novalite.errors import NovaliteError
from novalite.volume import service as volume

LOG = logging.getLogger(__name__)
NETWORK_FAILED = "Failed to allocate the network(s), not rescheduling."


def _group_ids(s: Session, network: Any, project_id: str, names: list[str]) -> list[str] | None:
    if not names:
        return None
    return [network.resolve_security_group(s, project_id, n) for n in names]


def _ports(s: Session, b: Build) -> list[dict[str, Any]]:
    from novalite.network import service as network

    owner = "compute:nova"
    requested = b.requested_networks
    if requested == "none":
        return []
    groups = _group_ids(s, network, b.project_id, b.security_groups)
    out = []
    if requested is None or requested == "auto":
        available = network.list_available_networks(s, b.project_id)
        wanted: list[dict[str, Any]] = [{"network_id": available[0].id}] if len(available) == 1 else []
    else:
        wanted = [r for r in requested if isinstance(r, dict)]
    for req in wanted:
        if req.get("port_id"):
            port = network.bind_port(
                s, str(req["port_id"]), host=b.host, device_id=b.instance_uuid, device_owner=owner
            )
        else:
            port = network.allocate_port(
                s,
                project_id=b.project_id,
                network_id=str(req["network_id"]),
                device_id=b.instance_uuid,
                device_owner=owner,
                host=b.host,
                fixed_ip=req.get("fixed_ip"),
                security_group_ids=groups,
            )
        out.append(
            {
                "port_id": port.id,
                "network_id": port.network_id,
                "network_name": port.network_name,
                "mac_address": port.mac_address,
                "fixed_ips": [{"ip_address": ip.ip_address, "version": ip.version} for ip in port.fixed_ips],
            }
        )
    return out


def allocate_networks(s: Session, b: Build) -> str | None:
    """Ports for the instance, then task_state block_device_mapping (spawning when there is
    nothing to attach). Runs in the caller's transaction inside a SAVEPOINT: on failure the
    ports are gone and the reason is returned (the caller aborts the build after committing).

    ``networks: none`` with nothing to attach has no port to make and nothing that can fail:
    the transitions networking -> block_device_mapping -> spawning are one UPDATE (all of it
    commits together, so no reader could have seen the states in between anyway)."""
    if b.requested_networks == "none" and not needs_block_devices(b):
        set_task_state(s, b.instance_uuid, TaskState.NETWORKING, TaskState.SPAWNING, network_info=[])
        return None
    try:
        with s.begin_nested():
            info = _ports(s, b)
            set_task_state(
                s, b.instance_uuid, TaskState.NETWORKING, TaskState.BLOCK_DEVICE_MAPPING, network_info=info
            )
            if not needs_block_devices(b):
                set_task_state(s, b.instance_uuid, TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING)
    except (NovaliteError, KeyError, ValueError) as exc:
        LOG.info("networking for %s failed: %s", b.instance_uuid, exc)
        return f"{NETWORK_FAILED} ({getattr(exc, 'message', exc)})"
    return None


def needs_block_devices(b: Build) -> bool:
    """Only mappings with ``destination_type: volume`` have anything to attach (an image boot's
    local disk mapping has not): without them the build goes from networking to spawning."""
    bdms = b.build_args.get("block_device_mapping")
    if not bdms:
        return False
    return any(isinstance(m, dict) and m.get("destination_type") == "volume" for m in bdms)


def prepare_block_devices(db: Database, b: Build) -> None:
    """Attach the requested volumes and go to spawning."""
    bdms = b.build_args.get("block_device_mapping") or []
    try:
        with db.session() as s:
            if bdms:
                volume.attach_for_instance(
                    s, instance_uuid=b.instance_uuid, host=b.host, block_device_mapping=bdms
                )
            set_task_state(s, b.instance_uuid, TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING)
    except NovaliteError as exc:
        raise Abort(f"Failure prepping block device. ({exc.message})") from exc

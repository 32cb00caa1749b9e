"""VXLAN peers of a QEMU host's networks (docs/networking.md, VXLAN between hosts).

For each network in the host's desired data plane, the peers are the tunnel addresses (compute node
``host_ip``, each host's ``my_ip``) of the other hosts that run a live instance with a port on that
network. Loopback addresses (the simulated hosts') and this host's own address are no peers; a
network without peers gets no VXLAN device.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.compute import Instance
from novalite.db.models.network import Port
from novalite.db.models.placement import ComputeNode


def peers(s: Session, host: str, network_ids: list[str], local_ip: str) -> dict[str, tuple[str, ...]]:
    """network id -> the other hosts' tunnel addresses with a port on it (sorted)."""
    if not network_ids:
        return {}
    rows = s.execute(
        select(Port.network_id, Instance.host)
        .join(Instance, Instance.uuid == Port.device_id)
        .where(
            Port.network_id.in_(network_ids),
            Instance.deleted.is_(False),
            Instance.vm_state != "deleted",
            Instance.host.is_not(None),
            Instance.host != host,
        )
        .distinct()
    ).tuples()
    hosts_of: dict[str, set[str]] = {}
    for net_id, other in rows:
        hosts_of.setdefault(net_id, set()).add(str(other))
    wanted = sorted({h for hs in hosts_of.values() for h in hs})
    address = {
        h: ip
        for h, ip in s.execute(
            select(ComputeNode.host, ComputeNode.host_ip).where(
                ComputeNode.host.in_(wanted), ComputeNode.deleted.is_(False)
            )
        ).tuples()
        if h is not None and _usable(ip, local_ip)
    }
    return {
        net_id: tuple(sorted({address[h] for h in hs if h in address})) for net_id, hs in hosts_of.items()
    }


def _usable(ip: str | None, local_ip: str) -> bool:
    if not ip or ip == local_ip:
        return False
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def with_tunnels(s: Session, state: Any, host: str, local_ip: str) -> Any:
    """``state`` with each network's ``tunnel_local``/``tunnel_peers`` filled in."""
    if not state.networks:
        return state
    found = peers(s, host, [n.id for n in state.networks], local_ip)
    return dataclasses.replace(
        state,
        networks=tuple(
            dataclasses.replace(n, tunnel_local=local_ip, tunnel_peers=found.get(n.id, ()))
            if found.get(n.id)
            else n
            for n in state.networks
        ),
    )

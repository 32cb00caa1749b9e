"""Hypervisors: compute nodes with their service, placement usage and instances, for
``/os-hypervisors`` (``compute_api.hypervisors``). No ORM object leaves the caller's session
except inside a ``Node``, which the views turn into dicts.

Ids: ``uuid_ids`` (from 2.53, ``schemas.hypervisors.uuid_ids``) looks nodes and markers up by
compute node uuid; otherwise by integer id, and an id that is not one finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service
from novalite.errors import BadRequest, NotFound
from novalite.services.zones import COMPUTE


@dataclass
class Node:
    """One compute node with what its views need (no ORM object leaves the session)."""

    node: ComputeNode
    service: Service | None
    used: dict[str, int]
    running_vms: int = 0
    workload: int = 0
    servers: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class ListQuery:
    limit: int | None = None
    marker: str | None = None
    pattern: str | None = None
    with_servers: bool = False


def load(s: Session, nodes: list[ComputeNode], *, with_servers: bool) -> list[Node]:
    if not nodes:
        return []
    svc_ids = {n.service_id for n in nodes if n.service_id is not None}
    by_id = (
        {svc.id: svc for svc in s.scalars(select(Service).where(Service.id.in_(svc_ids)))} if svc_ids else {}
    )
    by_host = {
        svc.host: svc
        for svc in s.scalars(
            select(Service).where(
                Service.binary == COMPUTE,
                Service.host.in_({n.host for n in nodes}),
                Service.deleted.is_(False),
            )
        )
    }
    used: dict[str, dict[str, int]] = {}
    for rp_uuid, rc, amount, reserved in s.execute(
        select(ResourceProvider.uuid, Inventory.resource_class, Inventory.used, Inventory.reserved)
        .join(Inventory, Inventory.resource_provider_id == ResourceProvider.id)
        .where(ResourceProvider.uuid.in_([n.uuid for n in nodes]))
    ):
        used.setdefault(rp_uuid, {})[rc] = int(amount) + (int(reserved) if rc != "VCPU" else 0)
    out = []
    for n in nodes:
        svc = by_id.get(n.service_id) if n.service_id is not None else None
        out.append(Node(node=n, service=svc or by_host.get(n.host), used=used.get(n.uuid, {})))
    _attach_instances(s, out, with_servers=with_servers)
    return out


def _attach_instances(s: Session, nodes: list[Node], *, with_servers: bool) -> None:
    names = [n.node.hypervisor_hostname for n in nodes]
    rows = s.execute(
        select(Instance.id, Instance.uuid, Instance.node, Instance.task_state)
        .where(Instance.node.in_(names), Instance.deleted.is_(False))
        .order_by(Instance.id)
    )
    index = {n.node.hypervisor_hostname: n for n in nodes}
    for ident, uuid, node_name, task_state in rows:
        target = index[str(node_name)]
        target.running_vms += 1
        target.workload += 1 if task_state else 0
        if with_servers:
            target.servers = (target.servers or []) + [{"name": f"instance-{ident:08x}", "uuid": uuid}]


def _nodes_query() -> Any:
    return select(ComputeNode).where(ComputeNode.deleted.is_(False)).order_by(ComputeNode.id)


def all_nodes(s: Session) -> list[ComputeNode]:
    return list(s.scalars(_nodes_query()))


def page(s: Session, query: ListQuery, *, uuid_ids: bool) -> list[ComputeNode]:
    """The nodes matching ``query.pattern`` (404 when none), else a page after ``query.marker``
    (400 when unknown) of at most ``query.limit``."""
    stmt = _nodes_query()
    if query.pattern is not None:
        found = list(
            s.scalars(stmt.where(ComputeNode.hypervisor_hostname.contains(query.pattern, autoescape=True)))
        )
        if not found:
            raise NotFound(f"No hypervisor matching '{query.pattern}' could be found.")
        return found
    if query.marker is not None:
        key = ComputeNode.uuid if uuid_ids else ComputeNode.id
        marker_value: Any = (
            query.marker
            if uuid_ids
            else (int(query.marker) if query.marker.isdigit() and len(query.marker) < 11 else None)
        )
        marked = (
            s.scalars(select(ComputeNode).where(key == marker_value)).first()
            if marker_value is not None
            else None
        )
        if marked is None:
            raise BadRequest(f"marker [{query.marker}] not found")
        stmt = stmt.where(ComputeNode.id > marked.id)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return list(s.scalars(stmt))


def get_node(s: Session, hypervisor_id: str, *, uuid_ids: bool) -> ComputeNode:
    """404 ``ComputeHostNotFound`` when no live node has that id."""
    if uuid_ids:
        node = s.scalars(_nodes_query().where(ComputeNode.uuid == hypervisor_id)).first()
    else:
        ident = int(hypervisor_id) if hypervisor_id.isdigit() and len(hypervisor_id) < 11 else None
        node = s.scalars(_nodes_query().where(ComputeNode.id == ident)).first() if ident is not None else None
    if node is None:
        raise NotFound(
            f"Hypervisor with ID '{hypervisor_id}' could not be found.", kind="ComputeHostNotFound"
        )
    return node

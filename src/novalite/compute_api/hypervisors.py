"""Hypervisors (admin, §6.12): ``/os-hypervisors`` over compute nodes, their services and
placement usage.

Microversions: 2.28 ``cpu_info`` is an object (a JSON string before). 2.33 ``limit`` /
``marker`` paging with ``hypervisors_links``. 2.53 ids are compute node uuids (integers
before), ``hypervisor_hostname_pattern`` and ``with_servers`` replace ``/{pattern}/search``
and ``/{pattern}/servers`` (gone from 2.53), unknown query parameters are refused. 2.75
``with_servers`` always gives ``servers`` (``[]`` when none). 2.88 drops the resource
fields, ``/statistics`` and ``/{id}/uptime``; ``uptime`` moves into detail and show.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.api.common import next_link, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service
from novalite.errors import BadRequest, NotFound
from novalite.services.zones import COMPUTE, service_is_up

router = APIRouter(prefix="/compute/v2.1")

MAX_LIMIT = 1000
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_BOOL_WORDS = sorted(_TRUE | {"false", "0", "off", "no", "n", "f"})


@dataclass
class Node:
    """One compute node with what its views need (no ORM object leaves the session)."""

    node: ComputeNode
    service: Service | None
    used: dict[str, int]
    running_vms: int = 0
    workload: int = 0
    servers: list[dict[str, str]] | None = None


# --- loading -----------------------------------------------------------------------------


def _load(s: Session, nodes: list[ComputeNode], *, with_servers: bool) -> list[Node]:
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


# --- views -------------------------------------------------------------------------------


def _uptime(node: Node) -> str | None:
    svc = node.service
    if svc is None:
        return None
    now = utcnow()
    up = now - svc.created_at
    hours, rest = divmod(int(up.total_seconds()) % 86400, 3600)
    return (
        f" {now:%H:%M:%S} up {up.days} days, {hours:2d}:{rest // 60:02d},  1 users,  "
        "load average: 0.00, 0.00, 0.00"
    )


def _resources(version: Version, node: Node) -> dict[str, Any]:
    n = node.node
    vcpus_used = node.used.get("VCPU", 0)
    mem_used, disk_used = node.used.get("MEMORY_MB", 0), node.used.get("DISK_GB", 0)
    body: dict[str, Any] = {
        "vcpus": n.vcpus,
        "memory_mb": n.memory_mb,
        "local_gb": n.local_gb,
        "vcpus_used": vcpus_used,
        "memory_mb_used": mem_used,
        "local_gb_used": disk_used,
        "free_ram_mb": n.memory_mb - mem_used,
        "free_disk_gb": n.local_gb - disk_used,
        "current_workload": node.workload,
        "running_vms": node.running_vms,
        "disk_available_least": n.disk_available_least
        if n.disk_available_least is not None
        else n.local_gb - disk_used,
    }
    # 2.28: cpu_info is an object (a JSON string before)
    body["cpu_info"] = dict(n.cpu_info or {}) if version >= V(2, 28) else json.dumps(n.cpu_info or {})
    return body


def hypervisor_view(version: Version, node: Node, *, detail: bool, down_time: int) -> dict[str, Any]:
    n, svc = node.node, node.service
    body: dict[str, Any] = {
        "id": n.uuid if version >= V(2, 53) else n.id,  # 2.53: uuid ids
        "hypervisor_hostname": n.hypervisor_hostname,
        "state": "up" if svc is not None and service_is_up(svc, down_time) else "down",
        "status": "disabled" if svc is not None and svc.disabled else "enabled",
    }
    if detail:
        body.update(
            hypervisor_type=n.hypervisor_type, hypervisor_version=n.hypervisor_version, host_ip=n.host_ip
        )
        body["service"] = {
            "host": n.host,
            "id": (svc.uuid if version >= V(2, 53) else svc.id) if svc else None,
            "disabled_reason": svc.disabled_reason if svc else None,
        }
        if version >= V(2, 88):  # 2.88: no resource fields; uptime here
            body["uptime"] = _uptime(node)
        else:
            body.update(_resources(version, node))
    if node.servers is not None:
        body["servers"] = node.servers
    return body


# --- query parsing -----------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    limit: int | None = None
    marker: str | None = None
    pattern: str | None = None
    with_servers: bool = False


def _parse_bool(name: str, raw: str) -> bool:
    if raw.strip().lower() not in _BOOL_WORDS:
        raise BadRequest(
            f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not one of {_BOOL_WORDS}"
        )
    return raw.strip().lower() in _TRUE


def list_query(request: Request) -> ListQuery:
    version = request_version(request)
    params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
    if version < V(2, 33):
        return ListQuery()
    props: dict[str, Any] = {"limit": {"type": "string", "pattern": "^[0-9]+$"}, "marker": {"type": "string"}}
    if version >= V(2, 53):  # 2.53: pattern and with_servers; nothing else
        props.update(
            hypervisor_hostname_pattern={"type": "string", "minLength": 1}, with_servers={"type": "string"}
        )
    validate(
        {"type": "object", "properties": props, "additionalProperties": version < V(2, 53)},
        params,
        query=True,
    )
    limit = min(int(params["limit"]), MAX_LIMIT) if "limit" in params else None
    query = ListQuery(
        limit=limit,
        marker=params.get("marker"),
        pattern=params.get("hypervisor_hostname_pattern"),
        with_servers=_parse_bool("with_servers", params["with_servers"])
        if "with_servers" in params
        else False,
    )
    if query.pattern is not None and (query.limit is not None or query.marker is not None):
        raise BadRequest(
            "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."
        )
    return query


def _page(s: Session, version: Version, query: ListQuery) -> list[ComputeNode]:
    stmt = _nodes_query()
    if query.pattern is not None:
        found = list(
            s.scalars(stmt.where(ComputeNode.hypervisor_hostname.contains(query.pattern, autoescape=True)))
        )
        if not found:
            raise NotFound(f"No hypervisor matching '{query.pattern}' could be found.")
        return found
    if query.marker is not None:
        key = ComputeNode.uuid if version >= V(2, 53) else ComputeNode.id
        marker_value: Any = (
            query.marker
            if version >= V(2, 53)
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


def _down_time(request: Request) -> int:
    return int(runtime(request).settings.service_down_time)


def _list(request: Request, ctx: RequestContext, *, detail: bool) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hypervisors:list" + ("-detail" if detail else ""))
    version = request_version(request)
    query = list_query(request)
    with runtime(request).db.reader() as s:
        nodes = _load(s, _page(s, version, query), with_servers=query.with_servers)
    for node in nodes:
        if query.with_servers and node.servers is None and version >= V(2, 75):  # 2.75: servers always
            node.servers = []
    body: dict[str, Any] = {
        "hypervisors": [
            hypervisor_view(version, n, detail=detail, down_time=_down_time(request)) for n in nodes
        ]
    }
    if query.limit is not None:
        key = (lambda n: n.node.uuid) if version >= V(2, 53) else (lambda n: n.node.id)
        links = next_link(
            request, "os-hypervisors/detail" if detail else "os-hypervisors", nodes, key, query.limit
        )
        if links:
            body["hypervisors_links"] = links
    return body


# --- routes ------------------------------------------------------------------------------


@router.get("/os-hypervisors")
def list_hypervisors(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return _list(request, ctx, detail=False)


@router.get("/os-hypervisors/detail")
def list_hypervisors_detail(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _list(request, ctx, detail=True)


@router.get("/os-hypervisors/statistics")
def hypervisor_statistics(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    if request_version(request) >= V(2, 88):  # 2.88: removed
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-hypervisors:statistics")
    with runtime(request).db.reader() as s:
        nodes = _load(s, list(s.scalars(_nodes_query())), with_servers=False)
    totals = dict.fromkeys(
        (
            "vcpus",
            "memory_mb",
            "local_gb",
            "vcpus_used",
            "memory_mb_used",
            "local_gb_used",
            "free_ram_mb",
            "free_disk_gb",
            "current_workload",
            "running_vms",
            "disk_available_least",
        ),
        0,
    )
    for node in nodes:
        res = _resources(V(2, 1), node)
        for key in totals:
            totals[key] += int(res[key])
    return {"hypervisor_statistics": {"count": len(nodes), **totals}}


def _find_node(s: Session, version: Version, hypervisor_id: str) -> ComputeNode:
    if version >= V(2, 53):  # 2.53: uuid ids
        try:
            uuidlib.UUID(hypervisor_id)
        except ValueError:
            raise BadRequest(f"Invalid uuid {hypervisor_id}") from None
        node = s.scalars(_nodes_query().where(ComputeNode.uuid == hypervisor_id)).first()
    else:
        ident = int(hypervisor_id) if hypervisor_id.isdigit() and len(hypervisor_id) < 11 else None
        node = s.scalars(_nodes_query().where(ComputeNode.id == ident)).first() if ident is not None else None
    if node is None:
        raise NotFound(
            f"Hypervisor with ID '{hypervisor_id}' could not be found.", kind="ComputeHostNotFound"
        )
    return node


@router.get("/os-hypervisors/{hypervisor_id}")
def show_hypervisor(
    hypervisor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hypervisors:show")
    version = request_version(request)
    with_servers = False
    if version >= V(2, 53):  # 2.53: with_servers; nothing else
        params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
        validate(
            {
                "type": "object",
                "properties": {"with_servers": {"type": "string"}},
                "additionalProperties": False,
            },
            params,
            query=True,
        )
        with_servers = (
            _parse_bool("with_servers", params["with_servers"]) if "with_servers" in params else False
        )
    with runtime(request).db.reader() as s:
        node = _load(s, [_find_node(s, version, hypervisor_id)], with_servers=with_servers)[0]
    if with_servers and node.servers is None and version >= V(2, 75):  # 2.75: servers always
        node.servers = []
    return {"hypervisor": hypervisor_view(version, node, detail=True, down_time=_down_time(request))}


@router.get("/os-hypervisors/{hypervisor_id}/uptime")
def hypervisor_uptime(
    hypervisor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    if version >= V(2, 88):  # 2.88: removed (uptime is in show)
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-hypervisors:uptime")
    with runtime(request).db.reader() as s:
        node = _load(s, [_find_node(s, version, hypervisor_id)], with_servers=False)[0]
    body = hypervisor_view(version, node, detail=False, down_time=_down_time(request))
    body["uptime"] = _uptime(node)
    return {"hypervisor": body}


def _by_pattern(
    request: Request, ctx: RequestContext, pattern: str, *, rule: str, servers: bool
) -> dict[str, Any]:
    version = request_version(request)
    if version >= V(2, 53):  # 2.53: replaced by hypervisor_hostname_pattern
        raise NotFound("The resource could not be found.")
    ctx.require_admin(f"os_compute_api:os-hypervisors:{rule}")
    with runtime(request).db.reader() as s:
        nodes = _load(s, _page(s, version, ListQuery(pattern=pattern)), with_servers=servers)
    return {
        "hypervisors": [
            hypervisor_view(version, n, detail=False, down_time=_down_time(request)) for n in nodes
        ]
    }


@router.get("/os-hypervisors/{pattern}/search")
def search_hypervisors(
    pattern: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _by_pattern(request, ctx, pattern, rule="search", servers=False)


@router.get("/os-hypervisors/{pattern}/servers")
def hypervisor_servers(
    pattern: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return _by_pattern(request, ctx, pattern, rule="servers", servers=True)

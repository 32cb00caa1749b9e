"""Hypervisors (admin, §6.12): ``/os-hypervisors`` over compute nodes, their services and
placement usage.

Microversions: 2.28 ``cpu_info`` is an object (a JSON string before). 2.33 ``limit`` /
``marker`` paging with ``hypervisors_links``. 2.53 ids are compute node uuids (integers
before), ``hypervisor_hostname_pattern`` and ``with_servers`` replace ``/{pattern}/search``
and ``/{pattern}/servers`` (gone from 2.53), unknown query parameters are refused. 2.75
``with_servers`` always gives ``servers`` (``[]`` when none). 2.88 drops the resource
fields, ``/statistics`` and ``/{id}/uptime``; ``uptime`` moves into detail and show.
The gates live in ``schemas.hypervisors`` (request, routes) and ``views.hypervisors``
(answer); the reads in ``services.hypervisors``. The handlers only pass the version along.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import next_link, request_context, runtime, validate
from novalite.api.microversion import request_version
from novalite.compute_api.schemas import hypervisors as schemas
from novalite.compute_api.views import hypervisors as views
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.services import hypervisors as service
from novalite.services.hypervisors import ListQuery

router = APIRouter(prefix="/compute/v2.1")

MAX_LIMIT = 1000
_TRUE = {"true", "1", "on", "yes", "y", "t"}
_BOOL_WORDS = sorted(_TRUE | {"false", "0", "off", "no", "n", "f"})


# --- query parsing -----------------------------------------------------------------------


def _parse_bool(name: str, raw: str) -> bool:
    if raw.strip().lower() not in _BOOL_WORDS:
        raise BadRequest(
            f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not one of {_BOOL_WORDS}"
        )
    return raw.strip().lower() in _TRUE


def _with_servers(params: dict[str, str]) -> bool:
    return _parse_bool("with_servers", params["with_servers"]) if "with_servers" in params else False


def list_query(request: Request) -> ListQuery:
    schema = schemas.list_query_schema(request_version(request))
    params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
    if schema is None:
        return ListQuery()
    validate(schema, params, query=True)
    limit = min(int(params["limit"]), MAX_LIMIT) if "limit" in params else None
    query = ListQuery(
        limit=limit,
        marker=params.get("marker"),
        pattern=params.get("hypervisor_hostname_pattern"),
        with_servers=_with_servers(params),
    )
    if query.pattern is not None and (query.limit is not None or query.marker is not None):
        raise BadRequest(
            "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."
        )
    return query


def _show_with_servers(request: Request) -> bool:
    schema = schemas.show_query_schema(request_version(request))
    if schema is None:
        return False
    params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
    validate(schema, params, query=True)
    return _with_servers(params)


def _down_time(request: Request) -> int:
    return int(runtime(request).settings.service_down_time)


def _list(request: Request, ctx: RequestContext, *, detail: bool) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hypervisors:list" + ("-detail" if detail else ""))
    version = request_version(request)
    query = list_query(request)
    with runtime(request).db.reader() as s:
        page = service.page(s, query, uuid_ids=schemas.uuid_ids(version))
        nodes = service.load(s, page, with_servers=query.with_servers)
    down_time = _down_time(request)
    body: dict[str, Any] = {
        "hypervisors": [
            views.hypervisor_view(
                version, n, detail=detail, down_time=down_time, with_servers=query.with_servers
            )
            for n in nodes
        ]
    }
    if query.limit is not None:
        links = next_link(
            request,
            "os-hypervisors/detail" if detail else "os-hypervisors",
            nodes,
            lambda n: views.page_marker(version, n),
            query.limit,
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
    if not schemas.statistics_route(request_version(request)):  # 2.88: removed
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-hypervisors:statistics")
    with runtime(request).db.reader() as s:
        nodes = service.load(s, service.all_nodes(s), with_servers=False)
    return views.statistics_view(nodes)


@router.get("/os-hypervisors/{hypervisor_id}")
def show_hypervisor(
    hypervisor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-hypervisors:show")
    version = request_version(request)
    with_servers = _show_with_servers(request)
    schemas.check_hypervisor_id(version, hypervisor_id)  # 2.53: uuid ids
    with runtime(request).db.reader() as s:
        found = service.get_node(s, hypervisor_id, uuid_ids=schemas.uuid_ids(version))
        node = service.load(s, [found], with_servers=with_servers)[0]
    return {
        "hypervisor": views.hypervisor_view(
            version, node, detail=True, down_time=_down_time(request), with_servers=with_servers
        )
    }


@router.get("/os-hypervisors/{hypervisor_id}/uptime")
def hypervisor_uptime(
    hypervisor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    if not schemas.uptime_route(version):  # 2.88: removed (uptime is in show)
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-hypervisors:uptime")
    schemas.check_hypervisor_id(version, hypervisor_id)  # 2.53: uuid ids
    with runtime(request).db.reader() as s:
        found = service.get_node(s, hypervisor_id, uuid_ids=schemas.uuid_ids(version))
        node = service.load(s, [found], with_servers=False)[0]
    return views.uptime_view(version, node, down_time=_down_time(request))


def _by_pattern(
    request: Request, ctx: RequestContext, pattern: str, *, rule: str, servers: bool
) -> dict[str, Any]:
    version = request_version(request)
    if not schemas.pattern_routes(version):  # 2.53: replaced by hypervisor_hostname_pattern
        raise NotFound("The resource could not be found.")
    ctx.require_admin(f"os_compute_api:os-hypervisors:{rule}")
    with runtime(request).db.reader() as s:
        page = service.page(s, ListQuery(pattern=pattern), uuid_ids=schemas.uuid_ids(version))
        nodes = service.load(s, page, with_servers=servers)
    return {
        "hypervisors": [
            views.hypervisor_view(version, n, detail=False, down_time=_down_time(request)) for n in nodes
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

"""/servers: create (the pipeline), list and detail with filters and paging, show, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import (
    READ_POOL,
    in_thread,
    json_body,
    next_link,
    parse_limit,
    request_context,
    runtime,
    validate,
    warm_fast_validation,
)
from novalite.api.microversion import MAX_VERSION, V, request_version
from novalite.batching import CallBatcher
from novalite.compute_api.schemas import servers as schemas
from novalite.compute_api.views import servers as views
from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.runtime import Runtime
from novalite.services import server_queries as queries
from novalite.services import server_updates as updates
from novalite.services.create_server.pipeline import create_servers
from novalite.services.create_server.request import (
    CreateServerRequest,
    CreateServerResult,
)

router = APIRouter(prefix="/compute/v2.1")


def _create_batch(items: list[tuple[Runtime, CreateServerRequest]]) -> list[CreateServerResult | Exception]:
    """``create_servers`` over the creates queued together, per runtime (a process serves one;
    tests run several)."""
    outcomes: list[CreateServerResult | Exception] = [RuntimeError("not processed")] * len(items)
    by_runtime: dict[int, tuple[Runtime, list[int]]] = {}
    for i, (rt, _req) in enumerate(items):
        by_runtime.setdefault(id(rt), (rt, []))[1].append(i)
    for rt, indexes in by_runtime.values():
        for i, outcome in zip(indexes, create_servers(rt, [items[i][1] for i in indexes]), strict=True):
            outcomes[i] = outcome
    return outcomes


# POST /servers' blocking part (checks, store, hand-off) for the creates that arrive together
CREATES: CallBatcher[tuple[Runtime, CreateServerRequest], CreateServerResult] = CallBatcher(
    _create_batch, name="api-create"
)


def warm_up() -> None:
    """Compile POST /servers' fast validation (``api.common.validate``) for the microversions
    clients send most: 2.1 (the openstack CLI's default), 2.37 (the first that requires
    ``networks``) and the newest (openstacksdk negotiates it). Others compile on first use."""
    warm_fast_validation([schemas.create_schema(v) for v in (V(2, 1), V(2, 37), MAX_VERSION)])


async def create_direct(request: Request) -> Response:
    """POST /servers through ``api.hot_routes`` (FastAPI's layers skipped; same answers)."""
    return await create(request, await request_context(request))


@router.post("/servers", status_code=202)
async def create(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    version = request_version(request)
    body = await json_body(request)
    validate(schemas.create_schema(version), body, fast=True)
    req = CreateServerRequest.from_body(body, ctx, version)
    result = await CREATES.submit((runtime(request), req))
    if req.return_reservation_id:
        return JSONResponse({"reservation_id": result.reservation_id}, status_code=202)
    out = views.create_response(
        request,
        result.first_uuid,
        admin_pass=result.admin_pass,
        auto_disk_config=result.auto_disk_config,
        security_groups=list(result.security_groups_echo),
    )
    return JSONResponse(out, status_code=202, headers={"Location": out["server"]["links"][0]["href"]})


# -- list ------------------------------------------------------------------------------------------


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def _check_known(params: dict[str, list[str]], request: Request) -> None:
    if not schemas.strict_list_query(request_version(request)):
        return
    unknown = sorted(set(params) - schemas.LIST_PARAMS_BASE)
    if unknown:
        raise BadRequest(
            f"Invalid input for query parameters {unknown[0]}. Value: {params[unknown[0]][0]}. "
            f"Additional properties are not allowed ('{unknown[0]}' was unexpected)"
        )


def build_list_query(request: Request, ctx: RequestContext) -> queries.ListQuery:
    """Query parameters -> the list query (non-admins' disallowed filters are dropped, as Nova does)."""
    version = request_version(request)
    p = _params(request)
    _check_known(p, request)
    limit, marker = parse_limit(request)
    return queries.build_list_query(
        ctx,
        p,
        limit=limit,
        marker=marker,
        non_admin_filters=() if ctx.is_admin else schemas.non_admin_filters(version),
        strict_status=schemas.status_filter_strict(version),  # 2.38
    )


def _down_time(request: Request, ctx: RequestContext) -> int | None:
    """Host status is an admin-only field: only then are the compute services read."""
    return int(runtime(request).settings.service_down_time) if ctx.is_admin else None


def _list(request: Request, ctx: RequestContext, *, detail: bool) -> dict[str, Any]:
    q = build_list_query(request, ctx)
    version = request_version(request)
    items: list[dict[str, Any]]
    if detail:
        with runtime(request).db.reader() as s:
            rows = queries.run_list(s, q)
            extras = queries.load_extras(
                s,
                rows,
                down_time=_down_time(request, ctx),
                scheduler_hints=views.shows_scheduler_hints(version),
            )
        items = [views.server_detail(request, i, extras[i.uuid], version=version, ctx=ctx) for i in rows]
    else:
        with runtime(request).db.reader() as s:
            summary_rows = queries.run_summary_list(s, q)
        items = views.server_summaries(request, summary_rows)
    out: dict[str, Any] = {"servers": items}
    links = next_link(request, "servers/detail" if detail else "servers", items, lambda x: x["id"], q.limit)
    if links:
        out["servers_links"] = links
    return out


# The polled reads (server lists, one server: clients wait for ACTIVE with them) are coroutines
# that hand their database work to a thread themselves: for a plain ``def`` route FastAPI takes
# two trips through anyio's thread pool, the route and then the validation of its answer.
@router.get("/servers")
async def index(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return await in_thread(_list, request, ctx, detail=False, pool=READ_POOL)


@router.get("/servers/detail")
async def detail(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return await in_thread(_list, request, ctx, detail=True, pool=READ_POOL)


# -- one server ------------------------------------------------------------------------------------


def show_server(request: Request, ctx: RequestContext, instance_uuid: str) -> dict[str, Any]:
    """The full view of one server (shared by show, update and actions that answer with it)."""
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, instance_uuid)
        extras = queries.load_extras(s, [inst], server_groups=True, down_time=_down_time(request, ctx))[
            inst.uuid
        ]
    return {
        "server": views.server_detail(
            request, inst, extras, version=request_version(request), ctx=ctx, show=True
        )
    }


@router.get("/servers/{server_id}")
async def show(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return await in_thread(show_server, request, ctx, server_id, pool=READ_POOL)


@router.put("/servers/{server_id}")
async def update(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(schemas.update_schema(request_version(request)), body)

    def work() -> dict[str, Any]:
        updates.update_server(runtime(request).db, ctx, server_id, body["server"])
        with runtime(request).db.reader() as s:
            inst = queries.get_instance(s, ctx, server_id)
            extras = queries.load_extras(s, [inst], server_groups=True)[inst.uuid]
        return {
            "server": views.server_update_view(
                request, inst, extras, version=request_version(request), ctx=ctx
            )
        }

    return await run_in_threadpool(work)


@router.delete("/servers/{server_id}", status_code=204)
def delete(server_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """204 in any state (BUILD included); 409 when locked and the caller is not an admin."""
    updates.delete_server(runtime(request), ctx, server_id)
    return Response(status_code=204)

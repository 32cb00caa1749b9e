"""The list, show, create, update and delete handling that Neutron's resources (networks, subnets,
ports, routers, floating IPs, security groups) share: a route names its ``Resource`` and calls one
of these; what differs between resources is in the ``Resource`` (its loader, its view, ...)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.errors import NotFound
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import Row, create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.views import Related, load_related


@dataclass(frozen=True)
class Resource(Generic[Row]):
    """One Neutron resource: ``member`` is its body key ("network"), ``collection`` its list key
    ("networks"); ``view`` renders a row (with the related rows of a list, or None)."""

    member: str
    collection: str
    visible: Callable[[Session, RequestContext], list[Row]]
    get: Callable[[Session, RequestContext, str], Row]
    view: Callable[[Session, RequestContext, Row, Related | None], dict[str, Any]]
    not_found: Callable[[str], NotFound]
    create: Callable[[Session, RequestContext, dict[str, Any]], Row] | None = None
    update: Callable[[Session, RequestContext, Row, dict[str, Any]], None] | None = None
    delete: Callable[[Session, RequestContext, Row], None] | None = None
    related_kind: str = ""
    list_writes: bool = False  # listing may write (a project's default security group on first use)


def list_members(request: Request, ctx: RequestContext, res: Resource[Any]) -> dict[str, Any]:
    db = runtime(request).db
    with db.session() if res.list_writes else db.reader() as s:
        found = res.visible(s, ctx)
        rel = load_related(s, [row.id for row in found], kind=res.related_kind)
        items = [res.view(s, ctx, row, rel) for row in found]
    return list_response(request, res.collection, items, not_found=res.not_found)


def show_member(request: Request, ctx: RequestContext, res: Resource[Any], member_id: str) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        row = res.get(s, ctx, member_id)
        return {res.member: fields_of(request, res.view(s, ctx, row, None))}


async def create_members(request: Request, ctx: RequestContext, res: Resource[Any]) -> JSONResponse:
    """POST of one ``{member: {...}}`` or many ``{collection: [...]}``: 201."""
    assert res.create is not None
    create = res.create
    items, bulk = check_create(res.member, await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member=res.member,
        create=lambda s, fields: create(s, ctx, fields),
        view=lambda s, row: res.view(s, ctx, row, None),
    )


def _update(
    request: Request, ctx: RequestContext, res: Resource[Any], member_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    assert res.update is not None
    with runtime(request).db.session() as s:
        row = res.get(s, ctx, member_id)
        res.update(s, ctx, row, changes)
        s.flush()
        return {res.member: res.view(s, ctx, row, None)}


async def update_member(
    request: Request, ctx: RequestContext, res: Resource[Any], member_id: str
) -> dict[str, Any]:
    changes = check_body(res.member, await json_body(request), update=True)
    return await run_in_threadpool(_update, request, ctx, res, member_id, changes)


def delete_member(request: Request, ctx: RequestContext, res: Resource[Any], member_id: str) -> Response:
    assert res.delete is not None
    with runtime(request).db.session() as s:
        res.delete(s, ctx, res.get(s, ctx, member_id))
    return Response(status_code=204)


CRUD = ("list", "show", "create", "update", "delete")


def _named_param(endpoint: Callable[..., Any], param: str) -> Callable[..., Any]:
    """``endpoint`` with its ``member_id`` parameter renamed ``param``: the route's template keeps
    the parameter name the policy table knows it by (``/networks/{network_id}``)."""
    sig = inspect.signature(endpoint)
    params = [p.replace(name=param) if p.name == "member_id" else p for p in sig.parameters.values()]

    if inspect.iscoroutinefunction(endpoint):

        async def renamed_async(**kwargs: Any) -> Any:
            return await endpoint(member_id=kwargs.pop(param), **kwargs)

        renamed: Callable[..., Any] = renamed_async
    else:

        def renamed_sync(**kwargs: Any) -> Any:
            return endpoint(member_id=kwargs.pop(param), **kwargs)

        renamed = renamed_sync
    renamed.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return renamed


def add_member_routes(
    router: APIRouter, path: str, res: Resource[Any], param: str, ops: tuple[str, ...] = CRUD
) -> None:
    """Register Neutron's five routes of one resource on ``router``: ``GET path`` (list),
    ``GET path/{param}``, ``POST path``, ``PUT path/{param}`` and ``DELETE path/{param}`` (204),
    or those of them named in ``ops``; a resource with a route of its own for one operation leaves
    it out."""
    member_path = path + "/{" + param + "}"

    def list_(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
        return list_members(request, ctx, res)

    def show(
        member_id: str, request: Request, ctx: RequestContext = Depends(request_context)
    ) -> dict[str, Any]:
        return show_member(request, ctx, res, member_id)

    async def create(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
        return await create_members(request, ctx, res)

    async def update(
        member_id: str, request: Request, ctx: RequestContext = Depends(request_context)
    ) -> dict[str, Any]:
        return await update_member(request, ctx, res, member_id)

    def delete(member_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
        return delete_member(request, ctx, res, member_id)

    routes: dict[str, tuple[str, str, Callable[..., Any], int | None]] = {
        "list": ("GET", path, list_, None),
        "show": ("GET", member_path, _named_param(show, param), None),
        "create": ("POST", path, create, None),
        "update": ("PUT", member_path, _named_param(update, param), None),
        "delete": ("DELETE", member_path, _named_param(delete, param), 204),
    }
    for op in ops:
        method, route_path, endpoint, status = routes[op]
        router.add_api_route(
            route_path, endpoint, methods=[method], name=f"{op}_{res.member}", status_code=status
        )

"""The list, show, create, update and delete handling that Neutron's resources (networks, subnets,
ports, routers, floating IPs, security groups) share: a route names its ``Resource`` and calls one
of these; what differs between resources is in the ``Resource`` (its loader, its view, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime
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

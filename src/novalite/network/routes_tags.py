"""/network/v2.0/{networks|subnets|ports|security-groups}/{id}/tags[/{tag}] (standard-attr-tag)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.network import floating_ips, networks, ports, routers, security_groups, tags
from novalite.network.networks import require_owner

router = APIRouter(prefix="/network/v2.0")
Getter = Callable[[Session, RequestContext, str], Any]
GETTERS: dict[str, Getter] = {
    "networks": networks.get_network,
    "subnets": networks.get_subnet,
    "ports": ports.get_port,
    "security-groups": security_groups.get_group,
    "routers": routers.get_router,
    "floatingips": floating_ips.get_floating_ip,
}


def _resource(s: Session, ctx: RequestContext, collection: str, resource_id: str, *, write: bool) -> Any:
    getter = GETTERS.get(collection)
    if getter is None:
        raise NotFound("The resource could not be found.", kind="HTTPNotFound")
    row = getter(s, ctx, resource_id)
    if write:
        require_owner(ctx, row.project_id, f"rule:update_{collection.rstrip('s').replace('-', '_')}")
    return row


@router.get("/{collection}/{resource_id}/tags")
def list_tags(
    collection: str, resource_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        _resource(s, ctx, collection, resource_id, write=False)
        return {"tags": tags.tags_of(s, resource_id)}


def _replace(
    request: Request, ctx: RequestContext, collection: str, resource_id: str, wanted: list[Any]
) -> Any:
    with runtime(request).db.session() as s:
        _resource(s, ctx, collection, resource_id, write=True)
        return {"tags": tags.replace(s, resource_id, wanted)}


@router.put("/{collection}/{resource_id}/tags")
async def replace_tags(
    collection: str, resource_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list) or len(body["tags"]) > 1000:
        raise BadRequest("Invalid input for tags. Reason: a list of tags is required.", kind="InvalidInput")
    return await run_in_threadpool(_replace, request, ctx, collection, resource_id, body["tags"])  # type: ignore[no-any-return]


@router.delete("/{collection}/{resource_id}/tags", status_code=204)
def clear_tags(
    collection: str, resource_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        _resource(s, ctx, collection, resource_id, write=True)
        tags.clear(s, resource_id)
    return Response(status_code=204)


@router.get("/{collection}/{resource_id}/tags/{tag}", status_code=204)
def check_tag(
    collection: str,
    resource_id: str,
    tag: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    with runtime(request).db.reader() as s:
        _resource(s, ctx, collection, resource_id, write=False)
        if tag not in tags.tags_of(s, resource_id):
            raise NotFound(f"Tag {tag} could not be found for resource {resource_id}.", kind="TagNotFound")
    return Response(status_code=204)


@router.put("/{collection}/{resource_id}/tags/{tag}")
def add_tag(
    collection: str,
    resource_id: str,
    tag: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    with runtime(request).db.session() as s:
        _resource(s, ctx, collection, resource_id, write=True)
        tags.add(s, resource_id, tag)
    return Response(status_code=201)  # Neutron answers 201 whether or not the tag was there


@router.delete("/{collection}/{resource_id}/tags/{tag}", status_code=204)
def remove_tag(
    collection: str,
    resource_id: str,
    tag: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
) -> Response:
    with runtime(request).db.session() as s:
        _resource(s, ctx, collection, resource_id, write=True)
        if not tags.remove(s, resource_id, tag):
            raise NotFound(f"Tag {tag} could not be found for resource {resource_id}.", kind="TagNotFound")
    return Response(status_code=204)

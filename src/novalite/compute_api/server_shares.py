"""``/servers/{id}/shares`` (2.97): Manila shares attached to a server, over virtiofs.

novalite has no shared file system service and no host offers virtiofs (no host reports the
``COMPUTE_STORAGE_VIRTIO_FS`` trait), so no server ever has a share: the list is empty, a share
is not found (404), and an attach that passes Nova's checks (the body, a stopped server) ends
where Nova's ends on such hosts: 409 "not configured correctly". Below 2.97 the routes are 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.services import server_queries as queries
from novalite.services.server_actions import invalid_state

router = APIRouter(prefix="/compute/v2.1")
_BASE = "/servers/{server_id}/shares"

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "share": {
            "type": "object",
            "properties": {
                "share_id": {"type": "string", "format": "uuid"},
                "tag": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-]*$"},
            },
            "required": ["share_id"],
            "additionalProperties": False,
        }
    },
    "required": ["share"],
    "additionalProperties": False,
}


def shares_served(version: Version) -> bool:
    """2.97: the shares API."""
    return version >= V(2, 97)


def _gate(request: Request) -> None:
    if not shares_served(request_version(request)):
        raise NotFound("The resource could not be found.")
    # every shares GET refuses query parameters (Nova's schemas: no properties, none allowed)
    if request.method == "GET" and request.query_params:
        key, value = request.query_params.multi_items()[0]
        raise BadRequest(
            f"Invalid input for query parameters {key}. Value: {value}. "
            f"Additional properties are not allowed ('{key}' was unexpected)"
        )


def _server(request: Request, ctx: RequestContext, server_id: str) -> Any:
    with runtime(request).db.reader() as s:
        return queries.get_instance(s, ctx, server_id)


@router.get(_BASE)
def list_shares(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _gate(request)
    _server(request, ctx, server_id)
    return {"shares": []}


@router.get(_BASE + "/{share_id}")
def show_share(
    server_id: str, share_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _gate(request)
    _server(request, ctx, server_id)
    raise NotFound(f"Share {share_id} could not be found.", kind="ShareNotFound")


@router.post(_BASE, status_code=201)
async def create_share(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _gate(request)
    body = await json_body(request)
    validate(CREATE_SCHEMA, body)
    inst = _server(request, ctx, server_id)
    if inst.vm_state not in ("stopped", "error"):
        raise invalid_state("create share", inst.uuid, "vm_state", inst.vm_state)
    raise Conflict(
        "Feature not supported because either compute or instance are not configured correctly.",
        kind="ForbiddenSharesNotConfiguredCorrectly",
    )


@router.delete(_BASE + "/{share_id}", status_code=200)
def delete_share(
    server_id: str, share_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> None:
    _gate(request)
    inst = _server(request, ctx, server_id)
    if inst.vm_state not in ("stopped", "error"):
        raise invalid_state("delete share", inst.uuid, "vm_state", inst.vm_state)
    raise NotFound(f"Share {share_id} could not be found.", kind="ShareNotFound")

"""Server sub-resources (§6.11): metadata, tags (2.26), ips, os-server-password; plus (from
``server_instance_actions``) os-instance-actions and the admin os-server-external-events.
The reads and writes are ``services.server_metadata``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import compute_links, json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api import server_instance_actions as instance_actions
from novalite.compute_api.network_proxies import group_view
from novalite.compute_api.schemas.servers import METADATA, TAG
from novalite.context import RequestContext
from novalite.domain.states import VmState
from novalite.errors import BadRequest, NotFound
from novalite.services import network_proxies as proxies
from novalite.services import server_metadata as service
from novalite.services import server_queries as queries
from novalite.services.server_metadata import MAX_TAGS

router = APIRouter(prefix="/compute/v2.1")

_SERVER = "/servers/{server_id}"


# -- metadata --------------------------------------------------------------------------------------

METADATA_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"metadata": METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}
META_ITEM_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"meta": {**METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"],
    "additionalProperties": False,
}


def _write_metadata(
    request: Request, ctx: RequestContext, server_id: str, new: dict[str, str], *, replace: bool
) -> dict[str, str]:
    return service.write_metadata(runtime(request).db, ctx, server_id, new, replace=replace)


@router.get(_SERVER + "/metadata")
def list_metadata(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return {"metadata": service.server_metadata(runtime(request).db, ctx, server_id)}


@router.post(_SERVER + "/metadata")
async def merge_metadata(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(METADATA_BODY, body)
    merged = await run_in_threadpool(
        _write_metadata, request, ctx, server_id, body["metadata"], replace=False
    )
    return {"metadata": merged}


@router.put(_SERVER + "/metadata")
async def replace_metadata(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(METADATA_BODY, body)
    merged = await run_in_threadpool(_write_metadata, request, ctx, server_id, body["metadata"], replace=True)
    return {"metadata": merged}


@router.get(_SERVER + "/metadata/{key}")
def show_metadata_item(
    server_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    meta = service.server_metadata(runtime(request).db, ctx, server_id)
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return {"meta": {key: meta[key]}}


@router.put(_SERVER + "/metadata/{key}")
async def set_metadata_item(
    server_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    if isinstance(body, dict) and isinstance(body.get("meta"), dict) and len(body["meta"]) > 1:
        raise BadRequest("Request body contains too many items")
    validate(META_ITEM_BODY, body)
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    await run_in_threadpool(_write_metadata, request, ctx, server_id, body["meta"], replace=False)
    return {"meta": body["meta"]}


@router.delete(_SERVER + "/metadata/{key}", status_code=204)
def delete_metadata_item(
    server_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    service.delete_metadata_item(runtime(request).db, ctx, server_id, key)
    return Response(status_code=204)


# -- tags (2.26) -----------------------------------------------------------------------------------

TAGS_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"tags": {"type": "array", "items": TAG, "maxItems": MAX_TAGS}},
    "required": ["tags"],
    "additionalProperties": False,
}


def _require_tags_version(request: Request) -> None:
    if request_version(request) < V(2, 26):  # 2.26: server tags
        raise NotFound("The resource could not be found.")


def _check_tag(tag: str) -> None:
    if not tag or len(tag) > 60 or "," in tag or "/" in tag:
        raise BadRequest(
            f"Invalid input for field/attribute tag. Value: {tag}. Tag must be 1-60 characters "
            "without ',' or '/'"
        )


@router.get(_SERVER + "/tags")
def list_tags(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _require_tags_version(request)
    return {"tags": service.server_tags(runtime(request).db, ctx, server_id)}


@router.put(_SERVER + "/tags")
async def replace_tags(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _require_tags_version(request)
    body = await json_body(request)
    validate(TAGS_BODY, body)
    tags = list(dict.fromkeys(body["tags"]))
    await run_in_threadpool(service.replace_tags, runtime(request).db, ctx, server_id, tags)
    return {"tags": sorted(tags)}


@router.delete(_SERVER + "/tags", status_code=204)
def delete_tags(server_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    _require_tags_version(request)
    service.delete_tags(runtime(request).db, ctx, server_id)
    return Response(status_code=204)


@router.get(_SERVER + "/tags/{tag}", status_code=204)
def check_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    if tag not in service.server_tags(runtime(request).db, ctx, server_id):
        raise service.tag_missing(server_id, tag)
    return Response(status_code=204)


@router.put(_SERVER + "/tags/{tag}")
def add_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    _check_tag(tag)
    if not service.add_tag(runtime(request).db, ctx, server_id, tag):
        return Response(status_code=204)
    # percent-encoded: a header is Latin-1, and a tag may be any text but ',' and '/'
    location = compute_links(request, "servers", server_id)[0]["href"] + f"/tags/{quote(tag, safe='')}"
    return Response(status_code=201, headers={"Location": location})


@router.delete(_SERVER + "/tags/{tag}", status_code=204)
def delete_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    service.delete_tag(runtime(request).db, ctx, server_id, tag)
    return Response(status_code=204)


# -- ips -------------------------------------------------------------------------------------------


def _addresses(request: Request, ctx: RequestContext, server_id: str) -> dict[str, list[dict[str, Any]]]:
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        extras = queries.load_extras(s, [inst])[inst.uuid]
    if inst.vm_state == VmState.BUILDING:
        return {}
    return {
        net: [{"version": a["version"], "addr": a["addr"]} for a in addrs]
        for net, addrs in extras.addresses.items()
    }


@router.get(_SERVER + "/ips")
def list_ips(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    return {"addresses": _addresses(request, ctx, server_id)}


@router.get(_SERVER + "/ips/{network}")
def show_ips(
    server_id: str, network: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    addresses = _addresses(request, ctx, server_id)
    if network not in addresses:
        raise NotFound("Instance is not a member of specified network")
    return {network: addresses[network]}


# -- os-server-password ----------------------------------------------------------------------------


@router.get(_SERVER + "/os-server-password")
def get_password(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The encrypted password the guest posted (system metadata), or ``""``."""
    return {"password": service.password(runtime(request).db, ctx, server_id)}


@router.delete(_SERVER + "/os-server-password", status_code=204)
def clear_password(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    service.clear_password(runtime(request).db, ctx, server_id)
    return Response(status_code=204)


# -- os-security-groups ----------------------------------------------------------------------------


@router.get(_SERVER + "/os-security-groups")
def server_security_groups(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The groups on the server's ports (``[]`` without a port). Unlike the ``os-security-groups``
    proxy, this one is not removed at 2.36: Nova serves it at every microversion."""
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        groups = proxies.server_groups(s, inst.uuid)
        return {"security_groups": [group_view(g, proxies.ingress_rules(s, g)) for g in groups]}


# os-instance-actions and os-server-external-events live in their own module
router.include_router(instance_actions.router)

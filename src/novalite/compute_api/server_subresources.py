"""Server sub-resources (§6.11): metadata, tags (2.26), ips, os-server-password; plus (from
``server_instance_actions``) os-instance-actions and the admin os-server-external-events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import compute_links, json_body, request_context, runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api import server_instance_actions as instance_actions
from novalite.compute_api.schemas.servers import METADATA, TAG
from novalite.compute_api.server_actions import check_not_locked
from novalite.context import RequestContext
from novalite.db.models.compute import (
    Instance,
    InstanceMetadata,
    InstanceTag,
)
from novalite.domain.states import VmState
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.services import server_queries as queries

router = APIRouter(prefix="/compute/v2.1")

WRITABLE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)
MAX_TAGS = 50
_SERVER = "/servers/{server_id}"


def _writable(ctx: RequestContext, inst: Instance, action: str) -> None:
    """Metadata and tag writes: not while building/erroring (409), not when locked (409)."""
    check_not_locked(ctx, inst)
    if inst.vm_state not in WRITABLE_STATES:
        raise Conflict(
            f"Cannot '{action}' instance {inst.uuid} while it is in vm_state {inst.vm_state}",
            kind="InstanceInvalidState",
        )


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


def _metadata(s: Session, instance_uuid: str) -> dict[str, str]:
    rows = s.scalars(select(InstanceMetadata).where(InstanceMetadata.instance_uuid == instance_uuid))
    return {r.key: r.value for r in rows}


def _write_metadata(
    request: Request, ctx: RequestContext, server_id: str, new: dict[str, str], *, replace: bool
) -> dict[str, str]:
    """Merge (POST, PUT of one key) or replace (PUT) under the metadata quota (403)."""
    from novalite.services import quotas

    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        _writable(ctx, inst, "update_metadata")
        current = {} if replace else _metadata(s, inst.uuid)
        merged = {**current, **new}
        quotas.check_metadata_quota(s, inst.project_id, merged)
        s.execute(delete(InstanceMetadata).where(InstanceMetadata.instance_uuid == inst.uuid))
        s.add_all(InstanceMetadata(instance_uuid=inst.uuid, key=k, value=v) for k, v in merged.items())
        return merged


@router.get(_SERVER + "/metadata")
def list_metadata(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        return {"metadata": _metadata(s, inst.uuid)}


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
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        meta = _metadata(s, inst.uuid)
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
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        if key not in _metadata(s, inst.uuid):
            raise NotFound("Metadata item was not found")
        _writable(ctx, inst, "delete_instance_metadata")
        s.execute(
            delete(InstanceMetadata).where(
                InstanceMetadata.instance_uuid == inst.uuid, InstanceMetadata.key == key
            )
        )
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


def _tags(s: Session, instance_uuid: str) -> list[str]:
    return list(
        s.scalars(
            select(InstanceTag.tag)
            .where(InstanceTag.instance_uuid == instance_uuid)
            .order_by(InstanceTag.tag)
        )
    )


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
    with runtime(request).db.reader() as s:
        return {"tags": _tags(s, queries.get_instance(s, ctx, server_id).uuid)}


@router.put(_SERVER + "/tags")
async def replace_tags(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _require_tags_version(request)
    body = await json_body(request)
    validate(TAGS_BODY, body)
    tags = list(dict.fromkeys(body["tags"]))

    def work() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            inst = queries.get_instance(s, ctx, server_id)
            _writable(ctx, inst, "update tags")
            s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
            s.add_all(InstanceTag(instance_uuid=inst.uuid, tag=t) for t in tags)
        return {"tags": sorted(tags)}

    return await run_in_threadpool(work)


@router.delete(_SERVER + "/tags", status_code=204)
def delete_tags(server_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    _require_tags_version(request)
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        _writable(ctx, inst, "delete tags")
        s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
    return Response(status_code=204)


def _tag_missing(server_id: str, tag: str) -> NotFound:
    return NotFound(f"Instance {server_id} has no tag '{tag}'", kind="InstanceTagNotFound")


@router.get(_SERVER + "/tags/{tag}", status_code=204)
def check_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    with runtime(request).db.reader() as s:
        if tag not in _tags(s, queries.get_instance(s, ctx, server_id).uuid):
            raise _tag_missing(server_id, tag)
    return Response(status_code=204)


@router.put(_SERVER + "/tags/{tag}")
def add_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    _check_tag(tag)
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        _writable(ctx, inst, "update tag")
        tags = _tags(s, inst.uuid)
        if tag in tags:
            return Response(status_code=204)
        if len(tags) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        s.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
    location = compute_links(request, "servers", server_id)[0]["href"] + f"/tags/{tag}"
    return Response(status_code=201, headers={"Location": location})


@router.delete(_SERVER + "/tags/{tag}", status_code=204)
def delete_tag(
    server_id: str, tag: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _require_tags_version(request)
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        _writable(ctx, inst, "delete tag")
        if tag not in _tags(s, inst.uuid):
            raise _tag_missing(server_id, tag)
        s.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid, InstanceTag.tag == tag))
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

PASSWORD_KEY = "password"


@router.get(_SERVER + "/os-server-password")
def get_password(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The encrypted password the guest posted (system metadata), or ``""``."""
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        return {"password": (inst.system_metadata or {}).get(PASSWORD_KEY, "")}


@router.delete(_SERVER + "/os-server-password", status_code=204)
def clear_password(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        inst = queries.get_instance(s, ctx, server_id)
        inst.system_metadata = {k: v for k, v in (inst.system_metadata or {}).items() if k != PASSWORD_KEY}
    return Response(status_code=204)


# os-instance-actions and os-server-external-events live in their own module
router.include_router(instance_actions.router)

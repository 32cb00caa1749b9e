"""Key pairs (§6.6): ``/os-keypairs`` with Nova's per-microversion bodies and status codes.

2.2: ``type`` (ssh | x509), POST answers 201 and DELETE 204 (before: 200 and 202).
2.10: ``user_id`` (an admin may act for another user). 2.35: ``limit``/``marker`` paging
by name with ``keypairs_links``. 2.92: names may contain ``@`` and ``.``, ``public_key`` is
required (no server-side generation).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import (
    json_body,
    next_link,
    parse_limit,
    reject_nul,
    request_context,
    runtime,
    validate,
)
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.db.models.catalog import KeyPair
from novalite.services import keypairs as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

_NAME_20 = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9 _-]+$"}
_NAME_292 = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9 @._-]+$"}


def create_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"name": _NAME_20, "public_key": {"type": "string"}}
    required = ["name"]
    if version >= V(2, 2):  # 2.2: type
        props["type"] = {"type": "string", "enum": ["ssh", "x509"]}
    if version >= V(2, 10):  # 2.10: user_id
        props["user_id"] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\x00]*$"}
    if version >= V(2, 92):  # 2.92: @ and . in names; import only
        props["name"] = _NAME_292
        required.append("public_key")
    keypair = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {"keypair": keypair},
        "required": ["keypair"],
        "additionalProperties": False,
    }


# --- views -------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def created_view(version: Version, keypair: KeyPair, private_key: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
        "user_id": keypair.user_id,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    if private_key is not None:
        body["private_key"] = private_key
    return body


def list_item_view(version: Version, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    return {"keypair": body}


def show_view(version: Version, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
        "user_id": keypair.user_id,
        "id": keypair.id,
        "created_at": _iso(keypair.created_at),
        "updated_at": _iso(keypair.updated_at),
        "deleted": False,
        "deleted_at": None,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    return body


# --- helpers -----------------------------------------------------------------------------


def _target_user(request: Request, ctx: RequestContext, action: str, requested: str | None = None) -> str:
    """Whose key pairs: the caller's, or (2.10, admin or oneself) the ``user_id`` asked for."""
    if requested is None and request_version(request) >= V(2, 10):  # 2.10: user_id query
        requested = request.query_params.get("user_id")
    if not requested or requested == ctx.user_id:
        return ctx.user_id
    ctx.require_admin(f"os_compute_api:os-keypairs:{action}")
    return requested


# --- routes ------------------------------------------------------------------------------


@router.post("/os-keypairs")
async def create_keypair(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    version = request_version(request)
    body = await json_body(request)
    validate(create_schema(version), body)
    req = body["keypair"]
    user_id = _target_user(request, ctx, "create", req.get("user_id"))
    key_type = req.get("type", "ssh")
    material = await run_in_threadpool(
        service.key_material, key_type=key_type, public_key=req.get("public_key"), user_id=user_id
    )

    def _store() -> dict[str, Any]:
        with runtime(request).db.serialized(f"quota:{ctx.project_id}") as s:
            keypair = service.create_keypair(
                s,
                project_id=ctx.project_id,
                user_id=user_id,
                name=req["name"],
                key_type=key_type,
                material=material,
            )
            return created_view(version, keypair, material.private_key)

    view = await run_in_threadpool(_store)
    # 2.2: created is 201 (before: 200)
    return JSONResponse({"keypair": view}, status_code=201 if version >= V(2, 2) else 200)


@router.get("/os-keypairs")
def list_keypairs(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    version = request_version(request)
    user_id = _target_user(request, ctx, "index")
    limit: int | None = None
    marker: str | None = None
    if version >= V(2, 35):  # 2.35: paging by name
        limit, marker = parse_limit(request)
    with runtime(request).db.reader() as s:
        page = service.list_keypairs(s, user_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"keypairs": [list_item_view(version, k) for k in page]}
    if limit is not None:
        links = next_link(request, "os-keypairs", page, lambda k: k.name, limit)
        if links:
            body["keypairs_links"] = links
    return body


@router.get("/os-keypairs/{name}")
def show_keypair(
    name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    user_id = _target_user(request, ctx, "show")
    with runtime(request).db.reader() as s:
        keypair = service.get_keypair(s, user_id, name)
        if keypair is None:
            raise service.keypair_not_found(user_id, name)
        return {"keypair": show_view(request_version(request), keypair)}


@router.delete("/os-keypairs/{name}")
def delete_keypair(name: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    user_id = _target_user(request, ctx, "delete")
    with runtime(request).db.session() as s:
        service.delete_keypair(s, user_id, name)
    # 2.2: deleted is 204 (before: 202)
    return Response(status_code=204 if request_version(request) >= V(2, 2) else 202)

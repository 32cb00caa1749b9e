"""Key pairs (§6.6): ``/os-keypairs`` with Nova's per-microversion bodies and status codes.

2.2: ``type`` (ssh | x509), POST answers 201 and DELETE 204 (before: 200 and 202).
2.10: ``user_id`` (an admin may act for another user). 2.35: ``limit``/``marker`` paging
by name with ``keypairs_links``. 2.92: names may contain ``@`` and ``.``, ``public_key`` is
required (no server-side generation). The gates live in ``schemas.keypairs`` (request) and
``views.keypairs`` (answer); the handlers only pass the version along.
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
from novalite.api.microversion import request_version
from novalite.compute_api.schemas import keypairs as schemas
from novalite.compute_api.views import keypairs as views
from novalite.context import RequestContext
from novalite.services import keypairs as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

# --- helpers -----------------------------------------------------------------------------


def _target_user(request: Request, ctx: RequestContext, action: str, requested: str | None = None) -> str:
    """Whose key pairs: the caller's, or (2.10, admin or oneself) the ``user_id`` asked for."""
    if requested is None and schemas.user_id_query(request_version(request)):  # 2.10: user_id query
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
    validate(schemas.create_schema(version), body)
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
            return views.created_view(version, keypair, material.private_key)

    view = await run_in_threadpool(_store)
    return JSONResponse({"keypair": view}, status_code=views.created_status(version))


@router.get("/os-keypairs")
def list_keypairs(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    version = request_version(request)
    user_id = _target_user(request, ctx, "index")
    limit: int | None = None
    marker: str | None = None
    if schemas.paged(version):  # 2.35: paging by name
        limit, marker = parse_limit(request)
    with runtime(request).db.reader() as s:
        page = service.list_keypairs(s, user_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"keypairs": [views.list_item_view(version, k) for k in page]}
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
        return {"keypair": views.show_view(request_version(request), keypair)}


@router.delete("/os-keypairs/{name}")
def delete_keypair(name: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    user_id = _target_user(request, ctx, "delete")
    with runtime(request).db.session() as s:
        service.delete_keypair(s, user_id, name)
    return Response(status_code=views.deleted_status(request_version(request)))

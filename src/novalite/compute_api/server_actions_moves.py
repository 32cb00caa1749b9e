"""The move and shelve actions of POST /servers/{id}/action (§2, §3, §4 of the move operations):
resize, confirmResize, revertResize, migrate, os-migrateLive, shelve, shelveOffload, unshelve.

Each handler loads nothing itself: the service checks the server (404 first), then the lock and
the state; the body is validated before that, as Nova's schema layer does. The admin-only
parts of a request (a target host, offloading) are checked here by their own rules.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.schemas import moves as schemas
from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.services import server_moves, shelve
from novalite.services.server_queries import get_instance


def _exists(request: Request, ctx: RequestContext, server_id: str) -> None:
    with runtime(request).db.reader() as s:
        get_instance(s, ctx, server_id)


def resize(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    validate(schemas.RESIZE, body)
    req = body["resize"]
    auto = req.get("OS-DCF:diskConfig") == "AUTO"
    server_moves.resize(runtime(request), ctx, server_id, str(req["flavorRef"]), auto_disk_config=auto)


def confirm_resize(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    server_moves.confirm_resize(runtime(request), ctx, server_id)
    return Response(status_code=204)


def revert_resize(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    server_moves.revert_resize(runtime(request), ctx, server_id)


def migrate(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    host = None
    if request_version(request) >= V(2, 56):  # 2.56: an optional target host
        validate(schemas.MIGRATE_256, body)
        host = (body["migrate"] or {}).get("host")
    if host is not None:
        ctx.require_admin("os_compute_api:os-migrate-server:migrate:host")
    server_moves.migrate(runtime(request), ctx, server_id, host)


def live_migrate(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    version = request_version(request)
    validate(schemas.live_migrate(version), body)
    req = body["os-migrateLive"]
    host = req.get("host")
    if schemas.is_true(req.get("force", False)) and host is None:
        raise BadRequest("Can't force to a non-provided destination")
    if host is not None:
        ctx.require_admin("os_compute_api:os-migrate-server:migrate_live:host")
    server_moves.live_migrate(runtime(request), ctx, server_id, host)


def shelve_server(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    shelve.shelve(runtime(request), ctx, server_id)


def shelve_offload(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    shelve.shelve_offload(runtime(request), ctx, server_id)


def unshelve(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> None:
    version = request_version(request)
    kwargs: dict[str, Any] = {}
    if version >= V(2, 77):  # 2.77: a zone; 2.91: a host, and a null zone to unpin
        _exists(request, ctx, server_id)
        validate(schemas.UNSHELVE_291 if version >= V(2, 91) else schemas.UNSHELVE_277, body)
        req = body["unshelve"] or {}
        if "availability_zone" in req:
            kwargs["zone"] = req["availability_zone"]
        if req.get("host") is not None:
            ctx.require_admin("os_compute_api:os-shelve:unshelve_to_host")
            kwargs["host"] = req["host"]
    shelve.unshelve(runtime(request), ctx, server_id, **kwargs)

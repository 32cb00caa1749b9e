"""``GET /servers/{id}/diagnostics`` (admin): what the server's host reports of it — the 2.48
fixed shape, or before 2.48 the flat dict of a libvirt host (``views.diagnostics``). The
checks and the call to the host are ``services.diagnostics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from novalite.api.common import reject_nul, request_context, runtime
from novalite.api.microversion import V, request_version
from novalite.compute_api.views.diagnostics import diagnostics_view, legacy_diagnostics_view
from novalite.context import RequestContext
from novalite.services import diagnostics as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])


@router.get("/servers/{server_id}/diagnostics")
async def server_diagnostics(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-server-diagnostics")
    report = await run_in_threadpool(service.diagnostics, runtime(request), ctx, server_id)
    if request_version(request) >= V(2, 48):  # 2.48: a fixed shape, null where unknown
        return diagnostics_view(report)
    return legacy_diagnostics_view(report)

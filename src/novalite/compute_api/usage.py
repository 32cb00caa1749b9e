"""``/os-simple-tenant-usage`` (``openstack usage list`` / ``usage show``): what projects'
servers used in a window, computed by ``services.usage``.

* ``GET /os-simple-tenant-usage`` (admin): every project with servers in the window;
  ``detailed=1`` adds each project's ``server_usages``.
* ``GET /os-simple-tenant-usage/{tenant_id}`` (that project's reader, or admin): one project,
  always detailed; ``{}`` when it had no server in the window.

``start``/``end``: ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` or ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC,
missing means now, the end is capped at now; otherwise 400. Microversions: 2.40 ``limit`` and
``marker`` (a server uuid), with ``tenant_usages_links`` / ``tenant_usage_links`` when the page
is full; before 2.40 at most ``MAX_LIMIT`` servers are counted. 2.75 refuses unknown query
parameters.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import next_link, parse_limit, reject_nul, request_context, runtime
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.views.usage import tenant_usage_view
from novalite.context import RequestContext
from novalite.errors import BadRequest, PolicyNotAuthorized
from novalite.services import usage as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

MAX_LIMIT = 1000
COLLECTION = "os-simple-tenant-usage"


def _check_params(request: Request, version: Version, allowed: set[str]) -> None:
    if version < V(2, 75):  # 2.75: unknown query parameters are refused
        return
    for key in request.query_params:
        if key not in allowed:
            raise BadRequest(
                f"Invalid input for query parameters {key}. Value: {request.query_params.getlist(key)}. "
                f"Additional properties are not allowed ('{key}' was unexpected)"
            )


def _paging(request: Request, version: Version) -> tuple[int, str | None, bool]:
    """(limit, marker, whether the answer carries links): 2.40 paging, else the fixed cap."""
    if version < V(2, 40):
        return MAX_LIMIT, None, False
    raw = request.query_params.get("limit")
    if raw is not None and not raw.strip().isdigit():
        raise BadRequest(
            f"Invalid input for query parameters limit. Value: {raw}. '{raw}' does not match '^[0-9]*$'"
        )
    limit, marker = parse_limit(request, MAX_LIMIT)
    return limit, marker, True


def _window(request: Request) -> service.Window:
    params = request.query_params
    return service.window(params.get("start"), params.get("end"))


@router.get("/os-simple-tenant-usage")
def list_usages(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-simple-tenant-usage:list")
    version = request_version(request)
    _check_params(request, version, {"start", "end", "detailed", "limit", "marker"})
    window = _window(request)
    detailed = request.query_params.get("detailed", "0") == "1"
    limit, marker, links = _paging(request, version)
    with runtime(request).db.reader() as s:
        tenants, page = service.usages(s, window, limit=limit, marker=marker)
    body: dict[str, Any] = {"tenant_usages": [tenant_usage_view(t, detailed=detailed) for t in tenants]}
    if links:
        found = next_link(request, COLLECTION, page, lambda u: u.instance_id, limit)
        if found:
            body["tenant_usages_links"] = found
    return body


@router.get("/os-simple-tenant-usage/{tenant_id}")
def show_usage(
    tenant_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not ctx.is_admin and tenant_id != ctx.project_id:
        raise PolicyNotAuthorized("os_compute_api:os-simple-tenant-usage:show")
    version = request_version(request)
    _check_params(request, version, {"start", "end", "limit", "marker"})
    window = _window(request)
    limit, marker, links = _paging(request, version)
    with runtime(request).db.reader() as s:
        tenants, page = service.usages(s, window, project_id=tenant_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"tenant_usage": tenant_usage_view(tenants[0], detailed=True) if tenants else {}}
    if links:
        found = next_link(request, f"{COLLECTION}/{tenant_id}", page, lambda u: u.instance_id, limit)
        if found:
            body["tenant_usage_links"] = found
    return body

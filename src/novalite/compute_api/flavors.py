"""Flavors (§6.5): list/show for everyone, create/update/delete, extra specs and project access.

Views are exact per microversion for 2.1-2.104 (``views.flavors``); the request schemas and the
behaviour gates (2.7, 2.55, 2.75, 2.86) are in ``schemas.flavors``. The handlers only pass the
version along.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

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
from novalite.compute_api.schemas import flavors as schemas
from novalite.compute_api.views import flavors as views
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.identity import service as identity
from novalite.services import flavors as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

MAX_INT = schemas.MAX_INT
_FLAVOR_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]{1,255}(?<! )$")
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


# --- query parsing -----------------------------------------------------------------------


def _parse_is_public(raw: str | None) -> bool | None:
    if raw is None:
        return True
    if raw.strip().lower() == "none":
        return None
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise BadRequest(f"Invalid is_public filter [{raw}]")


def _parse_min(request: Request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name} filter [{raw}]") from None
    return max(0, min(value, MAX_INT + 1))  # beyond any column value: matches nothing, never overflows


def _list_query(request: Request, ctx: RequestContext) -> service.FlavorQuery:
    params = request.query_params
    version = request_version(request)
    if schemas.strict_list_query(version):  # 2.75: unknown query parameters are refused
        extra = sorted(set(params.keys()) - schemas.list_query_keys(version))
        if extra:
            raise BadRequest(
                f"Invalid input for query parameters {extra[0]}. Value: {params.get(extra[0])}. "
                "Additional properties are not allowed"
            )
    sort_key = params.get("sort_key") or "flavorid"
    sort_dir = params.get("sort_dir") or "asc"
    sort_keys = schemas.sort_keys(version, service.SORT_KEYS)  # 2.102: no rxtx_factor
    if sort_key not in sort_keys:
        raise BadRequest(
            f"Invalid input for query parameters sort_key. Value: {sort_key}. "
            f"'{sort_key}' is not one of {sorted(sort_keys)}"
        )
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(
            f"Invalid input for query parameters sort_dir. Value: {sort_dir}. "
            "'{sort_dir}' is not one of ['asc', 'desc']"
        )
    limit, marker = parse_limit(request)
    is_public = _parse_is_public(params.get("is_public")) if ctx.is_admin else True
    return service.FlavorQuery(
        is_public=is_public,
        min_ram=_parse_min(request, "minRam"),
        min_disk=_parse_min(request, "minDisk"),
        name=params.get("name"),  # a regular expression (Nova: the database's regexp operator)
        sort_key=sort_key,
        sort_dir=sort_dir,
        limit=limit,
        marker=marker,
    )


def _list(request: Request, ctx: RequestContext, *, detail: bool) -> dict[str, Any]:
    query = _list_query(request, ctx)
    version = request_version(request)
    with runtime(request).db.reader() as s:
        page = service.list_flavors(s, ctx, query)
    view = views.detail_view if detail else views.summary_view
    body: dict[str, Any] = {"flavors": [view(request, f, version) for f in page]}
    links = next_link(
        request, "flavors/detail" if detail else "flavors", page, lambda f: f.flavorid, query.limit
    )
    if links:
        body["flavors_links"] = links
    return body


# --- flavors -----------------------------------------------------------------------------


@router.get("/flavors")
def list_flavors(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return _list(request, ctx, detail=False)


@router.get("/flavors/detail")
def list_flavors_detail(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return _list(request, ctx, detail=True)


@router.get("/flavors/{flavor_id}")
def show_flavor(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        flavor = service.get_flavor(s, ctx, flavor_id)
        return {"flavor": views.detail_view(request, flavor, request_version(request))}


def _as_int(value: Any, name: str, minimum: int) -> int:
    """Integers may come as digit strings (Nova accepts both); range-check after conversion."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input received: {name} must be an integer") from None
    if number < minimum:
        raise BadRequest(f"Invalid input received: {name} must be >= {minimum}")
    if number > MAX_INT:
        raise BadRequest(f"Invalid input received: {name} must be <= {MAX_INT}")
    return number


def _new_flavor(body: dict[str, Any]) -> service.NewFlavor:
    raw_id = body.get("id")
    if isinstance(raw_id, float) and raw_id.is_integer():
        raw_id = int(raw_id)
    if raw_id is not None and not _FLAVOR_ID.match(str(raw_id)):
        raise BadRequest(
            "Invalid input received: id can only contain letters from A-Z (both cases), periods, "
            "dashes, underscores and spaces, at most 255 of them."
        )
    rxtx = float(body.get("rxtx_factor", 1.0))
    if not 0 < rxtx <= 3.40282e38:
        raise BadRequest("Invalid input received: 'rxtx_factor' argument must be a positive float")
    is_public = body.get("os-flavor-access:is_public", True)
    if isinstance(is_public, str):
        is_public = is_public.lower() in _TRUE
    return service.NewFlavor(
        name=body["name"],
        memory_mb=_as_int(body["ram"], "ram", 1),
        vcpus=_as_int(body["vcpus"], "vcpus", 1),
        root_gb=_as_int(body["disk"], "disk", 0),
        ephemeral_gb=_as_int(body.get("OS-FLV-EXT-DATA:ephemeral", 0), "OS-FLV-EXT-DATA:ephemeral", 0),
        swap=_as_int(body.get("swap", 0), "swap", 0),
        rxtx_factor=rxtx,
        is_public=bool(is_public),
        flavorid=None if raw_id is None else str(raw_id),
        description=body.get("description"),
    )


@router.post("/flavors")
async def create_flavor(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-flavor-manage:create")
    body = await json_body(request)
    validate(schemas.create_schema(request_version(request)), body)
    new = _new_flavor(body["flavor"])
    return await _in_thread(_create_flavor, request, new)


def _create_flavor(request: Request, new: service.NewFlavor) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        flavor = service.create_flavor(s, new)
        return {"flavor": views.detail_view(request, flavor, request_version(request))}


async def _in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


@router.put("/flavors/{flavor_id}")
async def update_flavor(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if not schemas.update_allowed(request_version(request)):  # 2.55: the update API appears
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-flavor-manage:update")
    body = await json_body(request)
    validate(schemas.UPDATE_SCHEMA, body)
    return await _in_thread(_update_flavor, request, ctx, flavor_id, body["flavor"]["description"])


def _update_flavor(
    request: Request, ctx: RequestContext, flavor_id: str, description: str | None
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        flavor = service.update_description(s, ctx, flavor_id, description)
        return {"flavor": views.detail_view(request, flavor, request_version(request))}


@router.delete("/flavors/{flavor_id}", status_code=202)
def delete_flavor(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("os_compute_api:os-flavor-manage:delete")
    with runtime(request).db.session() as s:
        service.delete_flavor(s, ctx, flavor_id)
    return Response(status_code=202)


# --- project access ----------------------------------------------------------------------


@router.get("/flavors/{flavor_id}/os-flavor-access")
def list_access(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-flavor-access")
    with runtime(request).db.reader() as s:
        return {"flavor_access": service.access_list(service.get_flavor(s, ctx, flavor_id))}


@router.post("/flavors/{flavor_id}/action")
async def flavor_action(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    name = next(iter(body), None) if isinstance(body, dict) and len(body) == 1 else None
    if name not in schemas.ACCESS_ACTIONS:
        raise BadRequest(f"There is no such action: {name}" if name else "Malformed request body")
    rule = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    ctx.require_admin(f"os_compute_api:os-flavor-access:{rule}")
    validate(schemas.access_action_schema(name), body)
    return await _in_thread(_change_access, request, ctx, flavor_id, name, body[name]["tenant"])


def _change_access(
    request: Request, ctx: RequestContext, flavor_id: str, action: str, tenant: str
) -> dict[str, Any]:
    # serialized per flavor: two concurrent grants of one project must give 200 + 409, not a key clash
    with runtime(request).db.serialized(f"flavor:{flavor_id}") as s:
        flavor = service.get_flavor(s, ctx, flavor_id)
        identity.require_valid_project(s, tenant)
        if action == "addTenantAccess":
            # 2.7: granting access to a public flavor is a conflict
            refuse_public = schemas.public_access_conflict(request_version(request))
            service.add_access(s, flavor, tenant, refuse_public=refuse_public)
        else:
            service.remove_access(s, flavor, tenant)
        return {"flavor_access": service.access_list(flavor, refuse_public=False)}


# --- extra specs -------------------------------------------------------------------------


def _stringify(specs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in specs.items()}


@router.get("/flavors/{flavor_id}/os-extra_specs")
def list_extra_specs(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"extra_specs": service.get_flavor(s, ctx, flavor_id).extra_specs}


@router.post("/flavors/{flavor_id}/os-extra_specs")
async def create_extra_specs(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-flavor-extra-specs:create")
    body = await json_body(request)
    validate(schemas.EXTRA_SPECS_SCHEMA, body)
    specs = _stringify(body["extra_specs"])
    schemas.check_extra_specs(request_version(request), specs)  # 2.86: known namespaces are validated
    await _in_thread(_set_specs, request, ctx, flavor_id, specs)
    return {"extra_specs": specs}


@router.get("/flavors/{flavor_id}/os-extra_specs/{key}")
def show_extra_spec(
    flavor_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        specs = service.get_flavor(s, ctx, flavor_id).extra_specs
    if key not in specs:
        raise service.extra_spec_not_found(flavor_id, key)
    return {key: specs[key]}


@router.put("/flavors/{flavor_id}/os-extra_specs/{key}")
async def update_extra_spec(
    flavor_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-flavor-extra-specs:update")
    body = await json_body(request)
    validate(schemas.EXTRA_SPEC_ITEM_SCHEMA, body)
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    specs = _stringify(body)
    schemas.check_extra_specs(request_version(request), specs)  # 2.86: known namespaces are validated
    await _in_thread(_set_specs, request, ctx, flavor_id, specs)
    return specs


@router.delete("/flavors/{flavor_id}/os-extra_specs/{key}")
def delete_extra_spec(
    flavor_id: str, key: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("os_compute_api:os-flavor-extra-specs:delete")
    with runtime(request).db.session() as s:
        service.delete_extra_spec(s, service.get_flavor(s, ctx, flavor_id), key)
    return Response(status_code=200)


def _set_specs(request: Request, ctx: RequestContext, flavor_id: str, specs: dict[str, str]) -> None:
    with runtime(request).db.serialized(f"flavor:{flavor_id}") as s:  # concurrent upserts of one key
        service.set_extra_specs(s, service.get_flavor(s, ctx, flavor_id), specs)

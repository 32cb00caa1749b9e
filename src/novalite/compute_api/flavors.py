"""Flavors (§6.5): list/show for everyone, create/update/delete, extra specs and project access.

Views are exact per microversion for 2.1-2.96: ``swap`` is ``""`` when 0 before 2.75,
``description`` from 2.55, ``extra_specs`` from 2.61; ``OS-FLV-DISABLED:disabled`` and
``rxtx_factor`` stay (they go at 2.102, beyond what we advertise).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from novalite.api.common import (
    compute_links,
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
from novalite.db.models.catalog import Flavor
from novalite.db.models.identity import Project
from novalite.errors import BadRequest, NotFound
from novalite.services import flavors as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

MAX_INT = 2147483647
_NO_NUL = "^[^\\x00]*$"
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^\\s\\x00-\\x1f\\x7f]([^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f])?$",
}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "maximum": MAX_INT}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0, "maximum": MAX_INT}
_BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        "True",
        "TRUE",
        "true",
        "1",
        "ON",
        "On",
        "on",
        "YES",
        "Yes",
        "yes",
        "y",
        "t",
        False,
        "False",
        "FALSE",
        "false",
        "0",
        "OFF",
        "Off",
        "off",
        "NO",
        "No",
        "no",
        "n",
        "f",
    ],
}
_DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535, "pattern": _NO_NUL}


def _create_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": _NAME,
        "id": {
            "type": ["string", "number", "null"],
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$",
        },
        "ram": _POSITIVE,
        "vcpus": _POSITIVE,
        "disk": _NON_NEGATIVE,
        "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
        "swap": _NON_NEGATIVE,
        "rxtx_factor": {
            "type": ["number", "string"],
            "pattern": "^[0-9]+(\\.[0-9]+)?$",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": 3.40282e38,
        },
        "os-flavor-access:is_public": _BOOLEAN,
    }
    if version >= V(2, 55):  # 2.55: description
        props["description"] = _DESCRIPTION
    flavor = {
        "type": "object",
        "properties": props,
        "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"flavor": flavor},
        "required": ["flavor"],
        "additionalProperties": False,
    }


UPDATE_SCHEMA = {  # 2.55: PUT /flavors/{id} changes the description only
    "type": "object",
    "required": ["flavor"],
    "additionalProperties": False,
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {"description": _DESCRIPTION},
            "required": ["description"],
            "additionalProperties": False,
        }
    },
}
_SPEC_KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"
_SPEC_VALUE = {"type": ["string", "number", "boolean"], "minLength": 0, "maxLength": 255, "pattern": _NO_NUL}
EXTRA_SPECS_SCHEMA = {
    "type": "object",
    "required": ["extra_specs"],
    "additionalProperties": False,
    "properties": {
        "extra_specs": {
            "type": "object",
            "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
            "additionalProperties": False,
        }
    },
}
EXTRA_SPEC_ITEM_SCHEMA = {
    "type": "object",
    "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
_TENANT = {
    "type": "object",
    "properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _NO_NUL}},
    "required": ["tenant"],
    "additionalProperties": False,
}
ACCESS_ACTIONS = ("addTenantAccess", "removeTenantAccess")
LIST_QUERY_KEYS = {"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"}
_FLAVOR_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]{1,255}(?<! )$")
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


# --- views -------------------------------------------------------------------------------


def summary_view(request: Request, flavor: Flavor) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "links": compute_links(request, "flavors", flavor.flavorid),
    }
    if request_version(request) >= V(2, 55):  # 2.55: description
        body["description"] = flavor.description
    return body


def detail_view(request: Request, flavor: Flavor) -> dict[str, Any]:
    version = request_version(request)
    body = summary_view(request, flavor)
    body.update(
        {
            "ram": flavor.memory_mb,
            "disk": flavor.root_gb,
            "vcpus": flavor.vcpus,
            # 2.75: swap is always an integer (before: "" when there is none)
            "swap": flavor.swap if (flavor.swap or version >= V(2, 75)) else "",
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "os-flavor-access:is_public": flavor.is_public,
            "OS-FLV-DISABLED:disabled": flavor.disabled,  # until 2.102
            "rxtx_factor": flavor.rxtx_factor,  # until 2.102
        }
    )
    if version >= V(2, 61):  # 2.61: extra_specs
        body["extra_specs"] = dict(flavor.extra_specs)
    return body


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
    if request_version(request) >= V(2, 75):  # 2.75: unknown query parameters are refused
        extra = sorted(set(params.keys()) - LIST_QUERY_KEYS)
        if extra:
            raise BadRequest(
                f"Invalid input for query parameters {extra[0]}. Value: {params.get(extra[0])}. "
                "Additional properties are not allowed"
            )
    sort_key = params.get("sort_key") or "flavorid"
    sort_dir = params.get("sort_dir") or "asc"
    if sort_key not in service.SORT_KEYS:
        raise BadRequest(
            f"Invalid input for query parameters sort_key. Value: {sort_key}. "
            f"'{sort_key}' is not one of {sorted(service.SORT_KEYS)}"
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
        sort_key=sort_key,
        sort_dir=sort_dir,
        limit=limit,
        marker=marker,
    )


def _list(request: Request, ctx: RequestContext, *, detail: bool) -> dict[str, Any]:
    query = _list_query(request, ctx)
    with runtime(request).db.reader() as s:
        page = service.list_flavors(s, ctx, query)
    view = detail_view if detail else summary_view
    body: dict[str, Any] = {"flavors": [view(request, f) for f in page]}
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
        return {"flavor": detail_view(request, flavor)}


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
    validate(_create_schema(request_version(request)), body)
    new = _new_flavor(body["flavor"])
    return await _in_thread(_create_flavor, request, new)


def _create_flavor(request: Request, new: service.NewFlavor) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        flavor = service.create_flavor(s, new)
        return {"flavor": detail_view(request, flavor)}


async def _in_thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


@router.put("/flavors/{flavor_id}")
async def update_flavor(
    flavor_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if request_version(request) < V(2, 55):  # 2.55: the update API appears
        raise NotFound("The resource could not be found.")
    ctx.require_admin("os_compute_api:os-flavor-manage:update")
    body = await json_body(request)
    validate(UPDATE_SCHEMA, body)
    return await _in_thread(_update_flavor, request, ctx, flavor_id, body["flavor"]["description"])


def _update_flavor(
    request: Request, ctx: RequestContext, flavor_id: str, description: str | None
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        flavor = service.update_description(s, ctx, flavor_id, description)
        return {"flavor": detail_view(request, flavor)}


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
    if name not in ACCESS_ACTIONS:
        raise BadRequest(f"There is no such action: {name}" if name else "Malformed request body")
    rule = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    ctx.require_admin(f"os_compute_api:os-flavor-access:{rule}")
    validate(
        {"type": "object", "properties": {name: _TENANT}, "required": [name], "additionalProperties": False},
        body,
    )
    return await _in_thread(_change_access, request, ctx, flavor_id, name, body[name]["tenant"])


def _change_access(
    request: Request, ctx: RequestContext, flavor_id: str, action: str, tenant: str
) -> dict[str, Any]:
    # serialized per flavor: two concurrent grants of one project must give 200 + 409, not a key clash
    with runtime(request).db.serialized(f"flavor:{flavor_id}") as s:
        flavor = service.get_flavor(s, ctx, flavor_id)
        if s.get(Project, tenant) is None:
            raise BadRequest(f"Project ID {tenant} is not a valid project.", kind="InvalidProject")
        if action == "addTenantAccess":
            # 2.7: granting access to a public flavor is a conflict
            service.add_access(s, flavor, tenant, refuse_public=request_version(request) >= V(2, 7))
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
    validate(EXTRA_SPECS_SCHEMA, body)
    specs = _stringify(body["extra_specs"])
    if request_version(request) >= V(2, 86):  # 2.86: known namespaces are validated
        _validate_known_specs(specs)
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
    validate(EXTRA_SPEC_ITEM_SCHEMA, body)
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    specs = _stringify(body)
    if request_version(request) >= V(2, 86):  # 2.86: known namespaces are validated
        _validate_known_specs(specs)
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


_ENUMS = {
    "hw:cpu_policy": ("shared", "dedicated", "mixed"),
    "hw:cpu_thread_policy": ("prefer", "isolate", "require"),
    "hw:mem_encryption": ("true", "false", "True", "False", "1", "0", "yes", "no"),
    "hw_rng:allowed": ("true", "false", "True", "False", "1", "0", "yes", "no"),
    "hw:watchdog_action": ("none", "pause", "poweroff", "reset", "disabled"),
}
_GROUPED = re.compile(r"^(trait|resources)(\d*|_[a-zA-Z0-9_-]+)$")
_INTEGERS = {
    "hw:numa_nodes": 1,
    "hw:cpu_sockets": 1,
    "hw:cpu_cores": 1,
    "hw:cpu_threads": 1,
    "hw:cpu_max_sockets": 1,
    "hw:cpu_max_cores": 1,
    "hw:cpu_max_threads": 1,
}


def _validate_known_specs(specs: dict[str, str]) -> None:
    """2.86: values of the well-known extra specs must make sense (unknown keys pass)."""
    for key, value in specs.items():
        ns, _, rest = key.partition(":")
        group_ns = _GROUPED.match(ns)
        if key in _ENUMS and value not in _ENUMS[key]:
            raise BadRequest(
                f"Validation failed; {key} must be one of {', '.join(_ENUMS[key])}, got '{value}'."
            )
        if key in _INTEGERS and not (value.isdigit() and int(value) >= _INTEGERS[key]):
            raise BadRequest(
                f"Validation failed; {key} must be an integer >= {_INTEGERS[key]}, got '{value}'."
            )
        if group_ns and group_ns.group(1) == "trait" and value not in ("required", "forbidden"):
            raise BadRequest(f"Validation failed; {key} must be 'required' or 'forbidden', got '{value}'.")
        if group_ns and group_ns.group(1) == "resources" and rest and not value.isdigit():
            raise BadRequest(f"Validation failed; {key} must be a non-negative integer, got '{value}'.")

"""Quota sets and quota classes (§6.9): ``/os-quota-sets/{project_id}`` and ``/os-quota-class-sets/{name}``.

Resources shown per microversion: quota sets list the nova-network ones (stored, default -1,
never enforced) before 2.36 and the injected-file ones before 2.57; quota classes gain ``server_groups`` and
``server_group_members`` (and lose the nova-network ones) at 2.50, and lose the injected-file
ones at 2.57. Updates refuse resources the version does not show (400).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, reject_nul, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.errors import BadRequest, PolicyNotAuthorized
from novalite.identity import service as identity
from novalite.services import quotas as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

MAX_INT = 2147483647
INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
_LIMIT = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1, "maximum": MAX_INT}
_FORCE = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        False,
        "True",
        "False",
        "true",
        "false",
        "1",
        "0",
        "TRUE",
        "FALSE",
        "yes",
        "no",
        "on",
        "off",
    ],
}


def set_resources(version: Version) -> list[str]:
    names = list(service.RESOURCES)
    if version < V(2, 36):  # 2.36: nova-network resources are gone
        names += list(service.LEGACY)
    if version >= V(2, 57):  # 2.57: personality files are gone
        names = [n for n in names if n not in INJECTED]
    return names


def class_resources(version: Version) -> list[str]:
    names = list(service.RESOURCES)
    if version < V(2, 50):  # 2.50: server group quotas in, nova-network quotas out
        names = [n for n in names if not n.startswith("server_group")] + list(service.LEGACY)
    if version >= V(2, 57):  # 2.57: personality files are gone
        names = [n for n in names if n not in INJECTED]
    return names


def _update_schema(wrapper: str, names: list[str], *, force: bool) -> dict[str, Any]:
    props: dict[str, Any] = dict.fromkeys(names, _LIMIT)
    if force:
        props["force"] = _FORCE
    inner = {"type": "object", "properties": props, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {wrapper: inner},
        "required": [wrapper],
        "additionalProperties": False,
    }


def _values(body: dict[str, Any]) -> dict[str, int]:
    """The submitted limits as integers (strings allowed)."""
    out: dict[str, int] = {}
    for key, raw in body.items():
        if key == "force":
            continue
        value = int(raw)
        if not -1 <= value <= MAX_INT:
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value: {raw}. "
                f"{value} is not between -1 and {MAX_INT}"
            )
        out[key] = value
    return out


def _check_query(request: Request, allowed: set[str]) -> None:
    if request_version(request) >= V(2, 75):  # 2.75: unknown query parameters are refused
        extra = sorted(set(request.query_params.keys()) - allowed)
        if extra:
            raise BadRequest(
                f"Invalid input for query parameters {extra[0]}. "
                f"Value: {request.query_params.get(extra[0])}. Additional properties are not allowed"
            )


def _may_read(ctx: RequestContext, project_id: str, rule: str) -> None:
    if not ctx.is_admin and ctx.project_id != project_id:
        raise PolicyNotAuthorized(f"os_compute_api:os-quota-sets:{rule}")


def _filtered(limits: dict[str, int], names: list[str]) -> dict[str, int]:
    return {n: limits[n] for n in names}


# --- quota sets --------------------------------------------------------------------------


@router.get("/os-quota-sets/{project_id}/defaults")
def quota_defaults(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    names = set_resources(request_version(request))
    with runtime(request).db.reader() as s:
        limits = service.class_limits(s)
    return {"quota_set": {"id": project_id, **_filtered(limits, names)}}


@router.get("/os-quota-sets/{project_id}/detail")
def quota_detail(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _may_read(ctx, project_id, "detail")
    _check_query(request, {"user_id"})
    user_id = request.query_params.get("user_id") or None
    names = set_resources(request_version(request))
    with runtime(request).db.reader() as s:
        limits = service.effective_limits(s, project_id, user_id)
        usage = service.count_usage(s, project_id, user_id)
    detail = {n: {"limit": limits[n], "in_use": usage.get(n, 0), "reserved": 0} for n in names}
    return {"quota_set": {"id": project_id, **detail}}


@router.get("/os-quota-sets/{project_id}")
def quota_show(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _may_read(ctx, project_id, "show")
    _check_query(request, {"user_id"})
    user_id = request.query_params.get("user_id") or None
    with runtime(request).db.reader() as s:
        limits = service.effective_limits(s, project_id, user_id)
    return {"quota_set": {"id": project_id, **_filtered(limits, set_resources(request_version(request)))}}


def _check_settable(s: Any, project_id: str, user_id: str | None, values: dict[str, int]) -> None:
    """Without ``force``: no limit below what is in use; a user's limit not above the project's."""
    usage = service.count_usage(s, project_id, user_id)
    project_limits = service.effective_limits(s, project_id) if user_id else {}
    for resource, limit in values.items():
        wanted = float("inf") if limit == -1 else limit
        if wanted < usage.get(resource, 0):
            raise BadRequest(
                f"Quota limit {limit} for {resource} must be greater than or equal to already "
                f"used and reserved {usage.get(resource, 0)}."
            )
        if user_id and project_limits[resource] != -1 and wanted > project_limits[resource]:
            raise BadRequest(
                f"Quota limit {limit} for {resource} must be less than or equal to "
                f"{project_limits[resource]}."
            )


@router.put("/os-quota-sets/{project_id}")
async def quota_update(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-quota-sets:update")
    _check_query(request, {"user_id"})
    names = set_resources(request_version(request))
    body = await json_body(request)
    validate(_update_schema("quota_set", names, force=True), body)
    force = str(body["quota_set"].get("force", False)).lower() in ("true", "1", "yes", "on")
    values = _values(body["quota_set"])
    user_id = request.query_params.get("user_id") or None

    def _update() -> dict[str, Any]:
        with runtime(request).db.serialized(f"quota:{project_id}") as s:
            identity.require_valid_project(s, project_id)
            if not force:
                _check_settable(s, project_id, user_id, values)
            service.set_limits(s, project_id, user_id, values)
            return {"quota_set": _filtered(service.effective_limits(s, project_id, user_id), names)}

    return await run_in_threadpool(_update)  # type: ignore[no-any-return]


@router.delete("/os-quota-sets/{project_id}")
def quota_delete(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("os_compute_api:os-quota-sets:delete")
    _check_query(request, {"user_id"})
    with runtime(request).db.session() as s:
        service.delete_limits(s, project_id, request.query_params.get("user_id") or None)
    return Response(status_code=202)


# --- quota classes -----------------------------------------------------------------------


def _class_name(name: str) -> str:
    if not 1 <= len(name) <= 255:
        raise BadRequest("quota_class_name has a length outside 1-255 characters.")
    return name


@router.get("/os-quota-class-sets/{class_name}")
def quota_class_show(
    class_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-quota-class-sets:show")
    names = class_resources(request_version(request))
    with runtime(request).db.reader() as s:
        limits = service.class_limits(s, _class_name(class_name))
    return {"quota_class_set": {"id": class_name, **_filtered(limits, names)}}


@router.put("/os-quota-class-sets/{class_name}")
async def quota_class_update(
    class_name: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-quota-class-sets:update")
    version = request_version(request)
    names = class_resources(version)
    accepted = names if version >= V(2, 50) else [*names, "server_groups", "server_group_members"]
    body = await json_body(request)
    validate(_update_schema("quota_class_set", accepted, force=False), body)
    values = _values(body["quota_class_set"])
    name = _class_name(class_name)

    def _update() -> dict[str, Any]:
        with runtime(request).db.serialized(f"quota-class:{name}") as s:
            service.set_class_limits(s, name, values)
            limits = service.class_limits(s, name)
        return {"quota_class_set": _filtered(limits, names)}

    return await run_in_threadpool(_update)  # type: ignore[no-any-return]

"""Server groups (§6.7): ``/os-server-groups`` with Nova's bodies per microversion.

2.13: ``project_id`` and ``user_id`` in views. 2.15: ``soft-affinity`` / ``soft-anti-affinity``.
2.64: one ``policy`` string and ``rules`` (``max_server_per_host``, anti-affinity only) replace
the ``policies`` list and the always-empty ``metadata``. 2.75: unknown list query parameters
are refused. Create answers 200, delete 204; another project's group is a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.db.models.server_groups import InstanceGroup
from novalite.services import server_groups as service

router = APIRouter(prefix="/compute/v2.1")

MAX_LIMIT = 1000
MAX_OFFSET = 2147483647
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^\\s\\x00-\\x1f\\x7f]([^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f])?$",
}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "minLength": 1}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0, "minLength": 1}
_LEGACY_POLICIES = ["anti-affinity", "affinity"]
_SOFT_POLICIES = ["soft-anti-affinity", "soft-affinity"]


def create_schema(version: Version) -> dict[str, Any]:
    names = list(_LEGACY_POLICIES)
    if version >= V(2, 15):  # 2.15: soft policies
        names += _SOFT_POLICIES
    props: dict[str, Any] = {"name": _NAME}
    if version >= V(2, 64):  # 2.64: policy + rules instead of policies
        props["policy"] = {"type": "string", "enum": names}
        props["rules"] = {
            "type": "object",
            "properties": {"max_server_per_host": _POSITIVE},
            "additionalProperties": False,
        }
        required = ["name", "policy"]
    else:
        props["policies"] = {
            "type": "array",
            "items": [{"type": "string", "enum": names}],
            "uniqueItems": True,
            "minItems": 1,
            "maxItems": 1,
            "additionalItems": False,
        }
        required = ["name", "policies"]
    group = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {"server_group": group},
        "required": ["server_group"],
        "additionalProperties": False,
    }


def _list_query_schema(version: Version) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"all_projects": {"type": "string"}, "limit": _NON_NEGATIVE, "offset": _NON_NEGATIVE},
        # 2.75: unknown query parameters are refused
        "additionalProperties": version < V(2, 75),
    }


# --- views -------------------------------------------------------------------------------


def group_view(version: Version, group: InstanceGroup, members: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if version >= V(2, 64):  # 2.64: policy + rules
        body["policy"] = group.policy
        body["rules"] = dict(group.rules or {})
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    body["members"] = list(members)
    if version >= V(2, 13):  # 2.13: project_id, user_id
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


def _new_group(version: Version, body: dict[str, Any]) -> service.NewGroup:
    if version >= V(2, 64):  # 2.64: policy + rules
        rules = {k: int(v) for k, v in (body.get("rules") or {}).items()}
        return service.NewGroup(name=body["name"], policy=body["policy"], rules=rules)
    return service.NewGroup(name=body["name"], policy=body["policies"][0], rules={})


# --- routes ------------------------------------------------------------------------------


@router.post("/os-server-groups")
async def create_server_group(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    body = await json_body(request)
    validate(create_schema(version), body)
    new = _new_group(version, body["server_group"])

    def _store() -> dict[str, Any]:
        with runtime(request).db.serialized(f"quota:{ctx.project_id}") as s:
            group = service.create_group(s, ctx, new)
            return {"server_group": group_view(version, group, [])}

    return await run_in_threadpool(_store)


@router.get("/os-server-groups")
def list_server_groups(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    version = request_version(request)
    params = {k: request.query_params.getlist(k)[-1] for k in request.query_params}
    validate(_list_query_schema(version), params, query=True)
    limit = min(int(params.get("limit") or 0) or MAX_LIMIT, MAX_LIMIT)
    offset = min(int(params.get("offset") or 0), MAX_OFFSET)
    all_projects = "all_projects" in params and ctx.is_admin
    with runtime(request).db.reader() as s:
        groups = service.list_groups(s, ctx, all_projects=all_projects, limit=limit, offset=offset)
        members = service.live_members(s, [g.id for g in groups])
        return {"server_groups": [group_view(version, g, members[g.id]) for g in groups]}


@router.get("/os-server-groups/{group_id}")
def show_server_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        group = service.require_group(s, ctx, group_id)
        members = service.live_members(s, [group.id])[group.id]
        return {"server_group": group_view(request_version(request), group, members)}


@router.delete("/os-server-groups/{group_id}", status_code=204)
def delete_server_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    with runtime(request).db.session() as s:
        service.delete_group(s, ctx, group_id)
    return Response(status_code=204)

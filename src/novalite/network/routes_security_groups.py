"""/network/v2.0/security-groups and /network/v2.0/security-group-rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.network import quotas, security_groups
from novalite.network.attributes import check_body, check_create
from novalite.network.bulk import create_response
from novalite.network.listing import fields_of, list_response
from novalite.network.networks import require_owner
from novalite.network.views import load_related, rule_view, security_group_view

router = APIRouter(prefix="/network/v2.0")


@router.get("/security-groups")
def list_groups(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    # writes: the project's default group is created on first use
    with runtime(request).db.session() as s:
        found = security_groups.visible_groups(s, ctx)
        rel = load_related(s, [g.id for g in found])
        items = [security_group_view(s, g, rel) for g in found]
    return list_response(request, "security_groups", items, not_found=security_groups.group_not_found)


@router.get("/security-groups/{group_id}")
def show_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        group = security_groups.get_group(s, ctx, group_id)
        return {"security_group": fields_of(request, security_group_view(s, group))}


def _create_group(request: Request, ctx: RequestContext, fields: dict[str, Any]) -> JSONResponse:
    project_id = fields.get("project_id") or ctx.project_id
    require_owner(ctx, project_id, "rule:create_security_group")
    with runtime(request).db.serialized(quotas.quota_lock(project_id)) as s:
        group = security_groups.create_group(
            s,
            ctx,
            name=fields.get("name") or "",
            description=fields.get("description") or "",
            stateful=fields.get("stateful", True),
            project_id=project_id,
        )
        return JSONResponse({"security_group": security_group_view(s, group)}, status_code=201)


@router.post("/security-groups")
async def create_group(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    fields = check_body("security_group", await json_body(request))
    return await run_in_threadpool(_create_group, request, ctx, fields)


def _update_group(
    request: Request, ctx: RequestContext, group_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        group = security_groups.get_group(s, ctx, group_id)
        security_groups.update_group(s, group, changes)
        s.flush()
        return {"security_group": security_group_view(s, group)}


@router.put("/security-groups/{group_id}")
async def update_group(
    group_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    changes = check_body("security_group", await json_body(request), update=True)
    return await run_in_threadpool(_update_group, request, ctx, group_id, changes)


@router.delete("/security-groups/{group_id}", status_code=204)
def delete_group(group_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        security_groups.delete_group(s, ctx, security_groups.get_group(s, ctx, group_id))
    return Response(status_code=204)


@router.get("/security-group-rules")
def list_rules(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        items = [rule_view(r) for r in security_groups.visible_rules(s, ctx)]
    return list_response(request, "security_group_rules", items, not_found=security_groups.rule_not_found)


@router.get("/security-group-rules/{rule_id}")
def show_rule(
    rule_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {
            "security_group_rule": fields_of(request, rule_view(security_groups.get_rule(s, ctx, rule_id)))
        }


@router.post("/security-group-rules")
async def create_rule(request: Request, ctx: RequestContext = Depends(request_context)) -> JSONResponse:
    items, bulk = check_create("security_group_rule", await json_body(request))
    return await run_in_threadpool(
        create_response,
        request,
        ctx,
        items,
        bulk,
        member="security_group_rule",
        create=lambda s, fields: security_groups.create_rule(s, ctx, fields),
        view=lambda s, rule: rule_view(rule),
    )


@router.delete("/security-group-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        rule = security_groups.get_rule(s, ctx, rule_id)
        require_owner(ctx, rule.project_id, "rule:delete_security_group_rule")
        security_groups.delete_rule(s, rule)
    return Response(status_code=204)

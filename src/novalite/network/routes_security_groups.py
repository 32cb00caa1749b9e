"""/network/v2.0/security-groups and /network/v2.0/security-group-rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.network import quotas, security_groups
from novalite.network.attributes import check_body
from novalite.network.networks import require_owner
from novalite.network.resource_routes import Resource, add_member_routes
from novalite.network.views import rule_view, security_group_view

router = APIRouter(prefix="/network/v2.0")

SECURITY_GROUP = Resource(
    member="security_group",
    collection="security_groups",
    visible=security_groups.visible_groups,
    get=security_groups.get_group,
    view=lambda s, ctx, group, rel: security_group_view(s, group, rel),
    not_found=security_groups.group_not_found,
    update=lambda s, ctx, group, changes: security_groups.update_group(s, group, changes),
    delete=security_groups.delete_group,
    list_writes=True,
)
RULE = Resource(
    member="security_group_rule",
    collection="security_group_rules",
    visible=security_groups.visible_rules,
    get=security_groups.get_rule,
    view=lambda s, ctx, rule, rel: rule_view(rule),
    not_found=security_groups.rule_not_found,
    create=security_groups.create_rule,
)


add_member_routes(router, "/security-groups", SECURITY_GROUP, "group_id", ("list", "show"))


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


add_member_routes(router, "/security-groups", SECURITY_GROUP, "group_id", ("update", "delete"))
add_member_routes(router, "/security-group-rules", RULE, "rule_id", ("list", "show", "create"))


@router.delete("/security-group-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    with runtime(request).db.session() as s:
        rule = security_groups.get_rule(s, ctx, rule_id)
        require_owner(ctx, rule.project_id, "rule:delete_security_group_rule")
        security_groups.delete_rule(s, rule)
    return Response(status_code=204)

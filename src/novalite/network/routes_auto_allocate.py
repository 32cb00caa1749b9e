"""/network/v2.0/auto-allocated-topology/{project_id} (network/auto_allocate.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import request_context, runtime
from novalite.context import RequestContext
from novalite.errors import Forbidden
from novalite.network import auto_allocate

router = APIRouter(prefix="/network/v2.0")


def _project(ctx: RequestContext, project_id: str) -> str:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden(
            "(rule:get_auto_allocated_topology) is disallowed by policy", kind="PolicyNotAuthorized"
        )
    return project_id


@router.get("/auto-allocated-topology/{project_id}")
def get_topology(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    """The project's auto-allocated network, created on the first call (``?fields=dry-run``
    only checks that it could be)."""
    project = _project(ctx, project_id)
    with runtime(request).db.session() as s:
        if request.query_params.get("fields") == "dry-run":
            if auto_allocate.existing(s, project) is None and auto_allocate.external_network(s) is None:
                raise auto_allocate.unable(project)
            return {"auto_allocated_topology": {"dry-run": "pass"}}
        net_id = auto_allocate.allocate(s, project, ctx.user_id)
    return {"auto_allocated_topology": {"id": net_id, "tenant_id": project, "project_id": project}}

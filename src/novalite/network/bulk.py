"""Neutron's create answer for one or many (``{"networks": [...]}``) resources in a request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from novalite.api.common import runtime
from novalite.context import RequestContext
from novalite.network import quotas

Row = TypeVar("Row")


def create_response(
    request: Request,
    ctx: RequestContext,
    items: list[dict[str, Any]],
    bulk: bool,
    *,
    member: str,
    create: Callable[[Session, dict[str, Any]], Row],
    view: Callable[[Session, Row], dict[str, Any]],
) -> JSONResponse:
    """Create every item under the quota lock of the first item's project (all or none: one
    transaction), render them once all exist, and answer 201 with ``{member}`` or, for a bulk
    request, ``{member}s``."""
    project_id = items[0].get("project_id") or ctx.project_id
    with runtime(request).db.serialized(quotas.quota_lock(project_id)) as s:
        made = [create(s, fields) for fields in items]
        views = [view(s, row) for row in made]
    return JSONResponse({f"{member}s": views} if bulk else {member: views[0]}, status_code=201)

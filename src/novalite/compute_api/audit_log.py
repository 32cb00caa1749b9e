"""``/os-instance_usage_audit_log`` (admin): the state of the instance usage audit for the last
completed period, before now or before ``{before}`` (``YYYY-MM-DD HH:MM:SS[.ffffff]``, else
400 "Invalid timestamp for date ..."). The index answers under the plural key with one object,
as Nova does. What the audit found is ``services.audit_log``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import reject_nul, request_context, runtime
from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.errors import BadRequest
from novalite.services import audit_log as service

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])


def _time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def audit_log_view(log: service.AuditLog) -> dict[str, Any]:
    not_run = log.not_run
    return {
        "period_beginning": _time(log.period_beginning),
        "period_ending": _time(log.period_ending),
        "num_hosts": len(log.hosts),
        "num_hosts_done": len(log.done),
        "num_hosts_running": len(log.running),
        "num_hosts_not_run": len(not_run),
        "hosts_not_run": not_run,
        "total_instances": 0,
        "total_errors": 0,
        "overall_status": log.overall_status,
        "log": {},
    }


def _log(request: Request, before: dt.datetime) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return audit_log_view(service.audit_log(s, before))


@router.get("/os-instance_usage_audit_log")
def list_audit_log(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-instance-usage-audit-log:list")
    return {"instance_usage_audit_logs": _log(request, utcnow())}


@router.get("/os-instance_usage_audit_log/{before}")
def show_audit_log(
    before: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("os_compute_api:os-instance-usage-audit-log:show")
    try:
        when = dt.datetime.strptime(before, "%Y-%m-%d %H:%M:%S.%f" if "." in before else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"Invalid timestamp for date {before}") from None
    return {"instance_usage_audit_log": _log(request, when)}

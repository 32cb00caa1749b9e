"""Simple tenant usage as Nova shows it: times as ``YYYY-MM-DDTHH:MM:SS.ffffff`` (no zone),
``ended_at`` null while the server runs, ``server_usages`` only when asked for (always in
show)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from novalite.services.usage import ServerUsage, TenantUsage


def _time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def server_usage_view(u: ServerUsage) -> dict[str, Any]:
    return {
        "instance_id": u.instance_id,
        "name": u.name,
        "tenant_id": u.tenant_id,
        "flavor": u.flavor,
        "memory_mb": u.memory_mb,
        "local_gb": u.local_gb,
        "vcpus": u.vcpus,
        "hours": u.hours,
        "started_at": _time(u.started_at),
        "ended_at": _time(u.ended_at) if u.ended_at is not None else None,
        "state": u.state,
        "uptime": u.uptime,
    }


def tenant_usage_view(t: TenantUsage, *, detailed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tenant_id": t.tenant_id,
        "total_local_gb_usage": t.total_local_gb_usage,
        "total_vcpus_usage": t.total_vcpus_usage,
        "total_memory_mb_usage": t.total_memory_mb_usage,
        "total_hours": t.total_hours,
        "start": _time(t.window.start),
        "stop": _time(t.window.stop),
    }
    if detailed:
        out["server_usages"] = [server_usage_view(u) for u in t.server_usages]
    return out

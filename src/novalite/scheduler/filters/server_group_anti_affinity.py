"""ServerGroupAntiAffinityFilter: for an ``anti-affinity`` group, fewer than
``rules.max_server_per_host`` (default 1) other members on the host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


def max_per_host(rules: Mapping[str, Any] | None) -> int:
    try:
        return max(1, int((rules or {}).get("max_server_per_host", 1)))
    except (TypeError, ValueError, AttributeError):
        return 1


class ServerGroupAntiAffinityFilter:
    name: ClassVar[str] = "ServerGroupAntiAffinityFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        group = spec.group
        if group is None or group.policy != "anti-affinity":
            return PASS
        limit = max_per_host(group.rules)
        here = group.members_on(host.host, excluding=spec.instance_uuid)
        if here >= limit:
            return fail(
                f"server group {group.uuid} (anti-affinity) already has {here} member(s) here, "
                f"max_server_per_host={limit}"
            )
        return PASS

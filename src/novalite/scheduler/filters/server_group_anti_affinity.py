"""ServerGroupAntiAffinityFilter: for an ``anti-affinity`` group, fewer than
``rules.max_server_per_host`` (default 1) other members on the host."""

from __future__ import annotations

from typing import ClassVar

from novalite.domain.server_groups import max_per_host
from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


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

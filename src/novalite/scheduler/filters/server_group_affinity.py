"""ServerGroupAffinityFilter: for an ``affinity`` group that already has hosts, only those."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


class ServerGroupAffinityFilter:
    name: ClassVar[str] = "ServerGroupAffinityFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        group = spec.group
        if group is None or group.policy != "affinity":
            return PASS
        others = {h for uuid, h in group.member_hosts.items() if uuid != spec.instance_uuid and h}
        if others and host.host not in others:
            return fail(f"server group {group.uuid} (affinity) runs on {', '.join(sorted(others))}")
        return PASS

"""ComputeFilter: the host's nova-compute service is enabled and up (recent heartbeat)."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


class ComputeFilter:
    name: ClassVar[str] = "ComputeFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        if host.service_disabled:
            return fail(f"service disabled ({host.disabled_reason or 'no reason'})")
        if not host.service_up:
            return fail("service is down")
        return PASS

"""CPUWeigher: free vCPUs (total * cpu_allocation_ratio - used, not below 0)."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class CPUWeigher:
    name: ClassVar[str] = "CPUWeigher"
    option: ClassVar[str] = "cpu_weight_multiplier"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return max(0.0, float(host.free_vcpus))

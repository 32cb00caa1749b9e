"""DiskWeigher: free disk (MB, not below 0)."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class DiskWeigher:
    name: ClassVar[str] = "DiskWeigher"
    option: ClassVar[str] = "disk_weight_multiplier"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return max(0.0, float(host.free_disk_mb))

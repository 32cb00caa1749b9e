"""RAMWeigher: free RAM (MB, not below 0); a positive multiplier spreads, negative stacks."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class RAMWeigher:
    name: ClassVar[str] = "RAMWeigher"
    option: ClassVar[str] = "ram_weight_multiplier"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return max(0.0, float(host.free_ram_mb))

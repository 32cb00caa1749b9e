"""NumInstancesWeigher: instance count (off by default; negative prefers emptier hosts)."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class NumInstancesWeigher:
    name: ClassVar[str] = "NumInstancesWeigher"
    option: ClassVar[str] = "num_instances_weight_multiplier"
    default_multiplier: ClassVar[float] = 0.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return float(host.num_instances)

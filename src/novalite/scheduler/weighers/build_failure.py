"""BuildFailureWeigher: consecutive failed builds on the node; the large negative default
multiplier makes any failure outweigh everything else."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class BuildFailureWeigher:
    name: ClassVar[str] = "BuildFailureWeigher"
    option: ClassVar[str] = "build_failure_weight_multiplier"
    default_multiplier: ClassVar[float] = -1000000.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return float(host.failed_builds)

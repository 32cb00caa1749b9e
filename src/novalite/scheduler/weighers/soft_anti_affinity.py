"""ServerGroupSoftAntiAffinityWeigher: minus the members of a ``soft-anti-affinity`` group on the host."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class ServerGroupSoftAntiAffinityWeigher:
    name: ClassVar[str] = "ServerGroupSoftAntiAffinityWeigher"
    option: ClassVar[str] = "soft_anti_affinity_weight_multiplier"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return (
            -float(spec.group.members_on(host.host, excluding=spec.instance_uuid))
            if spec.group and spec.group.policy == "soft-anti-affinity"
            else 0.0
        )

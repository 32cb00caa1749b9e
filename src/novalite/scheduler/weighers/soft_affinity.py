"""ServerGroupSoftAffinityWeigher: members of a ``soft-affinity`` group already on the host."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class ServerGroupSoftAffinityWeigher:
    name: ClassVar[str] = "ServerGroupSoftAffinityWeigher"
    option: ClassVar[str] = "soft_affinity_weight_multiplier"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float:
        return (
            float(spec.group.members_on(host.host, excluding=spec.instance_uuid))
            if spec.group and spec.group.policy == "soft-affinity"
            else 0.0
        )

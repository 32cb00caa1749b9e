"""What a weigher is: one method giving a raw value (higher = better before the multiplier).

``minval`` (when set) replaces the list minimum during normalisation, as Nova does for
weighers whose floor is known.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from novalite.scheduler.snapshots import HostSnapshot, RequestView


class Weigher(Protocol):
    name: ClassVar[str]
    option: ClassVar[str]  # the config / aggregate metadata key of its multiplier
    default_multiplier: ClassVar[float]
    minval: ClassVar[float | None]

    def weigh(self, host: HostSnapshot, spec: RequestView) -> float: ...

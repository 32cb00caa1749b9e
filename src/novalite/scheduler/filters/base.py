"""What a filter is: one method answering "fits / does not fit, and why" as a value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from novalite.scheduler.snapshots import HostSnapshot, RequestView


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""


PASS = Verdict(True)


def fail(reason: str) -> Verdict:
    return Verdict(False, reason)


class Filter(Protocol):
    name: ClassVar[str]

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict: ...

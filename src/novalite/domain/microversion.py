"""A compute API microversion as a value (``V(2, 19)``), comparable and hashable.

Parsed from the request headers once per request (``api.microversion.negotiate``); the service
layer receives it with the request when a behaviour depends on it (2.60 multiattach volumes,
2.72 ports with resource requests, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from novalite.errors import BadRequest

_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _FORMAT.match(text.strip())
        if not m:
            raise BadRequest(
                f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
            )
        return cls(int(m.group(1)), int(m.group(2)))


def V(major: int, minor: int) -> Version:  # noqa: N802 - reads like a literal
    return Version(major, minor)

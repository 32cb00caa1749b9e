"""Compute microversions: parsed once per request into a ``Version``.

Schemas and views compare against it (``if v >= V(2, 19)``); handlers do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from novalite.errors import BadRequest, NotAcceptable

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


MIN_VERSION = V(2, 1)
# Raise only when the behaviour of the new microversion is implemented (docs/microversion_history.md).
MAX_VERSION = V(2, 96)


def negotiate(
    headers: dict[str, str], *, minimum: Version = MIN_VERSION, maximum: Version = MAX_VERSION
) -> Version:
    """Pick the version from ``OpenStack-API-Version: compute X.Y`` or the legacy header."""
    raw: str | None = None
    modern = headers.get("openstack-api-version")
    if modern:
        for item in modern.split(","):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "compute":
                raw = parts[1].strip()
    if raw is None:
        raw = headers.get("x-openstack-nova-api-version")
    if raw is None or raw == "":
        return minimum
    if raw.strip().lower() == "latest":
        return maximum
    version = Version.parse(raw)
    if not (minimum <= version <= maximum):
        raise NotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {minimum} and maximum is {maximum}.",
            kind="InvalidGlobalAPIVersion",
        )
    return version


def version_headers(version: Version) -> list[tuple[bytes, bytes]]:
    return [
        (b"openstack-api-version", f"compute {version}".encode()),
        (b"x-openstack-nova-api-version", str(version).encode()),
        (b"vary", b"OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    ]


def request_version(request: Any) -> Version:
    return request.scope.get("state", {}).get("api_version", MIN_VERSION)

"""Compute microversions: parsed once per request into a ``Version``.

Schemas and views compare against it (``if v >= V(2, 19)``); handlers do not.
"""

from __future__ import annotations

from typing import Any

from novalite.domain.microversion import V, Version
from novalite.errors import NotAcceptable

__all__ = ["MAX_VERSION", "MIN_VERSION", "V", "Version", "negotiate", "request_version", "version_headers"]

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

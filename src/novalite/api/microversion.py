"""Compute microversions: parsed once per request into a ``Version``.

Schemas and views compare against it (``if v >= V(2, 19)``); handlers do not.
"""

from __future__ import annotations

import re
from typing import Any

from novalite.domain.microversion import V, Version
from novalite.errors import NotAcceptable

__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "V",
    "Version",
    "negotiate",
    "query_refusal",
    "request_version",
    "version_headers",
]

MIN_VERSION = V(2, 1)
# Raise only when the behaviour of the new microversion is implemented (docs/microversion_history.md).
MAX_VERSION = V(2, 104)


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


# 2.102: these GETs take no query parameter at all (Nova's ``*_query_v2102`` schemas: no
# properties, additionalProperties False); before 2.102 unknown parameters are ignored. Route
# templates below /compute/v2.1 (a router included with that prefix keeps its routes' paths
# without it); routes novalite does not serve are harmless here.
_NO_QUERY_FROM_2_102 = frozenset(
    (
        "/os-aggregates",
        "/os-aggregates/{aggregate_id}",
        "/servers/{server_id}/os-interface",
        "/servers/{server_id}/os-interface/{port_id}",
        "/os-availability-zone",
        "/os-availability-zone/detail",
        "/extensions",
        "/extensions/{alias}",
        "/flavors/{flavor_id}",
        "/flavors/{flavor_id}/os-flavor-access",
        "/flavors/{flavor_id}/os-extra_specs",
        "/flavors/{flavor_id}/os-extra_specs/{key}",
        "/servers/{server_id}/os-instance-actions/{request_id}",
        "/os-instance_usage_audit_log",
        "/os-instance_usage_audit_log/{before_timestamp}",
        "/servers/{server_id}/ips",
        "/servers/{server_id}/ips/{network_label}",
        "/os-quota-class-sets/{id}",
        "/servers/{server_id}/os-security-groups",
        "/servers/{server_id}/diagnostics",
        "/os-server-groups/{group_id}",
        "/servers/{server_id}/metadata",
        "/servers/{server_id}/metadata/{key}",
        "/servers/{server_id}/migrations",
        "/servers/{server_id}/migrations/{migration_id}",
        "/servers/{server_id}/os-server-password",
        "/servers/{server_id}/topology",
        "/servers/{server_id}",
    )
)
_PARAM = re.compile(r"\{[^}]+\}")


def _shape(template: str) -> str:
    return _PARAM.sub("{}", template)


_NO_QUERY_SHAPES = frozenset(_shape(t) for t in _NO_QUERY_FROM_2_102)


def query_refusal(
    method: str, route_template: str, version: Version, query: list[tuple[str, str]]
) -> str | None:
    """The 400 message for a query parameter the route refuses at ``version`` (2.102), or None.
    ``route_template`` is the matched route's path (parameter names do not matter)."""
    if method != "GET" or not query or version < V(2, 102):
        return None
    if _shape(route_template.removeprefix("/compute/v2.1")) not in _NO_QUERY_SHAPES:
        return None
    key, value = query[0]
    return (
        f"Invalid input for query parameters {key}. Value: {value}. "
        f"Additional properties are not allowed ('{key}' was unexpected)"
    )

"""Request schemas and gates for /os-hypervisors, one per microversion range (§6.12).

``list_query_schema(version)`` / ``show_query_schema(version)`` give the query schema (None:
the version reads no query parameters). ``uuid_ids`` says how hypervisors are named in paths and
markers; ``pattern_routes``, ``statistics_route`` and ``uptime_route`` say which routes a version
still has. Every gate carries its microversion in a comment; nothing outside this module and
``views.hypervisors`` compares versions for hypervisors.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from novalite.api.microversion import V, Version
from novalite.errors import BadRequest


def list_query_schema(version: Version) -> dict[str, Any] | None:
    if version < V(2, 33):  # 2.33: limit / marker paging (no query before)
        return None
    props: dict[str, Any] = {"limit": {"type": "string", "pattern": "^[0-9]+$"}, "marker": {"type": "string"}}
    if version >= V(2, 53):  # 2.53: pattern and with_servers; nothing else
        props.update(
            hypervisor_hostname_pattern={"type": "string", "minLength": 1}, with_servers={"type": "string"}
        )
    return {"type": "object", "properties": props, "additionalProperties": version < V(2, 53)}


def show_query_schema(version: Version) -> dict[str, Any] | None:
    if version < V(2, 53):  # 2.53: with_servers; nothing else (no query before)
        return None
    return {
        "type": "object",
        "properties": {"with_servers": {"type": "string"}},
        "additionalProperties": False,
    }


def uuid_ids(version: Version) -> bool:
    """2.53: uuid ids (compute node uuids in paths and markers; integer ids before)."""
    return version >= V(2, 53)


def check_hypervisor_id(version: Version, hypervisor_id: str) -> None:
    """2.53: uuid ids; a path id that is not a uuid is a 400."""
    if uuid_ids(version):
        try:
            uuidlib.UUID(hypervisor_id)
        except ValueError:
            raise BadRequest(f"Invalid uuid {hypervisor_id}") from None


def pattern_routes(version: Version) -> bool:
    """2.53: ``/{pattern}/search`` and ``/{pattern}/servers`` are replaced by
    ``hypervisor_hostname_pattern`` (404 from then on)."""
    return version < V(2, 53)


def statistics_route(version: Version) -> bool:
    """2.88: ``/os-hypervisors/statistics`` is removed (404)."""
    return version < V(2, 88)


def uptime_route(version: Version) -> bool:
    """2.88: ``/os-hypervisors/{id}/uptime`` is removed (404; uptime is in show)."""
    return version < V(2, 88)

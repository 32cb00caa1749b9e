"""Request schemas of the move and shelve actions and the migration lists, per microversion
(§2.1, §3.1-3.4, §4.1, §6.1-6.2 of the move operations)."""

from __future__ import annotations

from typing import Any

from novalite.domain.microversion import V, Version

HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
ZONE_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
# Nova's boolean parameter: a JSON boolean or one of these strings
BOOLEAN = {
    "type": ["boolean", "string"],
    "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
             False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"],
}  # fmt: skip
TRUE_STRINGS = {"true", "1", "on", "yes"}


def _action(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: value},
        "required": [name],
        "additionalProperties": False,
    }


RESIZE = _action(
    "resize",
    {
        "type": "object",
        "properties": {
            "flavorRef": {"type": ["string", "integer"], "minLength": 1},
            "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        },
        "required": ["flavorRef"],
        "additionalProperties": False,
    },
)

# 2.56: an optional target host
MIGRATE_256 = _action(
    "migrate",
    {
        "type": ["object", "null"],
        "properties": {"host": {**HOST, "type": ["string", "null"]}},
        "additionalProperties": False,
    },
)


def live_migrate(version: Version) -> dict[str, Any]:
    """os-migrateLive: 2.25 block_migration "auto" and no disk_over_commit; 2.30 force; 2.68 no force."""
    host = {**HOST, "type": ["string", "null"]}
    props: dict[str, Any]
    if version < V(2, 25):
        props = {"block_migration": BOOLEAN, "disk_over_commit": BOOLEAN, "host": host}
        required = ["block_migration", "disk_over_commit", "host"]
    else:
        block = {"anyOf": [BOOLEAN, {"type": "string", "enum": ["auto"]}]}
        props = {"block_migration": block, "host": host}
        required = ["block_migration", "host"]
        if V(2, 30) <= version < V(2, 68):  # 2.30: force; gone again in 2.68
            props["force"] = BOOLEAN
    return _action(
        "os-migrateLive",
        {"type": "object", "properties": props, "required": required, "additionalProperties": False},
    )


# 2.77: an availability zone to unshelve into; 2.91: a host, and a null zone to unpin
UNSHELVE_277 = _action(
    "unshelve",
    {
        "type": ["object", "null"],
        "properties": {"availability_zone": ZONE_NAME},
        "required": ["availability_zone"],
        "additionalProperties": False,
    },
)
UNSHELVE_291 = _action(
    "unshelve",
    {
        "type": ["object", "null"],
        "properties": {
            "availability_zone": {"type": ["string", "null"]},
            "host": {**HOST},
        },
        "additionalProperties": False,
    },
)

FORCE_COMPLETE = _action("force_complete", {"type": "null"})


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in TRUE_STRINGS)


# GET /os-migrations query parameters
_BASE_PARAMS = ("hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")


def migrations_query(version: Version) -> dict[str, Any]:
    """2.59: limit, marker, changes-since; 2.66: changes-before; 2.80: user_id, project_id;
    unknown parameters are refused from 2.59."""
    text = {"type": "string"}
    props: dict[str, Any] = dict.fromkeys(_BASE_PARAMS, text)
    strict = version >= V(2, 59)
    if strict:
        props.update(
            {
                "limit": {"type": "string", "pattern": "^[0-9]+$"},
                "marker": text,
                "changes-since": text,
            }
        )
    if version >= V(2, 66):
        props["changes-before"] = text
    if version >= V(2, 80):
        props.update({"user_id": text, "project_id": text})
    return {"type": "object", "properties": props, "additionalProperties": not strict}

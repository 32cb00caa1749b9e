"""Request schemas and gates for /flavors, one per microversion range (§6.5).

``create_schema(version)`` picks the POST body schema; ``UPDATE_SCHEMA`` (PUT, from 2.55),
the extra specs and access action schemas do not change with the version. The behaviour gates
are named functions (``strict_list_query``, ``update_allowed``, ``public_access_conflict``,
``check_extra_specs``). Every gate carries its microversion in a comment; nothing outside this
module and ``views.flavors`` compares versions for flavors.
"""

from __future__ import annotations

import re
from typing import Any

from novalite.api.microversion import V, Version
from novalite.compute_api.schemas.common import BOOLEAN
from novalite.errors import BadRequest

MAX_INT = 2147483647
_NO_NUL = "^[^\\x00]*$"
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[^\\s\\x00-\\x1f\\x7f]([^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f])?$",
}
_POSITIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1, "maximum": MAX_INT}
_NON_NEGATIVE = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0, "maximum": MAX_INT}
_RXTX_FACTOR = {
    "type": ["number", "string"],
    "pattern": "^[0-9]+(\\.[0-9]+)?$",
    "minimum": 0,
    "exclusiveMinimum": True,
    "maximum": 3.40282e38,
}
_DESCRIPTION = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535, "pattern": _NO_NUL}


def create_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": _NAME,
        "id": {
            "type": ["string", "number", "null"],
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$",
        },
        "ram": _POSITIVE,
        "vcpus": _POSITIVE,
        "disk": _NON_NEGATIVE,
        "OS-FLV-EXT-DATA:ephemeral": _NON_NEGATIVE,
        "swap": _NON_NEGATIVE,
        "os-flavor-access:is_public": BOOLEAN,
    }
    if version < V(2, 102):  # 2.102: rxtx_factor gone
        props["rxtx_factor"] = _RXTX_FACTOR
    if version >= V(2, 55):  # 2.55: description
        props["description"] = _DESCRIPTION
    flavor = {
        "type": "object",
        "properties": props,
        "required": ["name", "ram", "vcpus", "disk"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"flavor": flavor},
        "required": ["flavor"],
        "additionalProperties": False,
    }


def update_allowed(version: Version) -> bool:
    """2.55: the update API appears (PUT /flavors/{id}; a 404 before)."""
    return version >= V(2, 55)


UPDATE_SCHEMA = {  # 2.55: PUT /flavors/{id} changes the description only
    "type": "object",
    "required": ["flavor"],
    "additionalProperties": False,
    "properties": {
        "flavor": {
            "type": "object",
            "properties": {"description": _DESCRIPTION},
            "required": ["description"],
            "additionalProperties": False,
        }
    },
}
_SPEC_KEY = "^[a-zA-Z0-9-_:. ]{1,255}$"
_SPEC_VALUE = {"type": ["string", "number", "boolean"], "minLength": 0, "maxLength": 255, "pattern": _NO_NUL}
EXTRA_SPECS_SCHEMA = {
    "type": "object",
    "required": ["extra_specs"],
    "additionalProperties": False,
    "properties": {
        "extra_specs": {
            "type": "object",
            "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
            "additionalProperties": False,
        }
    },
}
EXTRA_SPEC_ITEM_SCHEMA = {
    "type": "object",
    "patternProperties": {_SPEC_KEY: _SPEC_VALUE},
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
}
_TENANT = {
    "type": "object",
    "properties": {"tenant": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _NO_NUL}},
    "required": ["tenant"],
    "additionalProperties": False,
}
ACCESS_ACTIONS = ("addTenantAccess", "removeTenantAccess")


def access_action_schema(name: str) -> dict[str, Any]:
    """The body of POST /flavors/{id}/action for one of ``ACCESS_ACTIONS``."""
    return {
        "type": "object",
        "properties": {name: _TENANT},
        "required": [name],
        "additionalProperties": False,
    }


def public_access_conflict(version: Version) -> bool:
    """2.7: granting access to a public flavor is a conflict."""
    return version >= V(2, 7)


_LIST_QUERY_KEYS = frozenset({"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"})


def list_query_keys(version: Version) -> frozenset[str]:
    """The query parameters a list takes once unknown ones are refused (2.75)."""
    if version >= V(2, 102):  # 2.102: name filter
        return _LIST_QUERY_KEYS | {"name"}
    return _LIST_QUERY_KEYS


def strict_list_query(version: Version) -> bool:
    """2.75: unknown query parameters are refused (ignored before)."""
    return version >= V(2, 75)


def sort_keys(version: Version, known: frozenset[str] | set[str]) -> set[str]:
    """``sort_key`` values accepted: ``known`` (the columns), without rxtx_factor from 2.102."""
    if version >= V(2, 102):  # 2.102: rxtx_factor gone
        return set(known) - {"rxtx_factor"}
    return set(known)


# --- extra spec values -------------------------------------------------------------------

_ENUMS = {
    "hw:cpu_policy": ("shared", "dedicated", "mixed"),
    "hw:cpu_thread_policy": ("prefer", "isolate", "require"),
    "hw:mem_encryption": ("true", "false", "True", "False", "1", "0", "yes", "no"),
    "hw_rng:allowed": ("true", "false", "True", "False", "1", "0", "yes", "no"),
    "hw:watchdog_action": ("none", "pause", "poweroff", "reset", "disabled"),
}
_GROUPED = re.compile(r"^(trait|resources)(\d*|_[a-zA-Z0-9_-]+)$")
_INTEGERS = {
    "hw:numa_nodes": 1,
    "hw:cpu_sockets": 1,
    "hw:cpu_cores": 1,
    "hw:cpu_threads": 1,
    "hw:cpu_max_sockets": 1,
    "hw:cpu_max_cores": 1,
    "hw:cpu_max_threads": 1,
}


def check_extra_specs(version: Version, specs: dict[str, str]) -> None:
    """Extra specs about to be set: from 2.86 the well-known ones are validated."""
    if version >= V(2, 86):  # 2.86: known namespaces are validated
        _validate_known_specs(specs)


def _validate_known_specs(specs: dict[str, str]) -> None:
    """2.86: values of the well-known extra specs must make sense (unknown keys pass)."""
    for key, value in specs.items():
        ns, _, rest = key.partition(":")
        group_ns = _GROUPED.match(ns)
        if key in _ENUMS and value not in _ENUMS[key]:
            raise BadRequest(
                f"Validation failed; {key} must be one of {', '.join(_ENUMS[key])}, got '{value}'."
            )
        if key in _INTEGERS and not (value.isdigit() and int(value) >= _INTEGERS[key]):
            raise BadRequest(
                f"Validation failed; {key} must be an integer >= {_INTEGERS[key]}, got '{value}'."
            )
        if group_ns and group_ns.group(1) == "trait" and value not in ("required", "forbidden"):
            raise BadRequest(f"Validation failed; {key} must be 'required' or 'forbidden', got '{value}'.")
        if group_ns and group_ns.group(1) == "resources" and rest and not value.isdigit():
            raise BadRequest(f"Validation failed; {key} must be a non-negative integer, got '{value}'.")

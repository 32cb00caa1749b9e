"""Which image attributes a client may set, and the checks on their values (Glance v2 rules).

Read-only and reserved attributes answer 403; a value of the wrong type or outside its
set answers 400. Anything that is not a core attribute is a free-form property whose value
must be a string.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from novalite.db.models.image import VISIBILITIES
from novalite.errors import BadRequest, Forbidden, RequestTooLarge

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
READ_ONLY = frozenset(
    {
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "created_at",
        "updated_at",
        "size",
        "virtual_size",
        "status",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
    }
)
RESERVED = frozenset({"location", "deleted", "deleted_at"})
MAX_NAME = 255
MAX_PROPERTY_VALUE = 65535
MAX_TAGS = 128


def _enum(field: str, choices: tuple[str, ...], *, nullable: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or value not in choices:
            raise BadRequest(f"Invalid value '{value}' for '{field}': must be one of {', '.join(choices)}")
        return value

    return check


def _bool(field: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid value '{value}' for '{field}': must be a boolean")
        return value

    return check


def _non_negative_int(field: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
            raise BadRequest(f"Invalid value '{value}' for '{field}': must be a non-negative integer")
        return value

    return check


def _name(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise BadRequest(f"Invalid value for 'name': must be a string of at most {MAX_NAME} characters")
    return value


def _owner(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or len(value) > 64):
        raise BadRequest("Invalid value for 'owner': must be a string of at most 64 characters")
    return value


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_NAME:
        raise BadRequest(f"Invalid tag: must be a non-empty string of at most {MAX_NAME} characters")
    return tag


def check_tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("Invalid value for 'tags': must be an array of strings")
    tags = [check_tag(t) for t in value]
    if len(set(tags)) > MAX_TAGS:
        raise RequestTooManyTags()
    return sorted(set(tags))


class RequestTooManyTags(RequestTooLarge):
    def __init__(self) -> None:
        super().__init__(f"Maximum number of tags ({MAX_TAGS}) exceeded")


CORE: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "visibility": _enum("visibility", VISIBILITIES, nullable=False),
    "protected": _bool("protected"),
    "os_hidden": _bool("os_hidden"),
    "disk_format": _enum("disk_format", DISK_FORMATS, nullable=True),
    "container_format": _enum("container_format", CONTAINER_FORMATS, nullable=True),
    "min_ram": _non_negative_int("min_ram"),
    "min_disk": _non_negative_int("min_disk"),
    "owner": _owner,
    "tags": check_tags,
}


def check_writable(field: str, *, creating: bool = False) -> None:
    """403 for attributes no client may set; ``id`` may be chosen only on create."""
    if field in RESERVED or field.startswith("os_glance"):
        raise Forbidden(f"Attribute '{field}' is reserved.")
    if field in READ_ONLY or (field == "id" and not creating):
        raise Forbidden(f"Attribute '{field}' is read-only.")


def check_id(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad_id(value)
    except ValueError:
        return _bad_id(value)


def _bad_id(value: Any) -> str:
    raise BadRequest(f"Invalid value '{value}' for 'id': must be a UUID")


def check_property(key: str, value: Any) -> str:
    if not key or len(key) > MAX_NAME:
        raise BadRequest(f"Property names must be 1 to {MAX_NAME} characters long")
    if not isinstance(value, str):
        raise BadRequest(f"Invalid value for property '{key}': must be a string")
    if len(value) > MAX_PROPERTY_VALUE:
        raise BadRequest(f"Invalid value for property '{key}': too long")
    return value


def check_value(field: str, value: Any) -> Any:
    """Validate one attribute's value (core checker or free-form property)."""
    checker = CORE.get(field)
    if checker is not None:
        return checker(value)
    return check_property(field, value)

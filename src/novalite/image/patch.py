"""Glance's JSON-patch dialect (``application/openstack-images-v2.1-json-patch``).

The body is a list of ``{"op": "add"|"replace"|"remove", "path": "/<attr>", "value": ...}``
(or the older ``{"add": "/<attr>", "value": ...}`` of the v2.0 media type, which Tempest sends);
``parse_patch`` checks its shape (400) and returns ``Change`` values that the service applies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from novalite.api.common import reject_nul_in
from novalite.errors import BadRequest, UnsupportedMediaType

PATCH_MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
OPS = ("add", "replace", "remove")


@dataclass(frozen=True)
class Change:
    op: str
    attr: str
    value: Any = None


def check_media_type(content_type: str | None) -> None:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(f"Unsupported Content-Type: {ctype or 'none'}. Use {PATCH_MEDIA_TYPES[0]}")


def _decode_path(path: Any) -> str:
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.endswith("/")
        or "//" in path
        or path == "/"
    ):
        raise BadRequest(
            "Json path should start with a '/', end with no '/', no 2 subsequent '/' are allowed."
        )
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise BadRequest(f"Invalid path {path}: nested attributes are not supported")
    return parts[0].replace("~1", "/").replace("~0", "~")


def _op_and_path(item: dict[str, Any]) -> tuple[Any, Any]:
    """v2.1 style ``{"op": "add", "path": "/x"}``, or v2.0 style ``{"add": "/x"}`` (Tempest sends it)."""
    if "op" in item:
        if "path" not in item:
            raise BadRequest("Unable to find 'path' in JSON Schema change")
        return item["op"], item["path"]
    named = [op for op in OPS if op in item]
    if len(named) != 1:
        raise BadRequest(f"Unable to find an operation in JSON Schema change. Use one of {', '.join(OPS)}.")
    return named[0], item[named[0]]


def _parse_one(item: Any) -> Change:
    if not isinstance(item, dict):
        raise BadRequest("Operations must be JSON objects.")
    op, path = _op_and_path(item)
    if op not in OPS:
        raise BadRequest(f"Invalid operation: '{op}'. Operation must be one of {', '.join(OPS)}.")
    attr = _decode_path(path)
    if op != "remove":
        if "value" not in item:
            raise BadRequest("Unable to find 'value' in JSON Schema change")
        return Change(op=op, attr=attr, value=item["value"])
    return Change(op=op, attr=attr)


def parse_patch(raw: bytes) -> list[Change]:
    """Decode and check a PATCH body (the media type was checked by ``check_media_type``)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("Malformed request body") from None
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    reject_nul_in(body)  # read raw, not through json_body: the same NUL rule here
    return [_parse_one(item) for item in body]

"""What Keystone's route modules (``routes``: tokens, projects, users, roles; ``routes_catalog``:
services, endpoints, regions) answer alike: a request body's one object and a list's links."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from novalite.api.common import runtime
from novalite.errors import BadRequest


def v3_base(request: Request) -> str:
    return f"{runtime(request).public_url}/identity/v3"


def body_object(body: Any, key: str) -> dict[str, Any]:
    """``body[key]``, which must be an object (Keystone's 400 otherwise)."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Expecting to find {key} in request body.")
    return body[key]  # type: ignore[no-any-return]


def list_links(request: Request, collection: str) -> dict[str, Any]:
    """A list's ``links``: all of it is on one page."""
    return {"self": f"{v3_base(request)}/{collection}", "previous": None, "next": None}

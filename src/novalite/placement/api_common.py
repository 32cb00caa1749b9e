"""What every Placement REST handler shares: microversion negotiation, admin check, bodies,
query parsing and links.

``OpenStack-API-Version: placement X.Y`` (or ``latest``) is negotiated per request by
``PlacementRoute``; the answer (errors included) echoes it with ``Vary``. A version out of
range is a 406 whose error carries ``min_version``/``max_version`` (osc-placement reads
``max_version`` to fall back); a malformed one is a 400. No header means 1.0. ``Location``
headers are absolute URLs (osc-placement follows them as they are).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from novalite.api.common import context
from novalite.api.faults import error_body
from novalite.api.microversion import Version
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound, NovaliteError

MIN_VERSION = Version(1, 0)
MAX_VERSION = Version(1, 39)
PREFIX = "/placement"
_FORMAT = re.compile(r"^([1-9]\d*)\.(\d+)$")
_VERSION_KEY = "placement_version"


def _requested(request: Request) -> str | None:
    for item in request.headers.get("openstack-api-version", "").split(","):
        parts = item.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "placement":
            return parts[1].strip()
    return None


def _negotiate(raw: str | None, request_id: str = "") -> Version | JSONResponse:
    if raw is None:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    m = _FORMAT.match(raw)
    if not m:
        body = error_body(PREFIX, 400, f"invalid version string: {raw}", "BadRequest", request_id)
        return JSONResponse(body, status_code=400)
    version = Version(int(m.group(1)), int(m.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        body = error_body(PREFIX, 406, f"Unacceptable version header: {raw}", "NotAcceptable", request_id)
        body["errors"][0].update(min_version=str(MIN_VERSION), max_version=str(MAX_VERSION))
        return JSONResponse(body, status_code=406)
    return version


class PlacementRoute(APIRoute):
    """An APIRoute that negotiates the placement microversion and echoes it on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            negotiated = _negotiate(_requested(request), request.scope.get("state", {}).get("request_id", ""))
            if isinstance(negotiated, JSONResponse):
                return negotiated
            request.scope.setdefault("state", {})[_VERSION_KEY] = negotiated
            echo = {"openstack-api-version": f"placement {negotiated}", "vary": "openstack-api-version"}
            try:
                response = await original(request)
            except NovaliteError as exc:
                exc.headers.update(echo)
                raise
            response.headers.update(echo)
            location = response.headers.get("location")
            if location and location.startswith("/"):  # absolute, as placement's web server answers
                response.headers["location"] = f"{request.url.scheme}://{request.url.netloc}{location}"
            return response

        return handler


def version(request: Request) -> Version:
    v: Version = request.scope.get("state", {}).get(_VERSION_KEY, MIN_VERSION)
    return v


def require_version(request: Request, minimum: Version) -> None:
    """Routes that do not exist before ``minimum`` are a plain 404."""
    if version(request) < minimum:
        raise NotFound("The resource could not be found.")


def admin(request: Request, rule: str) -> RequestContext:
    """Placement is admin-only: 401 without a token, 403 for anyone but an admin."""
    ctx = context(request)
    ctx.require_admin(f"placement:{rule}")
    return ctx


def is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def provider_url(uuid: str, suffix: str = "") -> str:
    return f"{PREFIX}/resource_providers/{uuid}{suffix}"


def query(request: Request, allowed: set[str]) -> dict[str, list[str]]:
    """The query parameters (each a list of values); 400 for unknown ones, as placement."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise BadRequest(
                f"Invalid query string parameters: Additional properties are not allowed "
                f"('{key}' was unexpected)"
            )
        params.setdefault(key, []).append(value)
    return params


def created(body: Any, location: str, *, with_body: bool = True) -> Response:
    if not with_body:
        return Response(status_code=201, headers={"location": location})
    return JSONResponse(body, status_code=201, headers={"location": location})


def no_content() -> Response:
    return Response(status_code=204)

"""Request plumbing for the Cinder subset: microversion negotiation (``OpenStack-API-Version:
volume 3.x``), the optional project id in the URL, JSON responses carrying the version
headers, and the small type checks Cinder applies to bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from novalite.api.common import request_context
from novalite.api.microversion import V, Version
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotAcceptable, NotFound

MIN_VERSION = V(3, 0)
MAX_VERSION = V(3, 70)


def negotiate(request: Request) -> Version:
    raw = None
    for item in request.headers.get("openstack-api-version", "").split(","):
        parts = item.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "volume":
            raw = parts[1].strip()
    if not raw:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    version = Version.parse(raw)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {MIN_VERSION} and maximum "
            f"is {MAX_VERSION}.",
            kind="InvalidAPIVersion",
        )
    return version


@dataclass(frozen=True)
class VolumeRequest:
    ctx: RequestContext
    version: Version


def volume_request(request: Request, ctx: RequestContext = Depends(request_context)) -> VolumeRequest:
    """FastAPI dependency: token, microversion, and the URL's project id (if any) matching the token."""
    version = negotiate(request)
    url_project = request.path_params.get("url_project_id")
    if url_project and url_project != ctx.project_id and not ctx.is_admin:
        raise BadRequest("Malformed request url", kind="MalformedRequestUrl")
    return VolumeRequest(ctx=ctx, version=version)


def require(version: Version, minimum: Version) -> None:
    """APIs introduced by a microversion are 404 below it, as in Cinder."""
    if version < minimum:
        raise NotFound("The resource could not be found.", kind="VersionNotFoundForAPIMethod")


def respond(
    vr: VolumeRequest, body: Any, status: int = 200, background: BackgroundTask | None = None
) -> JSONResponse:
    return JSONResponse(
        body,
        status_code=status,
        background=background,
        headers={"OpenStack-API-Version": f"volume {vr.version}", "Vary": "OpenStack-API-Version"},
    )


def add_count(request: Request, vr: VolumeRequest, body: dict[str, Any], total: int) -> dict[str, Any]:
    """A list's ``count`` of every match (all pages) when asked with ``?with_count=true`` (3.45)."""
    if vr.version >= V(3, 45) and boolean("with_count", request.query_params.get("with_count", "false")):
        body["count"] = total
    return body


def only(body: dict[str, Any], allowed: set[str], member: str) -> None:
    """An update body's keys: some, and only ``allowed`` ones (Cinder's schema error otherwise)."""
    unknown = sorted(set(body) - allowed)
    if unknown or not body:
        raise BadRequest(
            f"Invalid input for field/attribute {member}. Additional properties are not allowed "
            f"({', '.join(unknown)} were unexpected)",
            kind="ValidationError",
        )


def section(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Missing required element '{key}' in request body.", kind="MissingRequiredElement")
    return body[key]


def text(name: str, value: Any, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is not of type 'string'",
            kind="ValidationError",
        )
    if len(value) > limit:
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is too long",
            kind="ValidationError",
        )
    return value


def integer(name: str, value: Any, minimum: int = 1, maximum: int = 2**31 - 1) -> int:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        number = int(value)
    except ValueError:
        raise BadRequest(
            f"Invalid input received: {name} must be an integer and greater than {minimum - 1}.",
            kind="InvalidInput",
        ) from None
    if not minimum <= number <= maximum:
        raise BadRequest(
            f"Invalid input received: {name} must be an integer and greater than {minimum - 1}.",
            kind="InvalidInput",
        )
    return number


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise BadRequest(f"Invalid input received: {name} must be a boolean, got '{value}'.", kind="InvalidInput")


def metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input received: metadata must be a dictionary.", kind="InvalidInput")
    for key, item in value.items():
        if not key or len(key) > 255 or not isinstance(item, str) or len(item) > 255:
            raise BadRequest(
                "Invalid input received: metadata keys must be 1-255 characters and values strings "
                "of at most 255 characters.",
                kind="InvalidInput",
            )
    return {str(k): v for k, v in value.items()}

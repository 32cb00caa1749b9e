"""Render NovaliteError in each service's own error envelope; one place for all of them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from novalite import errors
from novalite.db import base as db_base

LOG = logging.getLogger(__name__)

NOVA_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


def nova_fault_body(status: int, message: str) -> dict[str, Any]:
    return {NOVA_FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}


def keystone_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "title": HTTP_TITLES.get(status, "Error"), "message": message}}


# What keystonemiddleware (``delay_auth_decision = false``, as Nova, Neutron, Cinder and Placement
# run it) answers for a missing, bad, expired or revoked token, before the service sees the request
# (docs: ../shared/spec/policy-and-tokens.md §6): Keystone's envelope with its generic message and a
# ``WWW-Authenticate`` naming the Identity endpoint. Glance decides later (``delay_auth_decision =
# true``): its 401 keeps Glance's own body.
TOKEN_REQUIRED = "The request you have made requires authentication."
_KEYSTONE_SHAPED_401 = ("/compute", "/network", "/volume", "/placement")


def www_authenticate(public_url: str) -> str:
    return f'Keystone uri="{public_url}/identity"'


def error_body(
    path: str, status: int, message: str, kind: str, request_id: str = "", *, authenticated: bool = False
) -> dict[str, Any]:
    """``authenticated``: the request's token was accepted, so a 401 is the service's own (Nova's
    console token lookup below 2.31), not keystonemiddleware's."""
    if path.startswith("/identity"):
        return keystone_body(status, message)
    if status == 401 and not authenticated and path.startswith(_KEYSTONE_SHAPED_401):
        return keystone_body(401, TOKEN_REQUIRED)
    if path.startswith("/network"):
        return {"NeutronError": {"type": kind, "message": message, "detail": ""}}
    if path.startswith("/placement"):
        # placement error codes (1.23) are "placement.<name>"; other kinds are undefined codes
        code = kind if kind.startswith("placement.") else "placement.undefined_code"
        return {
            "errors": [
                {
                    "status": status,
                    "title": HTTP_TITLES.get(status, "Error"),
                    "detail": message,
                    "code": code,
                    "request_id": request_id,
                }
            ]
        }
    if path.startswith("/image"):
        return {"code": status, "title": kind, "message": message}
    return nova_fault_body(status, message)


def _render(
    request: Request, status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    state = request.scope.get("state", {})
    rid = state.get("request_id", "")
    path = request.url.path
    authenticated = state.get("context") is not None
    if status == 401 and not authenticated and not path.startswith("/identity"):
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None and not (headers and "WWW-Authenticate" in headers):
            headers = {**(headers or {}), "WWW-Authenticate": www_authenticate(runtime.public_url)}
    body = error_body(path, status, message, kind, rid, authenticated=authenticated)
    return JSONResponse(body, status_code=status, headers=headers)


async def novalite_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.NovaliteError)
    if exc.status >= 500:
        LOG.error("request failed: %s", exc.message)
    return _render(request, exc.status, exc.message, exc.kind, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Error"
    if exc.status_code == 404:
        message = "The resource could not be found."
    elif exc.status_code == 405:
        message = "The method is not allowed for the requested URL."
    return _render(request, exc.status_code, message, "HTTPError")


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return _render(request, 400, f"Invalid input: {exc}", "ValidationError")


DATABASE_UNAVAILABLE = "The database is unavailable; retry shortly."


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """The database server cannot be reached (stopped, restarting): a 503 with Retry-After in the
    service's envelope; the pool reconnects when it is back. Any other database error is a 500."""
    if not db_base.unavailable(exc):
        return await unexpected_error_handler(request, exc)
    LOG.error("request failed, the database is unavailable: %s", str(exc).splitlines()[0])
    retry = {"Retry-After": str(db_base.UNAVAILABLE_RETRY_AFTER)}
    return _render(request, 503, DATABASE_UNAVAILABLE, "DatabaseUnavailable", retry)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if db_base.unavailable(exc):  # raised outside the routes (a middleware): no handler matched
        return await database_error_handler(request, exc)
    LOG.exception("unexpected error on %s %s", request.method, request.url.path)
    return _render(
        request,
        500,
        "Unexpected API Error. Please report this at the novalite issue tracker "
        f"and attach the novalite API log if possible.\n<class '{type(exc).__name__}'>",
        "Internal",
    )


def install(app: Any) -> None:
    app.add_exception_handler(errors.NovaliteError, novalite_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)

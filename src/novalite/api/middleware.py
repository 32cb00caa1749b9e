"""Pure ASGI middleware: request ids on every response, compute URL rewriting and
microversion negotiation, and a last-resort 500 in the right envelope."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from novalite.api.faults import DATABASE_UNAVAILABLE, error_body
from novalite.api.microversion import negotiate, version_headers
from novalite.db.base import UNAVAILABLE_RETRY_AFTER, unavailable
from novalite.errors import BadRequest, NovaliteError
from novalite.randomness import uuid4

LOG = logging.getLogger(__name__)
Scope = dict[str, Any]

# /compute/v2.1/<project_id>/... : the project id segment is optional (§0.1)
_PROJECT_SEGMENT = re.compile(r"^/compute/(v2\.1|v2)/([0-9a-fA-F]{32}|[0-9a-fA-F-]{36})(/.*)?$")
_VERSION_HEADERS = ("openstack-api-version", "x-openstack-nova-api-version")
NUL_IN_QUERY = "Invalid input for query parameters: NUL characters are not allowed."


def decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers as text (UTF-8), lower-case names. A header that is not valid text is
    left out, except a microversion header: that is a malformed version (400, as Nova answers a
    version string it cannot parse). A token that is not valid text reaches ``api.common.context``
    as Starlette decodes it (latin-1) and fails to decrypt there: 401."""
    try:
        return {k.decode().lower(): v.decode() for k, v in raw}
    except UnicodeDecodeError:
        pass
    headers: dict[str, str] = {}
    for k, v in raw:
        try:
            name = k.decode().lower()
        except UnicodeDecodeError:
            continue
        try:
            headers[name] = v.decode()
        except UnicodeDecodeError:
            if name in _VERSION_HEADERS:
                text = v.decode(errors="replace")
                raise BadRequest(
                    f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
                ) from None
    return headers


class RequestContextMiddleware:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = f"req-{uuid4()}"
        state["request_id"] = request_id
        path: str = scope["path"]
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-openstack-request-id", request_id.encode())]

        # PostgreSQL text cannot hold NUL: no URL with one reaches a query (bodies: api.common.json_body).
        # No resource is named with one (404, as api.common.reject_nul answers); a query parameter is 400.
        if "\x00" in path:
            await self._error(send, path, 404, "The resource could not be found.", "NotFound", extra_headers)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await self._error(send, path, 400, NUL_IN_QUERY, "HTTPBadRequest", extra_headers)
            return

        if path.startswith("/compute"):
            extra_headers.append((b"x-compute-request-id", request_id.encode()))
            m = _PROJECT_SEGMENT.match(path)
            if m:
                state["url_project_id"] = m.group(2)
                scope["path"] = f"/compute/{m.group(1)}{m.group(3) or ''}"
                scope["raw_path"] = scope["path"].encode()
                path = scope["path"]
            if path.startswith("/compute/v2.1/") or path == "/compute/v2.1":
                try:
                    version = negotiate(decode_headers(scope.get("headers", [])))
                except NovaliteError as exc:
                    await self._error(send, path, exc.status, exc.message, exc.kind, extra_headers)
                    return
                state["api_version"] = version
                extra_headers.extend(version_headers(version))

        started = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + extra_headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if unavailable(exc) and not started:  # the database is down: 503, try again later
                LOG.error("%s %s failed, the database is unavailable", scope.get("method"), path)
                retry = [(b"retry-after", str(UNAVAILABLE_RETRY_AFTER).encode())]
                await self._error(
                    send, path, 503, DATABASE_UNAVAILABLE, "DatabaseUnavailable", extra_headers + retry
                )
                return
            LOG.exception("unhandled error on %s %s", scope.get("method"), path)
            if not started:
                await self._error(send, path, 500, "Unexpected API Error.", "Internal", extra_headers)

    @staticmethod
    async def _error(
        send: Any, path: str, status: int, message: str, kind: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = json.dumps(error_body(path, status, message, kind)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                + headers,
            }
        )
        await send({"type": "http.response.body", "body": body})

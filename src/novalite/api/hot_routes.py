"""A direct way in for the request that comes by the hundred per second: POST /servers.

FastAPI takes every request through its own layers before the route's function runs: exception
and exit-stack middleware, the router's scan of the route list, the route's dependency solving and
parameter extraction, telemetry hooks. For a create that was ~20 % of the API process's CPU
(bench/README.md, round 7). ``HotRoutes`` sits inside ``RequestContextMiddleware`` (so request ids,
the project-id URL form and microversion negotiation are already done) and sends a request whose
method and path are in its table straight to the endpoint; every other request goes on to FastAPI.

An endpoint here is ``async def endpoint(request) -> Response`` and raises ``NovaliteError`` as
a route does; it is rendered by the handler FastAPI uses (``api.faults``), and any other error
reaches ``RequestContextMiddleware`` as it would from the router, so a request answers the same
either way (``tests/functional/test_hot_routes.py`` compares them).
The FastAPI route stays registered: it documents the route and serves ``create_app(...,
hot_routes=False)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from novalite.api import faults
from novalite.errors import NovaliteError

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    def __init__(self, app: Any, routes: Mapping[tuple[str, str], Endpoint]):
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        endpoint = (
            self.routes.get((scope.get("method", ""), scope.get("path", "")))
            if scope["type"] == "http"
            else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except NovaliteError as exc:  # as FastAPI's exception middleware renders it
            response = await faults.novalite_error_handler(request, exc)
        # any other error goes up to RequestContextMiddleware, as it does from FastAPI's router
        await response(scope, receive, send)

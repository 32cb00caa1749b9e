"""The one ASGI application: every service's router under its path prefix."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from novalite.api import faults
from novalite.api.hot_routes import HotRoutes
from novalite.api.middleware import RequestContextMiddleware
from novalite.runtime import Runtime

LOG = logging.getLogger(__name__)

# Modules whose ``start(runtime) -> stop`` runs when the app starts (messaging, conductor,
# compute agents...), in this order; the returned callables run in reverse on shutdown.
START_MODULES = [
    "novalite.services.startup",
]
StartHook = Callable[[Runtime], Callable[[], None]]


def start_hooks() -> list[StartHook]:
    return [importlib.import_module(name).start for name in START_MODULES]


def _routers() -> list[tuple[APIRouter, tuple[str, str, str] | None]]:
    """(router, catalog entry) for every service, in the order they are matched."""
    from novalite.compute_api import routes as compute_routes
    from novalite.compute_api import versions as compute_versions
    from novalite.identity import routes as identity_routes

    entries: list[tuple[APIRouter, tuple[str, str, str] | None]] = [
        (identity_routes.router, ("identity", "keystone", "/identity")),
        (compute_versions.router, ("compute", "nova", "/compute/v2.1")),
    ]
    entries.extend((r, None) for r in compute_routes.routers())
    entries.extend(compute_routes.api_routers())
    entries.append((compute_versions.fallback, None))
    return entries


def _match_order(routers: list[APIRouter]) -> list[APIRouter]:
    """The routers in the order requests are matched against them: the servers router (POST
    /servers and the GET /servers polls, the hot requests) first, then the rest as listed. Matching
    walks every route until one fits, and identity's 33 routes came first. No other router has a
    ``/compute/v2.1/servers`` path, so no answer changes."""
    from novalite.compute_api import servers

    return sorted(routers, key=lambda r: r is not servers.router)


def _no_lifespan(lifespan: Any) -> bool:
    """True for a router's lifespan that does nothing: the default one with no event handlers, or
    FastAPI's merge of two such (what ``include_router`` leaves on the including router)."""
    from fastapi.routing import _DefaultLifespan

    if isinstance(lifespan, _DefaultLifespan):
        router = lifespan._router
        return not router.on_startup and not router.on_shutdown
    merged = getattr(lifespan, "__wrapped__", None)
    if merged is None or not merged.__qualname__.endswith("_merge_lifespan_context.<locals>.merged_lifespan"):
        return False
    cells = dict(
        zip(merged.__code__.co_freevars, (c.cell_contents for c in merged.__closure__ or ()), strict=True)
    )
    return _no_lifespan(cells.get("original_context")) and _no_lifespan(cells.get("nested_context"))


def _plain(router: APIRouter) -> bool:
    """True when including ``router`` adds nothing to its routes: its decorators already gave each route
    the router's prefix, dependencies, response class, content-type and body-size settings, and it
    has no form limits, event handlers or lifespan of its own."""
    return (
        not router.form_limits
        and not router.on_startup
        and not router.on_shutdown
        and router.max_body_size is None
        and _no_lifespan(router.lifespan_context)
    )


def _default(value: Any, expected: Any) -> bool:
    from fastapi.datastructures import DefaultPlaceholder

    return isinstance(value, DefaultPlaceholder) and value.value is expected


def _flat_routes(router: APIRouter) -> list[Any]:
    """``router``'s routes, with the routers it includes with no prefix, dependencies or settings of
    their own replaced by their routes (recursively), in the same order."""
    from fastapi.responses import JSONResponse
    from fastapi.routing import _IncludedRouter

    out: list[Any] = []
    for route in router.routes:
        if isinstance(route, _IncludedRouter):
            ctx = route.include_context
            if (
                not ctx.prefix
                and not ctx.dependencies
                and ctx.max_body_size is None
                and not ctx.form_limits
                and ctx.dependency_overrides_provider is None
                and _plain(route.original_router)
                and _default(ctx.default_response_class, JSONResponse)
                and _default(ctx.strict_content_type, True)
            ):
                out.extend(_flat_routes(route.original_router))
                continue
        out.append(route)
    return out


def _include(app: FastAPI, router: APIRouter) -> None:
    """``app.include_router(router)`` without FastAPI building every route a second time.

    FastAPI wraps an included router and, at the first request that walks past it, rebuilds every
    route of it for the inclusion (dependency analysis and pydantic adapters again: seconds of CPU
    spread over the first requests after a start; bench/README.md, "Costs behind the code's
    choices"). Our routers are included with no prefix and
    no settings, so that copy would be identical to the route the decorator built: the routes go
    straight into the app's route list, in the same order, and are matched the same way. (Routers
    included with a prefix or dependencies of their own stay wrapped, as FastAPI does it.)
    """
    if not _plain(router):
        app.include_router(router)
        return
    app.router.routes.extend(_flat_routes(router))
    mark = getattr(app.router, "_mark_routes_changed", None)
    if mark is not None:
        mark()


def create_app(
    runtime: Runtime,
    *,
    start_background: bool = True,
    on_started: Callable[[], None] | None = None,
    hot_routes: bool = True,
) -> FastAPI:
    """The application; ``on_started`` is called once the background services have started.
    ``hot_routes=False``: POST /servers too goes through FastAPI's router (``api.hot_routes``)."""
    stops: list[Callable[[], None]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_background:
            for hook in start_hooks():
                stops.append(hook(runtime))
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            from novalite.compute_api.servers import CREATES

            CREATES.stop()  # creates already queued finish (and reach the conductor) first
            for stop in reversed(stops):
                try:
                    stop()
                except Exception:  # pragma: no cover - best effort on shutdown
                    LOG.exception("error while stopping a background service")
            stops.clear()

    app = FastAPI(title="novalite", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.runtime = runtime
    faults.install(app)
    runtime.catalog.clear()
    entries = _routers()
    for _router, entry in entries:
        if entry is not None and entry not in runtime.catalog:
            runtime.catalog.append(entry)
    for router in _match_order([r for r, _ in entries]):
        _include(app, router)
    from novalite.api import openapi

    _include(app, openapi.router)  # GET /openapi/{service}.json: each service's OpenAPI document
    from novalite.compute_api import consoles

    # the serial console proxy (a websocket; serial console URLs point at it)
    app.add_api_websocket_route(consoles.SERIAL_PROXY_PATH, consoles.serial_console_proxy)
    from novalite.compute_api import servers

    servers.warm_up()
    if hot_routes:
        app.add_middleware(HotRoutes, routes={("POST", "/compute/v2.1/servers"): servers.create_direct})
    app.add_middleware(RequestContextMiddleware)  # added last: the outermost of the two
    return app


def start_in_process(runtime: Runtime) -> Callable[[], None]:
    """Start background hooks outside ASGI lifespan (tests using TestClient without context)."""
    stops = [hook(runtime) for hook in start_hooks()]

    def stop() -> None:
        for s in reversed(stops):
            s()

    return stop


def build_runtime(settings: Any) -> Runtime:
    from novalite.db.base import Database
    from novalite.identity.tokens import TokenProvider
    from novalite.runtime import load_token_key

    db = Database(settings.effective_database_url)
    tokens = TokenProvider(load_token_key(db, settings), settings.token_ttl)
    return Runtime(settings=settings, db=db, tokens=tokens)

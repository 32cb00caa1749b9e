"""The one ASGI application: every service's router under its path prefix."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from novalite.api import faults
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
    from novalite.compute_api.routes import _load

    out = []
    for name in START_MODULES:
        mod = _load(name)
        if mod is not None:
            out.append(mod.start)  # type: ignore[attr-defined]
    return out


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
    entries.extend(compute_routes.service_routers())
    entries.append((compute_versions.fallback, None))
    return entries


def create_app(runtime: Runtime, *, start_background: bool = True) -> FastAPI:
    stops: list[Callable[[], None]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_background:
            for hook in start_hooks():
                stops.append(hook(runtime))
        try:
            yield
        finally:
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
    for router, entry in _routers():
        app.include_router(router)
        if entry is not None and entry not in runtime.catalog:
            runtime.catalog.append(entry)
    app.add_middleware(RequestContextMiddleware)
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
    tokens = TokenProvider(load_token_key(db), settings.token_ttl)
    return Runtime(settings=settings, db=db, tokens=tokens)

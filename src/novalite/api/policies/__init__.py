"""One policy table per service: every route's upstream rule and its default check (data in
``compute``, ``image``, ``network``, ``volume``, ``placement``, ``identity``, and ``documents``
for novalite's own OpenAPI documents; the vocabulary in ``base``).
tests/unit/test_policy_coverage.py fails for a route with no rule and for a rule with no route;
tests/functional/test_authorization_table.py sends every route as every persona.

``TABLE`` is all six merged, keyed by (method, path template as FastAPI registers it), Block
Storage's routes under both their forms. ``app_routes`` lists an application's routes the same
way; ``api.policy`` enforces the table from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from novalite.api.policies import compute, documents, identity, image, network, placement, volume
from novalite.api.policies.base import REQUIRED_ROLES, WRITER_ROLES, Check, Rule, Table

__all__ = ["REQUIRED_ROLES", "SERVICES", "TABLE", "WRITER_ROLES", "Check", "Rule", "app_routes", "service_of"]

SERVICES: dict[str, Table] = {
    "identity": identity.RULES,
    "compute": compute.RULES,
    "image": image.RULES,
    "network": network.RULES,
    "volume": volume.RULES,
    "placement": placement.RULES,
    "openapi": documents.RULES,
}

VOLUME_PROJECT_PREFIX = "/volume/v3/{url_project_id}"


def _with_project_forms(table: Table) -> Table:
    """Block Storage's routes also under /volume/v3/{url_project_id}/... (not the version documents)."""
    out = dict(table)
    for (method, path), rule in table.items():
        if path.startswith("/volume/v3/") and path != "/volume/v3/":
            out[(method, VOLUME_PROJECT_PREFIX + path.removeprefix("/volume/v3"))] = rule
    return out


TABLE: Table = {
    key: rule
    for name, table in SERVICES.items()
    for key, rule in (_with_project_forms(table) if name == "volume" else table).items()
}


def service_of(path: str) -> str:
    """The service a path belongs to: its first segment ("compute", "network", ...)."""
    return path.lstrip("/").split("/", 1)[0]


def app_routes(routes: list[Any]) -> Iterator[tuple[str, str, Any]]:
    """(method, path template, endpoint) of every HTTP route in ``routes`` (an application's
    ``router.routes``), wrapped routers included (their routes as FastAPI serves them)."""
    from fastapi.routing import APIRoute, _IncludedRouter

    for route in routes:
        if isinstance(route, _IncludedRouter):
            for ctx in route.effective_route_contexts():
                for method in sorted(ctx.methods or ()):
                    yield method, ctx.path_format, ctx.endpoint
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods or ()):
                yield method, route.path_format, route.endpoint

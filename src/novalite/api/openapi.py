"""One OpenAPI 3.1 document per service, built from the app's routes and the request schemas.

GET /openapi/{service}.json (no token) answers the document of ``identity``, ``compute``,
``image``, ``network``, ``volume`` or ``placement``; GET /openapi lists them. Every route of the
app is in exactly one document (by its path prefix). A request body schema is the very object the
route validates with (imported here from the route's module, never copied); compute's is the
schema of the latest microversion, and the microversion header is a parameter. The schemas are
JSON Schema draft 4 (what ``api.common.validate`` checks against), so the documents name that
dialect in ``jsonSchemaDialect``. A route whose body has no schema gets ``{"type": "object"}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from novalite.errors import NotFound

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DOC_PREFIX = "/openapi"

# service -> (path prefix, title, the microversion header's service name or None)
SERVICES: dict[str, tuple[str, str, str | None]] = {
    "identity": ("/identity", "Identity (Keystone v3 subset)", None),
    "compute": ("/compute", "Compute (Nova v2.1)", "compute"),
    "image": ("/image", "Image (Glance v2 subset)", None),
    "network": ("/network", "Network (Neutron v2.0 subset)", None),
    "volume": ("/volume", "Block storage (Cinder v3 subset)", "volume"),
    "placement": ("/placement", "Placement", "placement"),
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
Schema = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One method of one app route, with its full path template (``{name}`` parameters)."""

    method: str
    path: str
    name: str

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)


def _walk(routes: Iterable[Any], prefix: str) -> Iterator[Operation]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # a router included with a prefix of its own (volume's v3)
            yield from _walk(included.routes, prefix + route.include_context.prefix)
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        endpoint = getattr(route, "endpoint", None)
        name = getattr(endpoint, "__name__", "route")
        for method in sorted(getattr(route, "methods", None) or ()):
            yield Operation(method, _PARAM.sub(r"{\1}", prefix + path), name)


def operations(app: FastAPI) -> list[Operation]:
    """Every (method, path) the app answers, once each, in match order; not the documents' own."""
    seen: set[tuple[str, str]] = set()
    out = []
    for op in _walk(app.router.routes, ""):
        if (op.method, op.path) in seen or op.path.startswith(DOC_PREFIX):
            continue
        seen.add((op.method, op.path))
        out.append(op)
    return out


def service_of(path: str) -> str | None:
    for service, (prefix, _, _) in SERVICES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def _any_of(*schemas: Schema) -> Schema:
    return {"anyOf": list(schemas)}


def _compute_bodies() -> dict[tuple[str, str], Callable[[], Schema]]:
    from novalite.api.microversion import MAX_VERSION as V
    from novalite.compute_api import (
        aggregates,
        images,
        interfaces,
        server_actions,
        server_groups,
        server_rebuild,
        server_snapshot,
        server_subresources,
        services,
        volume_attachments,
    )
    from novalite.compute_api.schemas import flavors, keypairs, servers

    c = "/compute/v2.1"
    return {
        ("POST", f"{c}/servers"): lambda: servers.create_schema(V),
        ("PUT", f"{c}/servers/{{server_id}}"): lambda: servers.update_schema(V),
        ("POST", f"{c}/servers/{{server_id}}/action"): lambda: _any_of(
            server_actions.REBOOT_SCHEMA,
            server_actions.LOCK_SCHEMA_273,
            server_snapshot.SCHEMA,
            server_snapshot.BACKUP_SCHEMA,
            server_rebuild.rebuild_schema(V),
            {  # every other action: one key, the action's name (server_actions.HANDLERS)
                "type": "object",
                "properties": {name: {} for name in server_actions.HANDLERS},
                "minProperties": 1,
                "maxProperties": 1,
            },
        ),
        ("POST", f"{c}/flavors"): lambda: flavors.create_schema(V),
        ("PUT", f"{c}/flavors/{{flavor_id}}"): lambda: flavors.UPDATE_SCHEMA,
        ("POST", f"{c}/flavors/{{flavor_id}}/action"): lambda: _any_of(
            *(flavors.access_action_schema(n) for n in flavors.ACCESS_ACTIONS)
        ),
        ("POST", f"{c}/flavors/{{flavor_id}}/os-extra_specs"): lambda: flavors.EXTRA_SPECS_SCHEMA,
        ("PUT", f"{c}/flavors/{{flavor_id}}/os-extra_specs/{{key}}"): lambda: flavors.EXTRA_SPEC_ITEM_SCHEMA,
        ("POST", f"{c}/os-keypairs"): lambda: keypairs.create_schema(V),
        ("POST", f"{c}/servers/{{server_id}}/metadata"): lambda: server_subresources.METADATA_BODY,
        ("PUT", f"{c}/servers/{{server_id}}/metadata"): lambda: server_subresources.METADATA_BODY,
        ("PUT", f"{c}/servers/{{server_id}}/metadata/{{key}}"): lambda: server_subresources.META_ITEM_BODY,
        ("PUT", f"{c}/servers/{{server_id}}/tags"): lambda: server_subresources.TAGS_BODY,
        ("POST", f"{c}/os-server-groups"): lambda: server_groups.create_schema(V),
        ("POST", f"{c}/os-aggregates"): lambda: aggregates.CREATE_SCHEMA,
        ("PUT", f"{c}/os-aggregates/{{agg_id}}"): lambda: aggregates.UPDATE_SCHEMA,
        ("POST", f"{c}/os-aggregates/{{agg_id}}/action"): lambda: _any_of(
            *aggregates.ACTION_SCHEMAS.values()
        ),
        ("PUT", f"{c}/os-services/{{service_id}}"): lambda: services.UPDATE_SCHEMA_253,
        ("POST", f"{c}/servers/{{server_id}}/os-interface"): lambda: interfaces.attach_schema(V),
        ("POST", f"{c}/servers/{{server_id}}/os-volume_attachments"): lambda: (
            volume_attachments.attach_schema(V)
        ),
        ("PUT", f"{c}/servers/{{server_id}}/os-volume_attachments/{{volume_id}}"): (
            lambda: volume_attachments.update_schema(V)
        ),
        ("POST", f"{c}/images/{{image_id}}/metadata"): lambda: images.METADATA_ALL_SCHEMA,
        ("PUT", f"{c}/images/{{image_id}}/metadata"): lambda: images.METADATA_ALL_SCHEMA,
        ("PUT", f"{c}/images/{{image_id}}/metadata/{{key}}"): lambda: images.METADATA_ITEM_SCHEMA,
    }


def _other_bodies() -> dict[tuple[str, str], Callable[[], Schema]]:
    from novalite.identity import schemas as identity
    from novalite.placement import api_allocations, api_inventories, api_providers
    from novalite.placement.api_common import MAX_VERSION as P

    i, p = "/identity/v3", "/placement/resource_providers/{uuid}"
    return {
        ("POST", f"{i}/auth/tokens"): lambda: identity.AUTH_TOKENS,
        ("POST", f"{i}/projects"): lambda: identity.PROJECT_CREATE,
        ("PATCH", f"{i}/projects/{{project_id}}"): lambda: identity.PROJECT_UPDATE,
        ("POST", f"{i}/users"): lambda: identity.USER_CREATE,
        ("PATCH", f"{i}/users/{{user_id}}"): lambda: identity.USER_UPDATE,
        ("POST", f"{i}/roles"): lambda: identity.ROLE_CREATE,
        ("POST", "/placement/resource_providers"): lambda: api_providers._create_schema(P),
        ("PUT", p): lambda: api_providers._create_schema(P),
        ("PUT", f"{p}/inventories"): lambda: api_inventories.PUT_ALL_SCHEMA,
        ("POST", f"{p}/inventories"): lambda: api_inventories.POST_SCHEMA,
        ("PUT", f"{p}/inventories/{{rc}}"): lambda: api_inventories.ONE_SCHEMA,
        ("PUT", f"{p}/traits"): lambda: api_inventories.TRAITS_SCHEMA,
        ("PUT", "/placement/allocations/{consumer_uuid}"): lambda: api_allocations.put_schema(P),
    }


def body_schemas() -> dict[tuple[str, str], Schema]:
    """(method, path template) -> the schema that route's body is validated with."""
    return {key: make() for key, make in {**_compute_bodies(), **_other_bodies()}.items()}


def _operation(op: Operation, body: Schema | None, version_service: str | None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in op.params
    ]
    if version_service is not None:
        params.append(
            {
                "name": "OpenStack-API-Version",
                "in": "header",
                "required": False,
                "description": f"the microversion, e.g. '{version_service} latest'",
                "schema": {"type": "string"},
            }
        )
    out: dict[str, Any] = {
        "operationId": f"{op.method.lower()}_{op.name}",
        "parameters": params,
        "responses": {"default": {"description": "the service's answer, or its error envelope"}},
    }
    if op.method in BODY_METHODS:
        schema = body if body is not None else {"type": "object"}
        out["requestBody"] = {
            "required": body is not None,
            "content": {"application/json": {"schema": schema}},
        }
    return out


def document(app: FastAPI, service: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service`` (a key of ``SERVICES``)."""
    prefix, title, version_service = SERVICES[service]
    bodies = body_schemas()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for op in operations(app):
        if service_of(op.path) != service:
            continue
        entry = _operation(op, bodies.get((op.method, op.path)), version_service)
        op_id = entry["operationId"]
        n = 1
        while entry["operationId"] in used:  # the same handler on two paths (volume's project segment)
            n += 1
            entry["operationId"] = f"{op_id}_{n}"
        used.add(entry["operationId"])
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": f"novalite {title}", "version": "1"},
        "jsonSchemaDialect": DRAFT4,
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}
        },
        "security": [{"token": []}],
        "paths": paths,
    }


router = APIRouter()


@router.get(DOC_PREFIX)
def index(request: Request) -> JSONResponse:
    return JSONResponse({"documents": {s: f"{DOC_PREFIX}/{s}.json" for s in SERVICES}})


@router.get(DOC_PREFIX + "/{name}")
def service_document(name: str, request: Request) -> JSONResponse:
    service = name.removesuffix(".json")
    if service not in SERVICES or not name.endswith(".json"):
        raise NotFound(f"No OpenAPI document {name}; there is one per service: {', '.join(SERVICES)}.")
    return JSONResponse(document(request.app, service))

"""Placement: ``/resource_providers`` (list, create, show, update, delete) and their usages.

1.1 ``aggregates`` link; 1.3 ``member_of``; 1.4 ``resources`` filter; 1.6 ``traits`` link;
1.11 ``allocations`` link; 1.14 nested providers (``parent_provider_uuid``,
``root_provider_uuid``, ``in_tree``); 1.18 ``required`` traits; 1.20 create answers 200 with
the provider (201 with a Location and no body before); 1.37 re-parenting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime, validate
from novalite.api.microversion import Version
from novalite.db.models.placement import Allocation, ResourceProvider
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import allocations, params, providers
from novalite.placement.api_common import (
    PlacementRoute,
    admin,
    created,
    is_uuid,
    no_content,
    provider_url,
    query,
    version,
)
from novalite.placement.listing import ProviderFilter, find_providers, require_known_traits

router = APIRouter(prefix="/placement", route_class=PlacementRoute)

V = Version
_UUID = {"type": "string", "format": "uuid"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def provider_view(v: Version, rp: ResourceProvider) -> dict[str, Any]:
    links = [
        {"rel": "self", "href": provider_url(rp.uuid)},
        {"rel": "inventories", "href": provider_url(rp.uuid, "/inventories")},
        {"rel": "usages", "href": provider_url(rp.uuid, "/usages")},
    ]
    if v >= V(1, 1):  # 1.1: aggregates
        links.append({"rel": "aggregates", "href": provider_url(rp.uuid, "/aggregates")})
    if v >= V(1, 6):  # 1.6: traits
        links.append({"rel": "traits", "href": provider_url(rp.uuid, "/traits")})
    if v >= V(1, 11):  # 1.11: allocations
        links.append({"rel": "allocations", "href": provider_url(rp.uuid, "/allocations")})
    body: dict[str, Any] = {"uuid": rp.uuid, "name": rp.name, "generation": rp.generation, "links": links}
    if v >= V(1, 14):  # 1.14: nested providers
        body["parent_provider_uuid"] = rp.parent_provider_uuid
        body["root_provider_uuid"] = rp.root_provider_uuid or rp.uuid
    return body


def get_provider(s: Any, uuid: str) -> ResourceProvider:
    rp = providers.get_provider(s, uuid)
    if rp is None:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return rp


# --- list ----------------------------------------------------------------------------------


def _list_filter(request: Request) -> ProviderFilter:
    v = version(request)
    allowed = {"name", "uuid"}
    allowed |= {"member_of"} if v >= V(1, 3) else set()  # 1.3: member_of
    allowed |= {"resources"} if v >= V(1, 4) else set()  # 1.4: resources
    allowed |= {"in_tree"} if v >= V(1, 14) else set()  # 1.14: in_tree
    allowed |= {"required"} if v >= V(1, 18) else set()  # 1.18: required traits
    q = query(request, allowed)
    f = ProviderFilter(
        name=q.get("name", [None])[-1], uuid=q.get("uuid", [None])[-1], in_tree=q.get("in_tree", [None])[-1]
    )
    for key in ("uuid", "in_tree"):
        value = getattr(f, key)
        if value is not None and not is_uuid(value):
            raise BadRequest(f"Invalid query string parameters: '{value}' is not a 'uuid'")
    if "member_of" in q:
        f.member_of = params.parse_member_of(q["member_of"], v)
    if "resources" in q:
        f.resources = params.parse_resources(q["resources"][-1])
    if "required" in q:
        f.traits = params.parse_required(q["required"], v)
    return f


@router.get("/resource_providers")
def list_providers(request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:list")
    f = _list_filter(request)
    with runtime(request).db.reader() as s:
        if f.traits is not None:
            require_known_traits(s, f.traits.names())
        found = find_providers(s, f)
        return {"resource_providers": [provider_view(version(request), rp) for rp in found]}


# --- create / show / update / delete ---------------------------------------------------------


def _create_schema(v: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"name": _NAME, "uuid": _UUID}
    if v >= V(1, 14):  # 1.14: parent_provider_uuid
        props["parent_provider_uuid"] = {"anyOf": [_UUID, {"type": "null"}]}
    return {"type": "object", "properties": props, "required": ["name"], "additionalProperties": False}


def _set_parent(s: Any, rp: ResourceProvider, parent_uuid: str | None) -> None:
    if parent_uuid is None:
        rp.parent_provider_uuid, rp.root_provider_uuid = None, rp.uuid
        return
    if parent_uuid == rp.uuid:
        raise BadRequest("creating loop in the provider tree is not allowed.")
    parent = providers.get_provider(s, parent_uuid)
    if parent is None:
        raise BadRequest("parent provider UUID does not exist.")
    rp.parent_provider_uuid, rp.root_provider_uuid = parent.uuid, parent.root_provider_uuid or parent.uuid


def _check_unique(s: Any, name: str, uuid: str | None, except_id: int | None = None) -> None:
    named = s.scalars(select(ResourceProvider).where(ResourceProvider.name == name)).first()
    if named is not None and named.id != except_id:
        raise Conflict(
            f"Conflicting resource provider name: {name} already exists.", kind="placement.duplicate_name"
        )
    if uuid is not None and except_id is None and providers.get_provider(s, uuid) is not None:
        raise Conflict(f"Conflicting resource provider uuid: {uuid} already exists.")


@router.post("/resource_providers")
async def create_provider(request: Request) -> Response:
    admin(request, "resource_providers:create")
    v = version(request)
    body = await json_body(request)
    validate(_create_schema(v), body)

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            _check_unique(s, body["name"], body.get("uuid"))
            rp = providers.create_provider(s, name=body["name"], uuid=body.get("uuid"))
            _set_parent(s, rp, body.get("parent_provider_uuid"))
            s.flush()
            return provider_view(v, rp)

    view = await run_in_threadpool(_store)
    # 1.20: the created provider in a 200 answer (201, Location, no body before)
    if v >= V(1, 20):
        return JSONResponse(view, status_code=200, headers={"location": provider_url(view["uuid"])})
    return created(None, provider_url(view["uuid"]), with_body=False)


@router.get("/resource_providers/{uuid}")
def show_provider(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:show")
    with runtime(request).db.reader() as s:
        return provider_view(version(request), get_provider(s, uuid))


@router.put("/resource_providers/{uuid}")
async def update_provider(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:update")
    v = version(request)
    body = await json_body(request)
    schema = _create_schema(v)
    schema["properties"].pop("uuid")
    validate(schema, body)

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            _check_unique(s, body["name"], None, except_id=rp.id)
            rp.name = body["name"]
            if "parent_provider_uuid" in body and body["parent_provider_uuid"] != rp.parent_provider_uuid:
                if rp.parent_provider_uuid is not None and v < V(1, 37):  # 1.37: re-parenting
                    raise BadRequest("re-parenting a provider is not currently allowed.")
                _set_parent(s, rp, body["parent_provider_uuid"])
            s.flush()
            return provider_view(v, rp)

    return await run_in_threadpool(_store)


@router.delete("/resource_providers/{uuid}")
def delete_provider(uuid: str, request: Request) -> Response:
    admin(request, "resource_providers:delete")
    with runtime(request).db.session() as s:
        rp = get_provider(s, uuid)
        if s.scalars(select(Allocation.id).where(Allocation.resource_provider_id == rp.id).limit(1)).first():
            raise Conflict(
                f"Unable to delete resource provider {uuid}: Resource provider has allocations.",
                kind="placement.resource_provider.inuse",
            )
        if s.scalars(
            select(ResourceProvider.id).where(ResourceProvider.parent_provider_uuid == uuid)
        ).first():
            raise Conflict(
                f"Unable to delete parent resource provider {uuid}: It has child resource providers.",
                kind="placement.resource_provider.cannot_delete_parent",
            )
        s.delete(rp)
    return no_content()


# --- usages ----------------------------------------------------------------------------------


@router.get("/resource_providers/{uuid}/usages")
def provider_usages(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:usages")
    with runtime(request).db.reader() as s:
        rp = get_provider(s, uuid)
        return {"resource_provider_generation": rp.generation, "usages": allocations.provider_usages(s, uuid)}


@router.get("/resource_providers/{uuid}/allocations")
def provider_allocations(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:allocations:list")
    with runtime(request).db.reader() as s:
        rp = get_provider(s, uuid)
        held: dict[str, dict[str, dict[str, int]]] = {}
        for consumer, rc, used in s.execute(
            select(Allocation.consumer_id, Allocation.resource_class, Allocation.used).where(
                Allocation.resource_provider_id == rp.id
            )
        ):
            held.setdefault(consumer, {"resources": {}})["resources"][rc] = used
        return {"allocations": held, "resource_provider_generation": rp.generation}

"""Placement: a provider's inventories, traits (1.6) and aggregates (1.1).

Every write names the provider generation it read (``resource_provider_generation``); a
stale one is a 409 ``placement.concurrent_update`` (``providers.bump_generation`` does the
compare-and-swap). Removing an inventory that is in use is a 409 ``placement.inventory.inuse``.
1.5 ``DELETE .../inventories``. 1.19 aggregates carry the generation (a bare list before).
1.26 ``reserved`` may equal ``total``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime, validate
from novalite.api.microversion import Version
from novalite.db.models.placement import Inventory, ResourceProvider
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import providers
from novalite.placement.api_common import (
    PlacementRoute,
    admin,
    created,
    no_content,
    provider_url,
    require_version,
    version,
)
from novalite.placement.api_providers import get_provider
from novalite.placement.listing import require_known_traits
from novalite.placement.params import RC_PATTERN

router = APIRouter(prefix="/placement", route_class=PlacementRoute)

V = Version
MAX_INT = 2147483647
_GENERATION = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
_FIELDS: dict[str, Any] = {
    "total": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "reserved": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
    "min_unit": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "max_unit": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "step_size": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
    "allocation_ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 3.40282e38},
}
_INVENTORY = {"type": "object", "properties": _FIELDS, "required": ["total"], "additionalProperties": False}
PUT_ALL_SCHEMA = {
    "type": "object",
    "required": ["resource_provider_generation", "inventories"],
    "additionalProperties": False,
    "properties": {
        "resource_provider_generation": _GENERATION,
        "inventories": {
            "type": "object",
            "patternProperties": {"^[A-Z0-9_]+$": _INVENTORY},
            "additionalProperties": False,
        },
    },
}
ONE_SCHEMA = {
    "type": "object",
    "required": ["resource_provider_generation", "total"],
    "additionalProperties": False,
    "properties": {**_FIELDS, "resource_provider_generation": _GENERATION},
}
POST_SCHEMA = {
    "type": "object",
    "required": ["resource_class", "resource_provider_generation", "total"],
    "additionalProperties": False,
    "properties": {
        **_FIELDS,
        "resource_provider_generation": _GENERATION,
        "resource_class": {"type": "string", "pattern": "^[A-Z0-9_]+$", "maxLength": 255},
    },
}


def inventory_view(inv: Inventory) -> dict[str, Any]:
    return {
        "allocation_ratio": inv.allocation_ratio,
        "max_unit": inv.max_unit,
        "min_unit": inv.min_unit,
        "reserved": inv.reserved,
        "step_size": inv.step_size,
        "total": inv.total,
    }


def _spec(rp: ResourceProvider, rc: str, body: dict[str, Any], v: Version) -> providers.InventorySpec:
    total, reserved = int(body["total"]), int(body.get("reserved", 0))
    if reserved > total or (reserved == total and v < V(1, 26)):  # 1.26: reserved may equal total
        raise BadRequest(
            f"Unable to update inventory for resource provider {rp.uuid}: Invalid inventory for "
            f"'{rc}' on resource provider '{rp.uuid}'. The reserved value is greater than total."
        )
    return providers.InventorySpec(
        total=total,
        reserved=reserved,
        min_unit=int(body.get("min_unit", 1)),
        max_unit=int(body.get("max_unit", MAX_INT)),
        step_size=int(body.get("step_size", 1)),
        allocation_ratio=float(body.get("allocation_ratio", 1.0)),
    )


def _current(s: Any, rp: ResourceProvider) -> dict[str, providers.InventorySpec]:
    return {
        rc: providers.InventorySpec(
            total=i.total,
            reserved=i.reserved,
            min_unit=i.min_unit,
            max_unit=i.max_unit,
            step_size=i.step_size,
            allocation_ratio=i.allocation_ratio,
        )
        for rc, i in providers.inventories_of(s, rp.id).items()
    }


def _inventories_body(s: Any, rp: ResourceProvider) -> dict[str, Any]:
    s.refresh(rp)
    return {
        "resource_provider_generation": rp.generation,
        "inventories": {
            rc: inventory_view(i) for rc, i in sorted(providers.inventories_of(s, rp.id).items())
        },
    }


# --- inventories -----------------------------------------------------------------------------


@router.get("/resource_providers/{uuid}/inventories")
def list_inventories(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:inventories:list")
    with runtime(request).db.reader() as s:
        return _inventories_body(s, get_provider(s, uuid))


@router.put("/resource_providers/{uuid}/inventories")
async def replace_inventories(uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:inventories:update_all")
    v = version(request)
    body = await json_body(request)
    validate(PUT_ALL_SCHEMA, body)

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            wanted = {rc: _spec(rp, rc, inv, v) for rc, inv in body["inventories"].items()}
            providers.set_inventories(s, rp, wanted, seen_generation=body["resource_provider_generation"])
            return _inventories_body(s, rp)

    return await run_in_threadpool(_store)


@router.delete("/resource_providers/{uuid}/inventories")
def delete_inventories(uuid: str, request: Request) -> Response:
    require_version(request, V(1, 5))  # 1.5: delete all inventories
    admin(request, "resource_providers:inventories:delete_all")
    with runtime(request).db.session() as s:
        providers.set_inventories(s, get_provider(s, uuid), {})
    return no_content()


@router.post("/resource_providers/{uuid}/inventories")
async def create_inventory(uuid: str, request: Request) -> Response:
    admin(request, "resource_providers:inventories:create")
    v = version(request)
    body = await json_body(request)
    validate(POST_SCHEMA, body)
    rc = body["resource_class"]

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            current = _current(s, rp)
            if rc in current:
                raise Conflict(
                    f"Update conflict: Inventory for {rc} on resource provider {uuid} already exists."
                )
            current[rc] = _spec(rp, rc, body, v)
            providers.set_inventories(s, rp, current, seen_generation=body["resource_provider_generation"])
            s.refresh(rp)
            return {
                **inventory_view(providers.inventories_of(s, rp.id)[rc]),
                "resource_provider_generation": rp.generation,
            }

    view = await run_in_threadpool(_store)
    return created(view, provider_url(uuid, f"/inventories/{rc}"))


@router.get("/resource_providers/{uuid}/inventories/{rc}")
def show_inventory(uuid: str, rc: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:inventories:show")
    with runtime(request).db.reader() as s:
        rp = get_provider(s, uuid)
        inv = providers.inventories_of(s, rp.id).get(rc)
        if inv is None:
            raise NotFound(f"No inventory of class {rc} for {uuid}")
        return {**inventory_view(inv), "resource_provider_generation": rp.generation}


@router.put("/resource_providers/{uuid}/inventories/{rc}")
async def update_inventory(uuid: str, rc: str, request: Request) -> dict[str, Any]:
    admin(request, "resource_providers:inventories:update")
    v = version(request)
    body = await json_body(request)
    validate(ONE_SCHEMA, body)
    if not RC_PATTERN.match(rc):
        raise BadRequest(f"Unknown resource class in inventory for resource provider {uuid}: {rc}")

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            current = _current(s, rp)
            if rc not in current:
                raise BadRequest(f"No inventory record with resource class for resource provider {uuid}")
            current[rc] = _spec(rp, rc, body, v)
            providers.set_inventories(s, rp, current, seen_generation=body["resource_provider_generation"])
            s.refresh(rp)
            return {
                **inventory_view(providers.inventories_of(s, rp.id)[rc]),
                "resource_provider_generation": rp.generation,
            }

    return await run_in_threadpool(_store)


@router.delete("/resource_providers/{uuid}/inventories/{rc}")
def delete_inventory(uuid: str, rc: str, request: Request) -> Response:
    admin(request, "resource_providers:inventories:delete")
    with runtime(request).db.session() as s:
        rp = get_provider(s, uuid)
        current = _current(s, rp)
        if rc not in current:
            raise NotFound(f"No inventory of class {rc} found for delete")
        del current[rc]
        providers.set_inventories(s, rp, current)
    return no_content()


# --- provider traits -------------------------------------------------------------------------

TRAITS_SCHEMA = {
    "type": "object",
    "required": ["traits", "resource_provider_generation"],
    "additionalProperties": False,
    "properties": {
        "traits": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Z0-9_]+$", "maxLength": 255},
        },
        "resource_provider_generation": _GENERATION,
    },
}


@router.get("/resource_providers/{uuid}/traits")
def provider_traits(uuid: str, request: Request) -> dict[str, Any]:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "resource_providers:traits:list")
    with runtime(request).db.reader() as s:
        rp = get_provider(s, uuid)
        return {"traits": providers.provider_traits(s, rp.id), "resource_provider_generation": rp.generation}


@router.put("/resource_providers/{uuid}/traits")
async def set_provider_traits(uuid: str, request: Request) -> dict[str, Any]:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "resource_providers:traits:update")
    body = await json_body(request)
    validate(TRAITS_SCHEMA, body)

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            require_known_traits(s, body["traits"])
            providers.set_traits(s, rp, body["traits"], seen_generation=body["resource_provider_generation"])
            s.refresh(rp)
            return {
                "traits": providers.provider_traits(s, rp.id),
                "resource_provider_generation": rp.generation,
            }

    return await run_in_threadpool(_store)


@router.delete("/resource_providers/{uuid}/traits")
def delete_provider_traits(uuid: str, request: Request) -> Response:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "resource_providers:traits:delete")
    with runtime(request).db.session() as s:
        providers.set_traits(s, get_provider(s, uuid), [])
    return no_content()


# --- provider aggregates ---------------------------------------------------------------------

_AGGREGATE_LIST = {"type": "array", "uniqueItems": True, "items": {"type": "string", "format": "uuid"}}


@router.get("/resource_providers/{uuid}/aggregates")
def provider_aggregates(uuid: str, request: Request) -> dict[str, Any]:
    require_version(request, V(1, 1))  # 1.1: aggregates
    admin(request, "resource_providers:aggregates:list")
    with runtime(request).db.reader() as s:
        rp = get_provider(s, uuid)
        body: dict[str, Any] = {"aggregates": providers.provider_aggregates(s, rp.id)}
        if version(request) >= V(1, 19):  # 1.19: generation
            body["resource_provider_generation"] = rp.generation
        return body


@router.put("/resource_providers/{uuid}/aggregates")
async def set_provider_aggregates(uuid: str, request: Request) -> dict[str, Any]:
    require_version(request, V(1, 1))  # 1.1: aggregates
    admin(request, "resource_providers:aggregates:update")
    v = version(request)
    body = await json_body(request)
    if v >= V(1, 19):  # 1.19: {"aggregates": [...], "resource_provider_generation": n}
        validate(
            {
                "type": "object",
                "required": ["aggregates", "resource_provider_generation"],
                "additionalProperties": False,
                "properties": {"aggregates": _AGGREGATE_LIST, "resource_provider_generation": _GENERATION},
            },
            body,
        )
        wanted, seen = body["aggregates"], body["resource_provider_generation"]
    else:
        validate(_AGGREGATE_LIST, body)
        wanted, seen = body, None

    def _store() -> dict[str, Any]:
        with runtime(request).db.session() as s:
            rp = get_provider(s, uuid)
            providers.set_aggregates(s, rp, wanted, seen_generation=seen)
            s.refresh(rp)
            out: dict[str, Any] = {"aggregates": providers.provider_aggregates(s, rp.id)}
            if v >= V(1, 19):
                out["resource_provider_generation"] = rp.generation
            return out

    return await run_in_threadpool(_store)

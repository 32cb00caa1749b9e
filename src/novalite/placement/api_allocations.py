"""Placement: allocations per consumer, project usages (1.9) and allocation candidates (1.10).

``PUT /allocations/{consumer}`` replaces what the consumer holds in one savepoint (release,
then claim through ``placement.allocations``, which takes capacity with conditional UPDATEs).
Body shapes: a list of ``{"resource_provider": {"uuid"}, "resources"}`` before 1.12, a dict by
provider uuid from 1.12; ``project_id``/``user_id`` required from 1.8; ``consumer_generation``
from 1.28 (null for a new consumer, else the current one: a mismatch is 409
``placement.concurrent_update``); ``consumer_type`` from 1.38.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime, validate
from novalite.api.microversion import Version
from novalite.db.base import savepoint
from novalite.db.models.placement import Allocation, Consumer, ResourceProvider
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import allocations
from novalite.placement.api_common import (
    PlacementRoute,
    admin,
    is_uuid,
    no_content,
    query,
    require_version,
    version,
)

router = APIRouter(prefix="/placement", route_class=PlacementRoute)

V = Version
_RESOURCES = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {"^[A-Z0-9_]+$": {"type": "integer", "minimum": 1, "maximum": 2147483647}},
    "additionalProperties": False,
}
_ID = {"type": "string", "minLength": 1, "maxLength": 255}


def put_schema(v: Version) -> dict[str, Any]:
    if v >= V(1, 12):  # 1.12: allocations keyed by provider uuid
        allocs: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": {
                "^[0-9a-fA-F-]{32,36}$": {
                    "type": "object",
                    "required": ["resources"],
                    "additionalProperties": False,
                    "properties": {"resources": _RESOURCES, "generation": {"type": "integer"}},
                }
            },
        }
    else:
        allocs = {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["resource_provider", "resources"],
                "additionalProperties": False,
                "properties": {
                    "resource_provider": {
                        "type": "object",
                        "required": ["uuid"],
                        "additionalProperties": False,
                        "properties": {"uuid": {"type": "string", "format": "uuid"}},
                    },
                    "resources": _RESOURCES,
                },
            },
        }
    props: dict[str, Any] = {"allocations": allocs}
    required = ["allocations"]
    if v >= V(1, 8):  # 1.8: project_id and user_id
        props.update(project_id=_ID, user_id=_ID)
        required += ["project_id", "user_id"]
    if v >= V(1, 28):  # 1.28: consumer_generation
        props["consumer_generation"] = {"type": ["integer", "null"], "minimum": 0, "maximum": 2147483647}
        required.append("consumer_generation")
    if v >= V(1, 38):  # 1.38: consumer_type
        props["consumer_type"] = {"type": "string", "pattern": "^[A-Z0-9_]+$", "maxLength": 255}
        required.append("consumer_type")
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _requested(v: Version, body: dict[str, Any]) -> dict[str, dict[str, int]]:
    if v >= V(1, 12):
        return {rp: dict(item["resources"]) for rp, item in body["allocations"].items()}
    out: dict[str, dict[str, int]] = {}
    for item in body["allocations"]:
        out.setdefault(item["resource_provider"]["uuid"], {}).update(item["resources"])
    return out


# --- per consumer ------------------------------------------------------------------------------


@router.get("/allocations/{consumer_uuid}")
def show_allocations(consumer_uuid: str, request: Request) -> dict[str, Any]:
    admin(request, "allocations:list")
    v = version(request)
    with runtime(request).db.reader() as s:
        held = allocations.allocations_of(s, consumer_uuid)
        gens = (
            dict(
                s.execute(
                    select(ResourceProvider.uuid, ResourceProvider.generation).where(
                        ResourceProvider.uuid.in_(list(held))
                    )
                ).all()
            )
            if held
            else {}
        )
        body: dict[str, Any] = {
            "allocations": {rp: {"generation": gens.get(rp), "resources": res} for rp, res in held.items()}
        }
        consumer = s.get(Consumer, consumer_uuid)
        if consumer is not None and held and v >= V(1, 12):  # 1.12: project_id, user_id
            body.update(project_id=consumer.project_id, user_id=consumer.user_id)
            if v >= V(1, 28):  # 1.28: consumer_generation
                body["consumer_generation"] = consumer.generation
            if v >= V(1, 38):  # 1.38: consumer_type
                body["consumer_type"] = consumer.consumer_type
        return body


@router.put("/allocations/{consumer_uuid}")
async def put_allocations(consumer_uuid: str, request: Request) -> Response:
    admin(request, "allocations:update")
    v = version(request)
    body = await json_body(request)
    validate(put_schema(v), body)
    if not is_uuid(consumer_uuid):
        raise BadRequest(f"Malformed consumer_uuid: {consumer_uuid}")
    await run_in_threadpool(_replace, request, consumer_uuid, body, v)
    return no_content()


def _replace(request: Request, consumer_uuid: str, body: dict[str, Any], v: Version) -> None:
    wanted = _requested(v, body)
    with runtime(request).db.session() as s:
        known = set(s.scalars(select(ResourceProvider.uuid).where(ResourceProvider.uuid.in_(list(wanted)))))
        for rp in wanted:
            if rp not in known:
                raise BadRequest(f"Allocation for resource provider '{rp}' that does not exist.")
        existing = s.get(Consumer, consumer_uuid)
        previous = existing.generation if existing is not None else None
        if v >= V(1, 28) and body["consumer_generation"] != previous:  # 1.28: consumer generations
            raise Conflict(
                f"consumer generation conflict - expected {body['consumer_generation']} but got {previous}",
                kind="placement.concurrent_update",
            )
        project = body.get("project_id") or (existing.project_id if existing else "")
        user = body.get("user_id") or (existing.user_id if existing else "")
        if existing is not None:
            s.expunge(existing)  # release() deletes the row with a bulk statement
        with savepoint(s):
            allocations.release(s, consumer_uuid)
            if not wanted:  # an empty PUT removes the consumer's allocations
                return
            ref = allocations.ConsumerRef(uuid=consumer_uuid, project_id=project, user_id=user)
            try:
                allocations.claim(s, ref, wanted)
            except Conflict as exc:
                raise Conflict(f"Unable to allocate inventory: {exc.message}", kind=exc.kind) from None
            consumer = s.get(Consumer, consumer_uuid)
            if consumer is not None:
                consumer.generation = (previous + 1) if previous is not None else 0
                consumer.consumer_type = body.get("consumer_type", consumer.consumer_type)
        s.flush()


@router.delete("/allocations/{consumer_uuid}")
def delete_allocations(consumer_uuid: str, request: Request) -> Response:
    admin(request, "allocations:delete")
    with runtime(request).db.session() as s:
        if not allocations.release(s, consumer_uuid):
            raise NotFound(f"No allocations for consumer '{consumer_uuid}'")
    return no_content()


# --- project usages ----------------------------------------------------------------------------


@router.get("/usages")
def project_usages(request: Request) -> dict[str, Any]:
    require_version(request, V(1, 9))  # 1.9: /usages
    admin(request, "usages")
    v = version(request)
    q = query(request, {"project_id", "user_id"} | ({"consumer_type"} if v >= V(1, 38) else set()))
    if "project_id" not in q:
        raise BadRequest("Invalid query string parameters: 'project_id' is a required property")
    stmt = (
        select(
            Consumer.consumer_type,
            Allocation.resource_class,
            func.sum(Allocation.used),
            func.count(func.distinct(Allocation.consumer_id)),
        )
        .join(Consumer, Consumer.uuid == Allocation.consumer_id)
        .where(Consumer.project_id == q["project_id"][-1])
        .group_by(Consumer.consumer_type, Allocation.resource_class)
    )
    if "user_id" in q:
        stmt = stmt.where(Consumer.user_id == q["user_id"][-1])
    wanted_type = q.get("consumer_type", [None])[-1]
    with runtime(request).db.reader() as s:
        rows = s.execute(stmt).all()
        counts = _consumer_counts(s, q)
    if v < V(1, 38):
        totals: dict[str, int] = {}
        for _ctype, rc, used, _n in rows:
            totals[rc] = totals.get(rc, 0) + int(used)
        return {"usages": totals}
    # 1.38: grouped by consumer type, with consumer_count
    grouped: dict[str, dict[str, int]] = {}
    for ctype, rc, used, _n in rows:
        if wanted_type in (None, "all", ctype):
            grouped.setdefault(ctype or "unknown", {"consumer_count": counts.get(ctype, 0)})[rc] = int(used)
    return {"usages": grouped}


def _consumer_counts(s: Any, q: dict[str, list[str]]) -> dict[str, int]:
    stmt = (
        select(Consumer.consumer_type, func.count(func.distinct(Consumer.uuid)))
        .join(Allocation, Allocation.consumer_id == Consumer.uuid)
        .where(Consumer.project_id == q["project_id"][-1])
        .group_by(Consumer.consumer_type)
    )
    if "user_id" in q:
        stmt = stmt.where(Consumer.user_id == q["user_id"][-1])
    return {ctype: int(n) for ctype, n in s.execute(stmt)}

"""Placement: ``GET /allocation_candidates`` (1.10) and ``/traits`` (1.6).

Candidates come from ``placement.candidates.find_candidates`` (one SQL query); any-of trait
groups (1.39) and forbidden aggregates (1.32) are applied here. Shapes: allocation requests
are lists of ``{"resource_provider": {"uuid"}, "resources"}`` before 1.12 and dicts by
provider from 1.12; 1.16 ``limit``; 1.17 ``required`` and provider ``traits``; 1.21
``member_of``; 1.27 summaries list every class of the provider; 1.29 summaries carry
``parent_provider_uuid``/``root_provider_uuid``; 1.34 ``mappings``.

Traits: standard ones are always known; only ``CUSTOM_*`` may be created (201, or 204 when
it exists) or deleted (400 for a standard trait, 409 while a provider has it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from novalite.api.common import runtime
from novalite.api.microversion import Version
from novalite.db.models.placement import ProviderAggregate, ProviderTrait, ResourceProvider, Trait
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import candidates, providers
from novalite.placement.api_common import PlacementRoute, admin, no_content, query, require_version, version
from novalite.placement.listing import STANDARD_TRAITS, require_known_traits
from novalite.placement.params import parse_member_of, parse_required, parse_resources

router = APIRouter(prefix="/placement", route_class=PlacementRoute)

V = Version
CUSTOM_TRAIT = re.compile(r"^CUSTOM_[A-Z0-9_]+$")


# --- allocation candidates ---------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateAsk:
    query: candidates.ResourceQuery
    any_of: list[list[str]]  # 1.39: each group needs one of its traits
    no_aggregates: list[str]  # 1.32: forbidden aggregates
    limit: int | None


def _candidate_query(request: Request, s: Any) -> CandidateAsk:
    v = version(request)
    allowed = (
        {"resources"} | ({"limit"} if v >= V(1, 16) else set()) | ({"required"} if v >= V(1, 17) else set())
    )
    allowed |= ({"member_of"} if v >= V(1, 21) else set()) | ({"in_tree"} if v >= V(1, 31) else set())
    allowed |= {"group_policy"} if v >= V(1, 25) else set()
    q = query(request, allowed)
    if "resources" not in q:
        raise BadRequest("Invalid query string parameters: 'resources' is a required property")
    resources = parse_resources(q["resources"][-1])
    traits = parse_required(q.get("required", []), v)
    require_known_traits(s, traits.names())
    member_of = parse_member_of(q["member_of"], v) if "member_of" in q else None
    limit = None
    if "limit" in q:
        if not q["limit"][-1].isdigit() or int(q["limit"][-1]) < 1:
            raise BadRequest(
                f"Invalid query string parameters: '{q['limit'][-1]}' does not match '^[1-9][0-9]*$'"
            )
        limit = int(q["limit"][-1])
    names = None
    if "in_tree" in q:
        tree = providers.get_provider(s, q["in_tree"][-1])
        names = (
            ()
            if tree is None
            else tuple(
                s.scalars(
                    select(ResourceProvider.name).where(
                        ResourceProvider.root_provider_uuid == (tree.root_provider_uuid or tree.uuid)
                    )
                )
            )
        )
    rq = candidates.ResourceQuery(
        resources=resources,
        required_traits=tuple(traits.required),
        forbidden_traits=tuple(traits.forbidden),
        member_of=tuple(tuple(g) for g in member_of.any_of) if member_of else (),
        provider_names=names,
        limit=None,
    )
    return CandidateAsk(rq, traits.any_of, member_of.forbidden if member_of else [], limit)


def _post_filter(
    s: Any, found: list[candidates.Candidate], any_of: list[list[str]], no_aggs: list[str]
) -> list[candidates.Candidate]:
    if not found or (not any_of and not no_aggs):
        return found
    uuids = [c.provider_uuid for c in found]
    traits: dict[str, set[str]] = {}
    for uuid, name in s.execute(
        select(ResourceProvider.uuid, Trait.name)
        .join(ProviderTrait, ProviderTrait.resource_provider_id == ResourceProvider.id)
        .join(Trait, Trait.id == ProviderTrait.trait_id)
        .where(ResourceProvider.uuid.in_(uuids))
    ):
        traits.setdefault(uuid, set()).add(name)
    excluded = (
        set(
            s.scalars(
                select(ResourceProvider.uuid)
                .join(ProviderAggregate, ProviderAggregate.resource_provider_id == ResourceProvider.id)
                .where(ProviderAggregate.aggregate_uuid.in_(no_aggs))
            )
        )
        if no_aggs
        else set()
    )
    return [
        c
        for c in found
        if c.provider_uuid not in excluded
        and all(traits.get(c.provider_uuid, set()) & set(group) for group in any_of)
    ]


def _summary(s: Any, v: Version, rp: ResourceProvider, requested: dict[str, int]) -> dict[str, Any]:
    invs = providers.inventories_of(s, rp.id)
    shown = (
        invs if v >= V(1, 27) else {rc: i for rc, i in invs.items() if rc in requested}
    )  # 1.27: all classes
    body: dict[str, Any] = {
        "resources": {
            rc: {"capacity": providers.capacity(i), "used": i.used} for rc, i in sorted(shown.items())
        }
    }
    if v >= V(1, 17):  # 1.17: traits
        body["traits"] = providers.provider_traits(s, rp.id)
    if v >= V(1, 29):  # 1.29: tree
        body["parent_provider_uuid"] = rp.parent_provider_uuid
        body["root_provider_uuid"] = rp.root_provider_uuid or rp.uuid
    return body


def _request_view(v: Version, cand: candidates.Candidate) -> dict[str, Any]:
    if v < V(1, 12):  # before 1.12: a list per provider
        return {
            "allocations": [
                {"resource_provider": {"uuid": rp}, "resources": dict(res)}
                for rp, res in cand.allocation_request.items()
            ]
        }
    body: dict[str, Any] = {
        "allocations": {rp: {"resources": dict(res)} for rp, res in cand.allocation_request.items()}
    }
    if v >= V(1, 34):  # 1.34: mappings of request groups to providers
        body["mappings"] = {"": list(cand.allocation_request)}
    return body


@router.get("/allocation_candidates")
def allocation_candidates(request: Request) -> dict[str, Any]:
    require_version(request, V(1, 10))  # 1.10: allocation candidates
    admin(request, "allocation_candidates:list")
    v = version(request)
    with runtime(request).db.reader() as s:
        ask = _candidate_query(request, s)
        found = _post_filter(s, candidates.find_candidates(s, ask.query), ask.any_of, ask.no_aggregates)
        if ask.limit is not None:
            found = found[: ask.limit]
        rps = (
            {
                rp.uuid: rp
                for rp in s.scalars(
                    select(ResourceProvider).where(
                        ResourceProvider.uuid.in_([c.provider_uuid for c in found])
                    )
                )
            }
            if found
            else {}
        )
        summaries = {
            c.provider_uuid: _summary(s, v, rps[c.provider_uuid], dict(ask.query.resources)) for c in found
        }
    return {"allocation_requests": [_request_view(v, c) for c in found], "provider_summaries": summaries}


# --- traits ------------------------------------------------------------------------------------


@router.get("/traits")
def list_traits(request: Request) -> dict[str, Any]:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "traits:list")
    q = query(request, {"name", "associated"})
    with runtime(request).db.reader() as s:
        names = set(STANDARD_TRAITS) | set(s.scalars(select(Trait.name)))
        associated = set(
            s.scalars(select(Trait.name).join(ProviderTrait, ProviderTrait.trait_id == Trait.id))
        )
    if "name" in q:
        raw = q["name"][-1]
        if raw.startswith("in:"):
            names &= {n.strip() for n in raw[3:].split(",")}
        elif raw.startswith("startswith:"):
            names = {n for n in names if n.startswith(raw[len("startswith:") :])}
        else:
            raise BadRequest(
                f"Badly formatted name parameter. Expected name query string parameter in form: "
                f'?name=[in|startswith]:[name1,name2|prefix]. Got: "{raw}"'
            )
    if "associated" in q:
        flag = q["associated"][-1].lower()
        if flag not in ("true", "false"):
            raise BadRequest(
                f"Invalid query string parameters: '{q['associated'][-1]}' is not one of ['true', 'false']"
            )
        names = names & associated if flag == "true" else names - associated
    return {"traits": sorted(names)}


@router.get("/traits/{name}")
def show_trait(name: str, request: Request) -> Response:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "traits:show")
    with runtime(request).db.reader() as s:
        exists = name in STANDARD_TRAITS or s.scalars(select(Trait.id).where(Trait.name == name)).first()
    if not exists:
        raise NotFound(f"No such trait(s): {name}.")
    return no_content()


@router.put("/traits/{name}")
def create_trait(name: str, request: Request) -> Response:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "traits:update")
    if not CUSTOM_TRAIT.match(name) or len(name) > 255:
        raise BadRequest(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start with "
            'the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"'
        )
    with runtime(request).db.session() as s:
        if s.scalars(select(Trait.id).where(Trait.name == name)).first():
            return no_content()
        providers.ensure_traits(s, [name])
    return Response(status_code=201, headers={"location": f"/placement/traits/{name}"})


@router.delete("/traits/{name}")
def delete_trait(name: str, request: Request) -> Response:
    require_version(request, V(1, 6))  # 1.6: traits
    admin(request, "traits:delete")
    if name in STANDARD_TRAITS:
        raise BadRequest(f"Cannot delete standard trait {name}.")
    with runtime(request).db.session() as s:
        trait = s.scalars(select(Trait).where(Trait.name == name)).first()
        if trait is None:
            raise NotFound(f"No such trait(s): {name}.")
        if s.scalars(select(ProviderTrait.trait_id).where(ProviderTrait.trait_id == trait.id)).first():
            raise Conflict(f"The trait {name} is in use by a resource provider.")
        s.delete(trait)
    return no_content()

"""Allocation candidates: which providers can hold a request, found by one SQL query.

One join per requested resource class against ``inventories`` (whose ``used`` column is
kept current by ``allocations``), plus EXISTS / NOT EXISTS for required / forbidden traits
and aggregate membership. No Python loop over providers: the database filters, orders by
provider id and stops at ``limit`` (``Settings.max_placement_results``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import Exists

from novalite.db.models.placement import Inventory, ProviderAggregate, ProviderTrait, ResourceProvider, Trait


@dataclass(frozen=True)
class ResourceQuery:
    """What ``GET /allocation_candidates`` asks (one unnumbered request group)."""

    resources: Mapping[str, int]
    required_traits: tuple[str, ...] = ()
    forbidden_traits: tuple[str, ...] = ()
    member_of: tuple[tuple[str, ...], ...] = ()  # each entry: the provider is in any of these aggregates
    provider_names: tuple[str, ...] | None = None  # restrict to these providers (forced/requested nodes)
    limit: int | None = 1000
    # (resource class, most free first?): the order of the result, by the inventory's free
    # amount (``Inventory.shortfall``, ties by provider id); None: by provider id
    order_by_free: tuple[str, bool] | None = None


@dataclass(frozen=True)
class InventoryUse:
    """A requested class's inventory on the candidate, as read with it."""

    total: int
    reserved: int
    used: int
    allocation_ratio: float


@dataclass(frozen=True)
class Candidate:
    provider_uuid: str
    provider_name: str
    generation: int
    allocation_request: dict[str, dict[str, int]] = field(default_factory=dict)
    usage: dict[str, InventoryUse] = field(default_factory=dict)  # requested classes only


def _trait_exists(trait: str) -> Exists:
    return exists().where(
        ProviderTrait.resource_provider_id == ResourceProvider.id,
        ProviderTrait.trait_id == Trait.id,
        Trait.name == trait,
    )


def _build(
    rcs: tuple[str, ...],
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: int,
    names: bool,
    limited: bool,
    order: tuple[int, bool] | None = None,
) -> Select[Any]:
    """The statement for one query *shape*; amounts, aggregates, names and limit are bound.

    Ordered by the first inventory's provider id (the same as the provider's): the database
    then walks ``ix_inventories_rc_provider`` in order and stops at the limit instead of
    sorting every fitting provider. With ``order`` = (index of a class in ``rcs``, most free
    first?) ordered by that inventory's ``shortfall`` then provider id instead: a walk of
    ``ix_inventories_rc_shortfall`` (forwards or backwards) that stops at the limit too."""
    aliases = [aliased(Inventory) for _ in rcs]
    stmt: Any = select(
        ResourceProvider.id,
        ResourceProvider.uuid,
        ResourceProvider.name,
        ResourceProvider.generation,
        *(c for inv in aliases for c in (inv.total, inv.reserved, inv.used, inv.allocation_ratio)),
    )
    for i, (rc, inv) in enumerate(zip(rcs, aliases, strict=True)):
        amount = bindparam(f"amount_{i}", type_=Integer)
        capacity = (inv.total - inv.reserved) * inv.allocation_ratio
        stmt = stmt.join(
            inv,
            and_(
                inv.resource_provider_id == ResourceProvider.id,
                inv.resource_class == rc,
                inv.used + amount <= capacity,
                inv.min_unit <= amount,
                inv.max_unit >= amount,
                # the same test; spelt so PostgreSQL's row estimate sees the usual
                # step_size 1 (a bare modulo is guessed at 0.5 % of rows per class,
                # and the planner then sorts every fitting provider)
                or_(inv.step_size == 1, (amount % inv.step_size) == 0),
            ),
        )
    for trait in required:
        stmt = stmt.where(_trait_exists(trait))
    for trait in forbidden:
        stmt = stmt.where(~_trait_exists(trait))
    for i in range(member_of):
        stmt = stmt.where(
            exists().where(
                ProviderAggregate.resource_provider_id == ResourceProvider.id,
                ProviderAggregate.aggregate_uuid.in_(bindparam(f"aggs_{i}", expanding=True)),
            )
        )
    if names:
        stmt = stmt.where(ResourceProvider.name.in_(bindparam("names", expanding=True)))
    if order is not None and aliases:
        inv = aliases[order[0]]
        if order[1]:
            stmt = stmt.order_by(inv.shortfall, inv.resource_provider_id)
        else:
            stmt = stmt.order_by(inv.shortfall.desc(), inv.resource_provider_id.desc())
    else:
        stmt = stmt.order_by(aliases[0].resource_provider_id if aliases else ResourceProvider.id)
    if limited:
        stmt = stmt.limit(bindparam("limit", type_=Integer))
    return stmt


@functools.lru_cache(maxsize=256)
def _cached(
    rcs: tuple[str, ...],
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: int,
    names: bool,
    limited: bool,
    order: tuple[int, bool] | None = None,
) -> Select[Any]:
    return _build(rcs, required, forbidden, member_of, names, limited, order)


def find_candidates(s: Session, query: ResourceQuery) -> list[Candidate]:
    """Providers that can hold the whole request, ordered by provider id (or as ``order_by_free``
    asks), at most ``limit``."""
    stmt, params, wanted = prepare(query)
    return candidates_from_rows(s.connection().execute(stmt, params).all(), wanted)


def prepare(query: ResourceQuery) -> tuple[Select[Any], dict[str, object], dict[str, int]]:
    """The (cached) statement of ``find_candidates``, its parameters and the amounts asked; a
    caller may add columns and outer joins (one row per provider kept) and read the candidates
    from the first columns with ``candidates_from_rows``."""
    wanted = {rc: int(n) for rc, n in query.resources.items() if n > 0}
    rcs = tuple(wanted)
    order = None
    if query.order_by_free is not None and query.order_by_free[0] in wanted:
        order = (rcs.index(query.order_by_free[0]), query.order_by_free[1])
    stmt = _cached(
        rcs,
        tuple(query.required_traits),
        tuple(query.forbidden_traits),
        len(query.member_of),
        query.provider_names is not None,
        query.limit is not None,
        order,
    )
    params: dict[str, object] = {f"amount_{i}": wanted[rc] for i, rc in enumerate(rcs)}
    params.update({f"aggs_{i}": list(any_of) for i, any_of in enumerate(query.member_of)})
    if query.provider_names is not None:
        params["names"] = list(query.provider_names)
    if query.limit is not None:
        params["limit"] = query.limit
    return stmt, params, wanted


def candidates_from_rows(rows: Sequence[Any], wanted: Mapping[str, int]) -> list[Candidate]:
    out = []
    slots = [(rc, 4 + 4 * i) for i, rc in enumerate(wanted)]
    for row in rows:
        uuid = row[1]
        usage = {rc: InventoryUse(row[k], row[k + 1], row[k + 2], row[k + 3]) for rc, k in slots}
        out.append(Candidate(uuid, row[2], row[3], {uuid: dict(wanted)}, usage))
    return out


def count_providers(s: Session, names: Sequence[str] | None = None) -> int:
    """How many providers exist (among ``names`` when given): the denominator for "placement: N hosts"."""
    stmt = select(func.count(ResourceProvider.id))
    if names is not None:
        stmt = stmt.where(ResourceProvider.name.in_(names))
    return int(s.execute(stmt).scalar_one())

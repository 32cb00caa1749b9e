"""Resource providers: create, inventories, traits, aggregates, and the generation check.

Every write that changes a provider bumps its ``generation`` with a compare-and-swap
``UPDATE ... WHERE generation = :seen``; a writer that lost the race gets
``ProviderGenerationConflict`` and must re-read before trying again (or try another provider).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from novalite.db.base import new_uuid
from novalite.db.models.placement import Inventory, ProviderAggregate, ProviderTrait, ResourceProvider, Trait
from novalite.db.precompiled import Precompiled
from novalite.errors import Conflict

VCPU = "VCPU"
MEMORY_MB = "MEMORY_MB"
DISK_GB = "DISK_GB"
STATUS_DISABLED_TRAIT = "COMPUTE_STATUS_DISABLED"


class ProviderGenerationConflict(Conflict):
    """Another writer changed the provider since it was read."""

    def __init__(self, provider_uuid: str):
        super().__init__(
            f"resource provider generation conflict on {provider_uuid}", kind="placement.concurrent_update"
        )


@dataclass(frozen=True)
class InventorySpec:
    """One resource class's inventory as placement describes it."""

    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int | None = None  # None: total
    step_size: int = 1
    allocation_ratio: float = 1.0


_PROVIDERS = cast(Table, ResourceProvider.__table__)
_BUMP = (
    update(_PROVIDERS)
    .where(_PROVIDERS.c.id == bindparam("provider_id"))
    .values(generation=_PROVIDERS.c.generation + 1)
)
_BUMP_IF_SEEN = (
    update(_PROVIDERS)
    .where(_PROVIDERS.c.id == bindparam("provider_id"), _PROVIDERS.c.generation == bindparam("seen"))
    .values(generation=_PROVIDERS.c.generation + 1)
)


def bump_generation(s: Session, provider_id: int, seen: int | None = None) -> None:
    """Advance the provider's generation.

    With ``seen`` (the generation the writer read earlier) this is a compare-and-swap that
    raises ``ProviderGenerationConflict`` when someone else wrote in between. Without it the
    increment is atomic and unconditional: used by writers whose own statements already guard
    the invariant (allocations check capacity in their ``UPDATE ... WHERE used + n <= cap``).
    """
    stmt = _BUMP if seen is None else _BUMP_IF_SEEN
    result = s.connection().execute(stmt, {"provider_id": provider_id, "seen": seen})
    if result.rowcount != 1:
        uuid = s.execute(select(ResourceProvider.uuid).where(ResourceProvider.id == provider_id)).scalar()
        raise ProviderGenerationConflict(str(uuid))


_BUMP_UUID = Precompiled(
    update(_PROVIDERS)
    .where(_PROVIDERS.c.uuid == bindparam("provider_uuid"))
    .values(generation=_PROVIDERS.c.generation + 1)
    .returning(_PROVIDERS.c.id)
)
_BUMP_UUID_IF_SEEN = (
    update(_PROVIDERS)
    .where(_PROVIDERS.c.uuid == bindparam("provider_uuid"), _PROVIDERS.c.generation == bindparam("seen"))
    .values(generation=_PROVIDERS.c.generation + 1)
    .returning(_PROVIDERS.c.id)
)
_PROVIDER_ID = select(_PROVIDERS.c.id).where(_PROVIDERS.c.uuid == bindparam("provider_uuid"))


def bump_generation_by_uuid(s: Session, provider_uuid: str, seen: int | None = None) -> int | None:
    """``bump_generation`` addressed by uuid, in one statement that also returns the provider's
    id. None when no such provider; ``ProviderGenerationConflict`` when ``seen`` is stale."""
    conn = s.connection()
    if seen is None:
        row = _BUMP_UUID.first(conn, {"provider_uuid": provider_uuid})
        return cast(int, row[0]) if row is not None else None
    found = conn.execute(_BUMP_UUID_IF_SEEN, {"provider_uuid": provider_uuid, "seen": seen}).scalar()
    if found is None:
        if conn.execute(_PROVIDER_ID, {"provider_uuid": provider_uuid}).scalar() is None:
            return None
        raise ProviderGenerationConflict(provider_uuid)
    return cast(int, found)


def create_provider(s: Session, *, name: str, uuid: str | None = None) -> ResourceProvider:
    """A new root provider (generation 0)."""
    rp = ResourceProvider(uuid=uuid or new_uuid(), name=name, generation=0)
    s.add(rp)
    s.flush()
    rp.root_provider_uuid = rp.uuid
    return rp


def get_provider(s: Session, uuid: str) -> ResourceProvider | None:
    return s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == uuid)).first()


def set_inventories(
    s: Session,
    provider: ResourceProvider,
    inventories: Mapping[str, InventorySpec],
    *,
    seen_generation: int | None = None,
) -> None:
    """Replace the provider's inventories, keeping ``used``; refuses to shrink below usage.

    The generation is bumped (and checked) first: the provider's row is the lock claims and
    releases take before the inventory rows (``placement.allocations``), so ``used`` read
    after it cannot change until this transaction ends."""
    s.flush()
    bump_generation(s, provider.id, seen_generation)
    existing = {
        inv.resource_class: inv
        for inv in s.scalars(
            select(Inventory)
            .where(Inventory.resource_provider_id == provider.id)
            .execution_options(populate_existing=True)
        )
    }
    for rc, inv in existing.items():
        if rc not in inventories:
            if inv.used:
                raise Conflict(
                    f"Inventory for {rc} on resource provider {provider.uuid} in use.",
                    kind="placement.inventory.inuse",
                )
            s.delete(inv)
    for rc, spec in inventories.items():
        row = existing.get(rc)
        if row is None:
            row = Inventory(resource_provider_id=provider.id, resource_class=rc, used=0)
            s.add(row)
        row.total, row.reserved, row.min_unit = spec.total, spec.reserved, spec.min_unit
        row.max_unit = spec.max_unit if spec.max_unit is not None else spec.total
        row.step_size, row.allocation_ratio = spec.step_size, spec.allocation_ratio
    s.flush()
    s.refresh(provider)


def ensure_traits(s: Session, names: Iterable[str]) -> dict[str, int]:
    """Trait name -> id, creating missing traits."""
    wanted = set(names)
    found = {t.name: t.id for t in s.scalars(select(Trait).where(Trait.name.in_(wanted)))} if wanted else {}
    for name in wanted - found.keys():
        trait = Trait(name=name)
        s.add(trait)
        s.flush()
        found[name] = trait.id
    return found


def set_traits(
    s: Session, provider: ResourceProvider, names: Iterable[str], *, seen_generation: int | None = None
) -> None:
    """Replace the provider's traits."""
    ids = ensure_traits(s, names)
    s.execute(delete(ProviderTrait).where(ProviderTrait.resource_provider_id == provider.id))
    s.add_all(ProviderTrait(resource_provider_id=provider.id, trait_id=i) for i in ids.values())
    s.flush()
    bump_generation(s, provider.id, seen_generation)


def provider_traits(s: Session, provider_id: int) -> list[str]:
    q = (
        select(Trait.name)
        .join(ProviderTrait, ProviderTrait.trait_id == Trait.id)
        .where(ProviderTrait.resource_provider_id == provider_id)
        .order_by(Trait.name)
    )
    return list(s.scalars(q))


def set_aggregates(
    s: Session,
    provider: ResourceProvider,
    aggregate_uuids: Iterable[str],
    *,
    seen_generation: int | None = None,
) -> None:
    """Replace the provider's placement aggregates."""
    s.execute(delete(ProviderAggregate).where(ProviderAggregate.resource_provider_id == provider.id))
    s.add_all(
        ProviderAggregate(resource_provider_id=provider.id, aggregate_uuid=a) for a in set(aggregate_uuids)
    )
    s.flush()
    bump_generation(s, provider.id, seen_generation)


def provider_aggregates(s: Session, provider_id: int) -> list[str]:
    q = select(ProviderAggregate.aggregate_uuid).where(ProviderAggregate.resource_provider_id == provider_id)
    return sorted(s.scalars(q))


def inventories_of(s: Session, provider_id: int) -> dict[str, Inventory]:
    q = select(Inventory).where(Inventory.resource_provider_id == provider_id)
    return {inv.resource_class: inv for inv in s.scalars(q)}


def capacity(inv: Inventory) -> int:
    """What may be allocated in total: (total - reserved) * allocation_ratio, rounded down."""
    return int((inv.total - inv.reserved) * inv.allocation_ratio)

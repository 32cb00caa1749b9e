"""Flavors: lookup, listing, creation, deletion, extra specs and project access.

Visibility: an admin sees every flavor; anyone else sees public flavors plus private flavors
their project was granted, and their *lists* leave out disabled flavors (a lookup by id still
finds one, so servers built from it stay readable). A flavor the caller cannot see is a 404
``FlavorNotFound``, never a 403.

One read path decides visibility and builds the snapshot: ``_visible`` is the rule of a lookup
by id, used by ``get_flavor`` (the ORM row, for the flavor routes) and by ``find_snapshot`` (one
precompiled column query, for POST /servers); ``snapshot`` / ``find_snapshot`` give the same
``FlavorSnapshot``.

Contracts used elsewhere: ``get_flavor(s, ctx, flavorid)``, ``find_snapshot(s, ctx, flavorid)``
and ``flavor_snapshot(flavor)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, bindparam, false, literal, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import new_uuid
from novalite.db.models.catalog import Flavor, FlavorExtraSpec, FlavorProjectAccess
from novalite.db.precompiled import Precompiled
from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.paging import paginate
from novalite.errors import Conflict, NotFound

# Nova's classic flavors: (flavorid, name, memory_mb, vcpus, root_gb)
CLASSIC_FLAVORS: tuple[tuple[str, str, int, int, int], ...] = (
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
)

# Columns a list may be sorted by (Nova's set; vcpu_weight is not stored here and sorts like id).
SORT_KEYS = {
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
}


def seed(runtime: Any, s: Session, ids: dict[str, str]) -> None:
    """Create the classic m1.* flavors that are missing (by id or by name)."""
    for flavorid, name, ram, vcpus, disk in CLASSIC_FLAVORS:
        clash = s.scalar(select(Flavor.id).where(or_(Flavor.flavorid == flavorid, Flavor.name == name)))
        if clash is None:
            s.add(
                Flavor(
                    flavorid=flavorid,
                    name=name,
                    memory_mb=ram,
                    vcpus=vcpus,
                    root_gb=disk,
                    ephemeral_gb=0,
                    swap=0,
                    rxtx_factor=1.0,
                    is_public=True,
                    disabled=False,
                )
            )
    s.flush()


def flavor_not_found(flavorid: str) -> NotFound:
    return NotFound(f"Flavor {flavorid} could not be found.", kind="FlavorNotFound")


def _granted(project_id: Any) -> ColumnElement[bool]:
    return Flavor.projects.any(FlavorProjectAccess.project_id == project_id)


def _visible(admin: bool, project_id: Any) -> ColumnElement[bool]:
    """Who may look a flavor up by id: an admin any flavor, anyone else public flavors and those
    granted to ``project_id`` (a value, or a bind parameter in a precompiled statement)."""
    if admin:
        return true()
    return or_(Flavor.is_public == true(), _granted(project_id))


def get_flavor(s: Session, ctx: RequestContext, flavorid: str) -> Flavor:
    """The flavor with API id ``flavorid`` if ctx may see it; 404 ``FlavorNotFound`` otherwise."""
    query = select(Flavor).where(Flavor.flavorid == str(flavorid), _visible(ctx.is_admin, ctx.project_id))
    flavor = s.scalars(query).first()
    if flavor is None:
        raise flavor_not_found(str(flavorid))
    return flavor


def snapshot(flavor: Flavor) -> FlavorSnapshot:
    """What a server keeps of its flavor at boot."""
    return FlavorSnapshot(
        flavorid=flavor.flavorid,
        name=flavor.name,
        memory_mb=flavor.memory_mb,
        vcpus=flavor.vcpus,
        root_gb=flavor.root_gb,
        ephemeral_gb=flavor.ephemeral_gb,
        swap=flavor.swap,
        extra_specs=dict(flavor.extra_specs),
        disabled=flavor.disabled,
        is_public=flavor.is_public,
        description=flavor.description,
    )


def flavor_snapshot(flavor: Flavor) -> dict[str, Any]:
    """``snapshot(flavor)`` as the instance's ``flavor`` JSON column."""
    return snapshot(flavor).to_dict()


_SNAPSHOT_COLUMNS = (
    "flavorid",
    "name",
    "memory_mb",
    "vcpus",
    "root_gb",
    "ephemeral_gb",
    "swap",
    "disabled",
    "is_public",
    "description",
)


@lru_cache(maxsize=2)
def _snapshot_query(admin: bool) -> Precompiled:
    """The flavor's columns with its extra specs (one row per spec), visible as in ``get_flavor``
    (``_visible`` with ``:project_id``), in one column query: no ORM objects, compiled once."""
    query = (
        select(
            *(getattr(Flavor, c) for c in _SNAPSHOT_COLUMNS),
            FlavorExtraSpec.key.label("spec_key"),
            FlavorExtraSpec.value.label("spec_value"),
        )
        .outerjoin(FlavorExtraSpec, FlavorExtraSpec.flavor_id == Flavor.id)
        .where(Flavor.flavorid == bindparam("flavorid"))
        .order_by(FlavorExtraSpec.key)
    )
    if not admin:
        query = query.where(_visible(admin, bindparam("project_id")))
    return Precompiled(query)


def find_snapshot(s: Session, ctx: RequestContext, flavorid: str) -> FlavorSnapshot | None:
    """``snapshot(get_flavor(s, ctx, flavorid))``, or None when missing or not visible to ctx, in
    one precompiled statement (POST /servers runs it for every create)."""
    rows = _snapshot_query(ctx.is_admin).all(
        _core(s), {"flavorid": str(flavorid), "project_id": ctx.project_id}
    )
    if not rows:
        return None
    fid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, disabled, is_public, description = rows[0][:10]
    return FlavorSnapshot(
        flavorid=fid,
        name=name,
        memory_mb=memory_mb,
        vcpus=vcpus,
        root_gb=root_gb,
        ephemeral_gb=ephemeral_gb,
        swap=swap,
        extra_specs={r[-2]: r[-1] for r in rows if r[-2] is not None},
        # the driver's values: SQLite gives booleans as 0/1
        disabled=bool(disabled),
        is_public=bool(is_public),
        description=description,
    )


def _core(s: Session) -> Connection:
    """The session's connection, for column-only statements: skips the ORM execution layer.
    Pending ORM changes are flushed first, as ``s.execute`` would (autoflush)."""
    if s.autoflush:
        s.flush()
    return s.connection()


@dataclass(frozen=True)
class FlavorQuery:
    """List filters; ``is_public`` None means public and private (admin only)."""

    is_public: bool | None = True
    min_ram: int = 0
    min_disk: int = 0
    name: str | None = None  # a regular expression searched in the name (2.102; before 2.75 too)
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int = 1000
    marker: str | None = None


def _visibility_filter(ctx: RequestContext, is_public: bool | None) -> list[ColumnElement[bool]]:
    granted = _granted(ctx.project_id)
    if not ctx.is_admin:
        # members: public + granted, never disabled; the is_public query is ignored
        return [or_(Flavor.is_public == true(), granted), Flavor.disabled == false()]
    if is_public is None:
        return []
    if is_public:
        return [or_(Flavor.is_public == true(), granted)]
    return [Flavor.is_public == false()]


def list_flavors(s: Session, ctx: RequestContext, query: FlavorQuery) -> list[Flavor]:
    """One page of the flavors ctx may list, sorted, after ``marker`` (a flavorid; unknown -> 400)."""
    stmt = select(Flavor).where(*_visibility_filter(ctx, query.is_public))
    # bound as BIGINT: the API clamps a huge minRam to one past the largest INTEGER (matches nothing),
    # which PostgreSQL refuses as an INTEGER parameter
    if query.min_ram:
        stmt = stmt.where(Flavor.memory_mb >= literal(query.min_ram, BigInteger))
    if query.min_disk:
        stmt = stmt.where(Flavor.root_gb >= literal(query.min_disk, BigInteger))
    key = "id" if query.sort_key == "vcpu_weight" else query.sort_key
    column = getattr(Flavor, key)
    if query.sort_dir == "desc":
        stmt = stmt.order_by(column.desc(), Flavor.id.desc())
    else:
        stmt = stmt.order_by(column.asc(), Flavor.id.asc())
    flavors = list(s.scalars(stmt))
    if query.name is not None:
        flavors = [f for f in flavors if _name_matches(query.name, f.name)]
    return paginate(flavors, lambda f: f.flavorid, query.limit, query.marker)


def _name_matches(pattern: str, name: str) -> bool:
    """Nova hands ``name`` to the database's regexp operator (a search, ``bob`` matches ``bobb``);
    a pattern that is not a valid regular expression is searched as plain text."""
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


@dataclass(frozen=True)
class NewFlavor:
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    flavorid: str | None = None  # None: a new UUID
    description: str | None = None


def create_flavor(s: Session, new: NewFlavor) -> Flavor:
    """Insert a flavor; 409 when the name or the id is taken."""
    flavorid = new.flavorid if new.flavorid is not None else new_uuid()
    if s.scalar(select(Flavor.id).where(Flavor.name == new.name)) is not None:
        raise Conflict(f"Flavor with name {new.name} already exists.", kind="FlavorExists")
    if s.scalar(select(Flavor.id).where(Flavor.flavorid == flavorid)) is not None:
        raise Conflict(f"Flavor with ID {flavorid} already exists.", kind="FlavorIdExists")
    flavor = Flavor(
        flavorid=flavorid,
        name=new.name,
        memory_mb=new.memory_mb,
        vcpus=new.vcpus,
        root_gb=new.root_gb,
        ephemeral_gb=new.ephemeral_gb,
        swap=new.swap,
        rxtx_factor=new.rxtx_factor,
        is_public=new.is_public,
        disabled=False,
        description=new.description,
    )
    s.add(flavor)
    try:
        s.flush()
    except IntegrityError:  # a concurrent create won the race
        raise Conflict(f"Flavor with ID {flavorid} already exists.", kind="FlavorIdExists") from None
    s.refresh(flavor)
    return flavor


def delete_flavor(s: Session, ctx: RequestContext, flavorid: str) -> None:
    flavor = get_flavor(s, ctx, flavorid)
    s.delete(flavor)
    s.flush()


def update_description(s: Session, ctx: RequestContext, flavorid: str, description: str | None) -> Flavor:
    flavor = get_flavor(s, ctx, flavorid)
    flavor.description = description
    s.flush()
    return flavor


# --- extra specs ---------------------------------------------------------------------------


def extra_spec_not_found(flavorid: str, key: str) -> NotFound:
    return NotFound(f"Flavor {flavorid} has no extra specs with key {key}.", kind="FlavorExtraSpecsNotFound")


def set_extra_specs(s: Session, flavor: Flavor, specs: Mapping[str, str]) -> None:
    """Add or overwrite the given keys; other keys stay."""
    existing = {spec.key: spec for spec in flavor.specs}
    for key, value in specs.items():
        if key in existing:
            existing[key].value = value
        else:
            flavor.specs.append(FlavorExtraSpec(key=key, value=value))
    s.flush()


def delete_extra_spec(s: Session, flavor: Flavor, key: str) -> None:
    for spec in flavor.specs:
        if spec.key == key:
            flavor.specs.remove(spec)
            s.flush()
            return
    raise extra_spec_not_found(flavor.flavorid, key)


# --- project access ------------------------------------------------------------------------


def access_list(flavor: Flavor, *, refuse_public: bool = True) -> list[dict[str, str]]:
    """``[{flavor_id, tenant_id}]``; with ``refuse_public`` a public flavor has no list (404)."""
    if refuse_public and flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    return [
        {"flavor_id": flavor.flavorid, "tenant_id": p.project_id}
        for p in sorted(flavor.projects, key=lambda p: p.project_id)
    ]


def add_access(s: Session, flavor: Flavor, project_id: str, *, refuse_public: bool) -> None:
    """Grant ``project_id``; 409 when already granted (or, with ``refuse_public``, when public)."""
    if refuse_public and flavor.is_public:
        raise Conflict("Can not add access to a public flavor.", kind="FlavorAccessExists")
    if any(p.project_id == project_id for p in flavor.projects):
        raise Conflict(
            f"Flavor access already exists for flavor {flavor.flavorid} and project "
            f"{project_id} combination.",
            kind="FlavorAccessExists",
        )
    flavor.projects.append(FlavorProjectAccess(project_id=project_id))
    s.flush()


def remove_access(s: Session, flavor: Flavor, project_id: str) -> None:
    for grant in flavor.projects:
        if grant.project_id == project_id:
            flavor.projects.remove(grant)
            s.flush()
            return
    raise NotFound(
        f"Flavor access not found for {flavor.flavorid} / {project_id} combination.",
        kind="FlavorAccessNotFound",
    )

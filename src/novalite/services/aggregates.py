"""Host aggregates (§6.10): create/update/delete, hosts and metadata.

An aggregate groups compute hosts; its ``availability_zone`` metadata puts them in that zone
(zones themselves are resolved in ``novalite.services.zones``). A host may be in several
aggregates but never in two different zones: adding a host, or setting a zone, that would do
so is refused (409 on add_host, 400 on update/set_metadata, as Nova).

Placement mirror: every aggregate is also a placement aggregate with the same uuid, holding
the resource providers of its hosts' compute nodes (what placement's ``member_of`` answers).
The scheduler does not use it for zones: it narrows the candidates to the zone's hosts by name
(``zones.hosts_in_zone``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.aggregates import Aggregate, AggregateHost, AggregateMetadata
from novalite.db.models.placement import ComputeNode, ProviderAggregate, ResourceProvider, Service
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import providers
from novalite.services.zones import COMPUTE

AZ_KEY = "availability_zone"


# --- lookups --------------------------------------------------------------------------------


def aggregate_not_found(agg_id: object) -> NotFound:
    return NotFound(f"Aggregate {agg_id} could not be found.", kind="AggregateNotFound")


def get_aggregate(s: Session, agg_id: int) -> Aggregate:
    agg = s.get(Aggregate, agg_id)
    if agg is None:
        raise aggregate_not_found(agg_id)
    return agg


def list_aggregates(s: Session) -> list[Aggregate]:
    return list(s.scalars(select(Aggregate).order_by(Aggregate.id)))


def hosts_of(s: Session, agg_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in agg_ids}
    rows = s.execute(
        select(AggregateHost.aggregate_id, AggregateHost.host)
        .where(AggregateHost.aggregate_id.in_(agg_ids))
        .order_by(AggregateHost.host)
    )
    for agg_id, host in rows:
        out[agg_id].append(host)
    return out


def metadata_of(s: Session, agg_ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {i: {} for i in agg_ids}
    rows = s.execute(
        select(AggregateMetadata.aggregate_id, AggregateMetadata.key, AggregateMetadata.value).where(
            AggregateMetadata.aggregate_id.in_(agg_ids)
        )
    )
    for agg_id, key, value in rows:
        out[agg_id][key] = value
    return out


# --- writes ---------------------------------------------------------------------------------


def _name_taken(s: Session, name: str, except_id: int | None = None) -> None:
    other = s.scalars(select(Aggregate).where(Aggregate.name == name)).first()
    if other is not None and other.id != except_id:
        raise Conflict(f"Aggregate {name} already exists.", kind="AggregateNameExists")


def create_aggregate(s: Session, name: str, zone: str | None) -> Aggregate:
    """A new aggregate (409 when the name is taken); ``zone`` None or empty means no zone."""
    _name_taken(s, name)
    agg = Aggregate(name=name, availability_zone=zone or None, created_at=utcnow())
    s.add(agg)
    s.flush()
    return agg


def _check_zone(
    s: Session,
    agg: Aggregate,
    metadata: Mapping[str, str | None],
    hosts: list[str],
    fail: type[BadRequest] | type[Conflict],
    prefix: str,
) -> None:
    """Refuse an empty zone, or a zone that differs from one the hosts already have."""
    if AZ_KEY not in metadata:
        return
    zone = metadata[AZ_KEY]
    if not zone:
        raise fail(f"{prefix}. Reason: Aggregate {agg.name} does not support empty named availability zone.")
    stmt = (
        select(Aggregate.availability_zone)
        .join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
        .where(
            AggregateHost.host.in_(hosts),
            Aggregate.id != agg.id,
            Aggregate.availability_zone.is_not(None),
            Aggregate.availability_zone != zone,
        )
    )
    conflicting = list(s.scalars(stmt))
    if conflicting:
        raise fail(f"{prefix}. Reason: One or more hosts already in availability zone(s) {conflicting}.")


def _apply_metadata(s: Session, agg: Aggregate, metadata: Mapping[str, str | None]) -> None:
    """Set keys; a None value removes the key."""
    for key, value in metadata.items():
        if key == AZ_KEY:
            agg.availability_zone = value or None
            continue
        s.execute(
            delete(AggregateMetadata).where(
                AggregateMetadata.aggregate_id == agg.id, AggregateMetadata.key == key
            )
        )
        if value is not None:
            s.add(AggregateMetadata(aggregate_id=agg.id, key=key, value=str(value)))
    agg.updated_at = utcnow()
    s.flush()


def update_aggregate(
    s: Session, agg_id: int, *, name: str | None, fields: Mapping[str, str | None]
) -> Aggregate:
    """PUT: rename and/or change the zone (``fields`` may hold ``availability_zone``)."""
    agg = get_aggregate(s, agg_id)
    if name is not None:
        _name_taken(s, name, agg.id)
        agg.name = name
        agg.updated_at = utcnow()
    hosts = hosts_of(s, [agg.id])[agg.id]
    _check_zone(s, agg, fields, hosts, BadRequest, f"Cannot update aggregate: {agg.id}")
    if fields:
        _apply_metadata(s, agg, fields)
    s.flush()
    return agg


def set_metadata(s: Session, agg_id: int, metadata: Mapping[str, str | None]) -> Aggregate:
    agg = get_aggregate(s, agg_id)
    hosts = hosts_of(s, [agg.id])[agg.id]
    _check_zone(s, agg, metadata, hosts, BadRequest, f"Cannot update metadata of aggregate: {agg.id}")
    _apply_metadata(s, agg, metadata)
    return agg


def delete_aggregate(s: Session, agg_id: int) -> None:
    """400 while hosts remain (Nova's InvalidAggregateActionDelete)."""
    agg = get_aggregate(s, agg_id)
    if hosts_of(s, [agg.id])[agg.id]:
        raise BadRequest(
            f"Cannot delete aggregate: {agg.id}. Reason: Host aggregate is not empty.",
            kind="InvalidAggregateActionDelete",
        )
    s.execute(delete(ProviderAggregate).where(ProviderAggregate.aggregate_uuid == agg.uuid))
    s.delete(agg)
    s.flush()


def _require_compute_host(s: Session, host: str) -> None:
    found = s.scalars(
        select(Service.id).where(Service.host == host, Service.binary == COMPUTE, Service.deleted.is_(False))
    ).first()
    if found is None:
        raise NotFound(f"Compute host {host} could not be found.", kind="ComputeHostNotFound")


def add_host(s: Session, agg_id: int, host: str) -> Aggregate:
    """404 unknown host/aggregate, 409 already a member or another zone; mirrored to placement."""
    _require_compute_host(s, host)
    agg = get_aggregate(s, agg_id)
    if s.get(AggregateHost, (agg.id, host)) is not None:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.", kind="AggregateHostExists")
    if agg.availability_zone:
        _check_zone(
            s,
            agg,
            {AZ_KEY: agg.availability_zone},
            [host],
            Conflict,
            f"Cannot add host to aggregate {agg.id}",
        )
    s.add(AggregateHost(aggregate_id=agg.id, host=host))
    agg.updated_at = utcnow()
    s.flush()
    _mirror(s, host, agg.uuid, add=True)
    return agg


def remove_host(s: Session, agg_id: int, host: str) -> Aggregate:
    """404 (Nova's "Cannot remove host ... in aggregate ...") when the host is not a member."""
    agg = s.get(Aggregate, agg_id)
    member = s.get(AggregateHost, (agg_id, host)) if agg is not None else None
    if agg is None or member is None:
        raise NotFound(f"Cannot remove host {host} in aggregate {agg_id}", kind="AggregateHostNotFound")
    s.delete(member)
    agg.updated_at = utcnow()
    s.flush()
    _mirror(s, host, agg.uuid, add=False)
    return agg


def _mirror(s: Session, host: str, agg_uuid: str, *, add: bool) -> None:
    """Add/remove ``agg_uuid`` on the resource providers of the host's compute nodes."""
    rps = s.scalars(
        select(ResourceProvider)
        .join(ComputeNode, ComputeNode.uuid == ResourceProvider.uuid)
        .where(ComputeNode.host == host, ComputeNode.deleted.is_(False))
    )
    for rp in list(rps):
        current = set(providers.provider_aggregates(s, rp.id))
        wanted = current | {agg_uuid} if add else current - {agg_uuid}
        if wanted != current:
            providers.set_aggregates(s, rp, wanted)

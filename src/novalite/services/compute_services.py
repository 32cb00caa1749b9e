"""Services (``nova-compute`` per host, ``nova-conductor`` / ``nova-scheduler`` on the controller)
for os-services and os-hypervisors.

State: a service is *up* when its last heartbeat is at most ``Settings.service_down_time``
seconds old and it is not forced down. The control services run inside this process, so
``ensure_control_services`` records them (zone ``internal``) and refreshes their heartbeat
whenever the service list is read: while the API answers, they are alive.

Disabling a compute service sets the ``COMPUTE_STATUS_DISABLED`` trait on its compute nodes'
resource providers (the scheduler asks placement to forbid it); enabling removes it.
Deleting a compute service that hosts servers is a 409; otherwise its aggregate memberships,
resource providers and compute nodes go with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.base import Database, utcnow
from novalite.db.models.aggregates import Aggregate, AggregateHost
from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, ProviderAggregate, ResourceProvider, Service
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement import providers
from novalite.services.zones import (
    COMPUTE,
    CONTROL_BINARIES,
    INTERNAL_ZONE,
    controller_host,
    host_zones,
    service_zone,
)


def ensure_control_services(db: Database, down_time: int) -> None:
    """Record the in-process conductor and scheduler, refreshing a stale heartbeat."""
    host, now = controller_host(), utcnow()
    try:
        with db.session() as s:
            found = {
                svc.binary: svc
                for svc in s.scalars(
                    select(Service).where(Service.host == host, Service.binary.in_(CONTROL_BINARIES))
                )
            }
            for binary in CONTROL_BINARIES:
                svc = found.get(binary)
                if svc is None:
                    s.add(
                        Service(
                            binary=binary,
                            host=host,
                            topic=binary.removeprefix("nova-"),
                            availability_zone=INTERNAL_ZONE,
                            last_seen_at=now,
                            report_count=1,
                        )
                    )
                elif not svc.deleted and (
                    svc.last_seen_at is None or (now - svc.last_seen_at).total_seconds() > down_time / 4
                ):
                    svc.last_seen_at = now
                    svc.report_count += 1
    except IntegrityError:  # another request recorded them first
        return


def list_services(s: Session, *, host: str | None = None, binary: str | None = None) -> list[Service]:
    stmt = select(Service).where(Service.deleted.is_(False))
    if host:
        stmt = stmt.where(Service.host == host)
    if binary:
        stmt = stmt.where(Service.binary == binary)
    return list(s.scalars(stmt.order_by(Service.id)))


def get_by_uuid(s: Session, uuid: str) -> Service:
    svc = s.scalars(select(Service).where(Service.uuid == uuid, Service.deleted.is_(False))).first()
    if svc is None:
        raise NotFound(f"Service {uuid} could not be found.", kind="ServiceNotFound")
    return svc


def get_by_id(s: Session, ident: int) -> Service:
    svc = s.get(Service, ident)
    if svc is None or svc.deleted:
        raise NotFound(f"Service {ident} could not be found.", kind="ServiceNotFound")
    return svc


def get_by_host_binary(s: Session, host: str, binary: str) -> Service:
    """The pre-2.53 lookup; only nova-compute may be updated (400), unknown is 404."""
    if binary != COMPUTE:
        raise BadRequest(
            f"Updating a {binary} service is not supported. Only nova-compute services can be updated."
        )
    svc = s.scalars(
        select(Service).where(Service.host == host, Service.binary == binary, Service.deleted.is_(False))
    ).first()
    if svc is None:
        raise NotFound(
            f"Compute host {host} with binary {binary} could not be found.", kind="HostBinaryNotFound"
        )
    return svc


def require_compute(svc: Service) -> None:
    if svc.binary != COMPUTE:
        raise BadRequest(
            f"Updating a {svc.binary} service is not supported. Only nova-compute services can be updated."
        )


def _host_providers(s: Session, host: str) -> list[ResourceProvider]:
    return list(
        s.scalars(
            select(ResourceProvider)
            .join(ComputeNode, ComputeNode.uuid == ResourceProvider.uuid)
            .where(ComputeNode.host == host)
        )
    )


def set_disabled(s: Session, svc: Service, disabled: bool, reason: str | None) -> None:
    """Enable/disable scheduling to the service's host, mirrored as a provider trait."""
    svc.disabled = disabled
    svc.disabled_reason = reason if disabled else None
    svc.updated_at = utcnow()
    s.flush()
    if svc.binary != COMPUTE:
        return
    for rp in _host_providers(s, svc.host):
        current = set(providers.provider_traits(s, rp.id))
        wanted = (
            current | {providers.STATUS_DISABLED_TRAIT}
            if disabled
            else current - {providers.STATUS_DISABLED_TRAIT}
        )
        if wanted != current:
            providers.set_traits(s, rp, wanted)


def set_forced_down(s: Session, svc: Service, forced_down: bool) -> None:
    svc.forced_down = forced_down
    svc.updated_at = utcnow()
    s.flush()


def delete_service(s: Session, svc: Service) -> None:
    """409 while a compute host has servers; else drop memberships, providers and nodes too."""
    if svc.binary == COMPUTE:
        hosted = s.scalar(
            select(func.count(Instance.id)).where(Instance.host == svc.host, Instance.deleted.is_(False))
        )
        if hosted:
            raise Conflict(
                "Unable to delete compute service that is hosting instances. "
                "Migrate or delete the instances first."
            )
        agg_uuids = list(
            s.scalars(
                select(Aggregate.uuid)
                .join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
                .where(AggregateHost.host == svc.host)
            )
        )
        s.execute(delete(AggregateHost).where(AggregateHost.host == svc.host))
        for rp in _host_providers(s, svc.host):
            s.execute(
                delete(ProviderAggregate).where(
                    ProviderAggregate.resource_provider_id == rp.id,
                    ProviderAggregate.aggregate_uuid.in_(agg_uuids),
                )
            )
            s.delete(rp)
        now = utcnow()
        for node in s.scalars(
            select(ComputeNode).where(ComputeNode.host == svc.host, ComputeNode.deleted.is_(False))
        ):
            node.deleted, node.deleted_at = True, now
    svc.deleted, svc.deleted_at = True, utcnow()
    s.flush()


def updated_time(svc: Service) -> dt.datetime | None:
    """What Nova shows as ``updated_at``: the last heartbeat (else the row's update time)."""
    return svc.last_seen_at or svc.updated_at


def zones_of(s: Session, services: Sequence[Service]) -> dict[int, str]:
    zones = host_zones(s, [svc.host for svc in services if svc.binary == COMPUTE])
    return {svc.id: service_zone(svc, zones) for svc in services}

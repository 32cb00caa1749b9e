"""Availability zones (§6.10, §3.3 step 1): the one place zones are resolved.

An aggregate's ``availability_zone`` puts its hosts in that zone; a compute host in no zoned
aggregate is in ``DEFAULT_ZONE``; the control services are in ``INTERNAL_ZONE`` (both names
from ``novalite.domain.zones``). A host is never in two different zones: ``services.aggregates``
refuses the writes that would do it.

A zone is available while one of its enabled services is up, so the rule for "up" lives here
too (``service_is_up``; os-services and os-hypervisors show it).

Contracts used elsewhere:
  ``zone_names(s) -> set[str]`` (the zones a server may ask for);
  ``host_zones(s, hosts) -> dict[str, set[str]]``;
  ``host_in_zone(s, host, zone) -> bool`` (a forced host against the zone asked for);
  ``hosts_in_zone(s, zone) -> list[str] | None`` (the scheduler's candidate hosts);
  ``availability_zones(s, down_time) -> list[ZoneInfo]`` (zone, available, hosts: os-availability-zone).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from novalite.db.base import utcnow
from novalite.db.models.aggregates import Aggregate, AggregateHost
from novalite.db.models.placement import Service
from novalite.domain.zones import DEFAULT_ZONE, INTERNAL_ZONE

__all__ = [
    "COMPUTE",
    "CONTROL_BINARIES",
    "DEFAULT_ZONE",
    "INTERNAL_ZONE",
    "HostService",
    "ZoneInfo",
    "availability_zones",
    "controller_host",
    "host_in_zone",
    "host_zones",
    "hosts_in_zone",
    "service_is_up",
    "service_zone",
    "zone_names",
]

COMPUTE = "nova-compute"
CONTROL_BINARIES = ("nova-conductor", "nova-scheduler")


def controller_host() -> str:
    """Where the in-process control services (conductor, scheduler) run."""
    return socket.gethostname()


# --- zones of hosts -------------------------------------------------------------------------

_ZONES = select(Aggregate.availability_zone).where(Aggregate.availability_zone.is_not(None))


def zone_names(s: Session) -> set[str]:
    """The zones a server may ask for: the default zone plus every aggregate's zone."""
    return {DEFAULT_ZONE} | {z for (z,) in s.execute(_ZONES) if z}


def host_zones(s: Session, hosts: list[str] | None = None) -> dict[str, set[str]]:
    """host -> zones of the zoned aggregates holding it (only hosts in such aggregates)."""
    stmt = (
        select(AggregateHost.host, Aggregate.availability_zone)
        .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
        .where(Aggregate.availability_zone.is_not(None))
    )
    if hosts is not None:
        stmt = stmt.where(AggregateHost.host.in_(hosts))
    out: dict[str, set[str]] = {}
    for host, zone in s.execute(stmt):
        if zone:
            out.setdefault(host, set()).add(zone)
    return out


def host_in_zone(s: Session, host: str, zone: str) -> bool:
    """Whether ``host`` is in ``zone``: one of its aggregates' zones, or the default zone for a
    host in no zoned aggregate."""
    zones = host_zones(s, [host]).get(host, set())
    return zone in zones if zones else zone == DEFAULT_ZONE


_ZONE_HOSTS = (
    select(AggregateHost.host)
    .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
    .where(Aggregate.availability_zone == bindparam("zone"))
)


def hosts_in_zone(s: Session, zone: str) -> list[str] | None:
    """Hosts of the aggregates whose zone is ``zone``; None when no aggregate with hosts has it
    (the default zone, or an unknown one: the candidates are then not narrowed by zone)."""
    return list(s.scalars(_ZONE_HOSTS, {"zone": zone})) or None


# --- zones of services ----------------------------------------------------------------------


@dataclass(frozen=True)
class HostService:
    available: bool  # up: recent heartbeat and not forced down
    active: bool  # enabled
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class ZoneInfo:
    zone: str
    available: bool
    hosts: dict[str, dict[str, HostService]] = field(default_factory=dict)  # host -> binary -> state


def service_is_up(svc: Service, down_time: int, now: dt.datetime | None = None) -> bool:
    """Up when not forced down and the last heartbeat is at most ``down_time`` seconds old.

    The conductor and scheduler of this controller run inside this process: while it answers,
    they are up, whatever their recorded heartbeat says.
    """
    if svc.forced_down:
        return False
    if svc.binary in CONTROL_BINARIES and svc.host == controller_host():
        return True
    if svc.last_seen_at is None:
        return False
    return ((now or utcnow()) - svc.last_seen_at).total_seconds() <= down_time


def service_zone(svc: Service, zones: Mapping[str, set[str]]) -> str:
    """A service's zone, ``zones`` as ``host_zones`` gives them."""
    if svc.binary != COMPUTE:
        return INTERNAL_ZONE
    found = sorted(zones.get(svc.host, set()))
    return found[0] if found else DEFAULT_ZONE


def availability_zones(s: Session, down_time: int = 60) -> list[ZoneInfo]:
    """Zones with an enabled service (available, sorted), then zones with only disabled ones.

    ``hosts`` of an available zone lists its enabled services; ``internal`` is included
    (callers showing the plain list leave it out). Until the control services are recorded
    (the first os-services list does it) they are shown up on the controller host: they run
    in this process.
    """
    services = list(s.scalars(select(Service).where(Service.deleted.is_(False)).order_by(Service.host)))
    zones = host_zones(s)
    now = utcnow()
    enabled: dict[str, dict[str, dict[str, HostService]]] = {}
    if not any(svc.binary in CONTROL_BINARIES for svc in services):
        enabled[INTERNAL_ZONE] = {
            controller_host(): {b: HostService(True, True, now) for b in CONTROL_BINARIES}
        }
    disabled: set[str] = set()
    for svc in services:
        zone = service_zone(svc, zones)
        if svc.disabled:
            disabled.add(zone)
            continue
        state = HostService(
            available=service_is_up(svc, down_time, now),
            active=True,
            updated_at=svc.last_seen_at or svc.updated_at,
        )
        enabled.setdefault(zone, {}).setdefault(svc.host, {})[svc.binary] = state
    out = [ZoneInfo(zone, True, enabled[zone]) for zone in sorted(enabled)]
    out += [ZoneInfo(zone, False) for zone in sorted(disabled - enabled.keys())]
    return out

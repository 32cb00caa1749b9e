"""The reads behind the legacy ``/os-hosts`` API (``compute_api.hosts``, below 2.43): which
services run on which host, and one compute host's capacity and what its instances use.

Nova's host actions (enable/disable, maintenance mode, reboot/shutdown/startup) reach the virt
driver, and neither the fake nor the QEMU driver can do them (libvirt cannot either): after the
checks Nova makes first (the host exists: 404; its compute service is up: 400), the answer is
``FeatureNotSupported`` (501), which is what a Nova cloud with libvirt answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode, Service
from novalite.errors import BadRequest, NotFound, NovaliteError
from novalite.services import hypervisors
from novalite.services.compute_services import zones_of
from novalite.services.zones import COMPUTE, service_is_up

API_BINARIES = ("nova-osapi_compute", "nova-metadata")


class FeatureNotSupported(NovaliteError):
    """Nova's ``raise_feature_not_supported``: the driver cannot do it (501)."""

    status = 501
    title = "Not Implemented"

    def __init__(self, message: str = "The requested functionality is not supported."):
        super().__init__(message, kind="NotImplemented")


@dataclass(frozen=True)
class HostRow:
    host_name: str
    service: str  # the service's topic: compute, conductor, scheduler
    zone: str


@dataclass(frozen=True)
class Resources:
    project: str  # (total), (used_now), (used_max) or a project id
    cpu: int
    memory_mb: int
    disk_gb: int


def list_hosts(s: Session, zone: str | None) -> list[HostRow]:
    """Enabled services (not the API's own), with their zones; ``zone`` narrows to one."""
    services = list(
        s.scalars(
            select(Service)
            .where(Service.deleted.is_(False), Service.disabled.is_(False))
            .order_by(Service.id)
        )
    )
    zones = zones_of(s, services)
    rows = [
        HostRow(host_name=svc.host, service=svc.topic or svc.binary.removeprefix("nova-"), zone=zones[svc.id])
        for svc in services
        if svc.binary not in API_BINARIES
    ]
    return [r for r in rows if r.zone == zone] if zone else rows


def host_resources(s: Session, host: str) -> list[Resources]:
    """The compute host's capacity, its use now (placement, with reserved memory and disk), the
    sum of its instances' flavors, then that sum per project."""
    node = s.scalars(
        select(ComputeNode)
        .where(ComputeNode.host == host, ComputeNode.deleted.is_(False))
        .order_by(ComputeNode.id)
    ).first()
    if node is None:
        raise NotFound(f"Host '{host}' is not mapped to any cell", kind="HostMappingNotFound")
    used = hypervisors.load(s, [node], with_servers=False)[0].used
    out = [
        Resources("(total)", node.vcpus, node.memory_mb, node.local_gb),
        Resources("(used_now)", used.get("VCPU", 0), used.get("MEMORY_MB", 0), used.get("DISK_GB", 0)),
    ]
    per_project: dict[str, list[int]] = {}
    for project, vcpus, memory, root, ephemeral in s.execute(
        select(
            Instance.project_id, Instance.vcpus, Instance.memory_mb, Instance.root_gb, Instance.ephemeral_gb
        )
        .where(Instance.host == host, Instance.deleted.is_(False))
        .order_by(Instance.id)
    ):
        totals = per_project.setdefault(project, [0, 0, 0])
        totals[0] += vcpus
        totals[1] += memory
        totals[2] += root + (ephemeral or 0)
    out.append(
        Resources(
            "(used_max)",
            sum(t[0] for t in per_project.values()),
            sum(t[1] for t in per_project.values()),
            sum(t[2] for t in per_project.values()),
        )
    )
    out.extend(Resources(project, *totals) for project, totals in per_project.items())
    return out


def check_host_action(s: Session, host: str, down_time: int) -> None:
    """What Nova checks before it asks the host's driver: the host has a compute service
    (404) that is up (400). The driver then cannot do it (501)."""
    svc = s.scalars(
        select(Service).where(Service.host == host, Service.binary == COMPUTE, Service.deleted.is_(False))
    ).first()
    if svc is None:
        raise NotFound(f"Host '{host}' is not mapped to any cell", kind="HostMappingNotFound")
    if not service_is_up(svc, down_time):
        raise BadRequest(
            f"Compute service of {host} is unavailable at this time.", kind="ComputeServiceUnavailable"
        )
    raise FeatureNotSupported()

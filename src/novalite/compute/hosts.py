"""Simulated hypervisors: ``fake-host-1..N`` (``Settings.fake_hosts``).

``seed(runtime, session, ids)`` (a bootstrap seeder) adds what is missing for each host: its
``nova-compute`` Service, its ComputeNode and the node's ResourceProvider (same uuid) with
VCPU / MEMORY_MB / DISK_GB inventories from ``fake_host_vcpus/ram_mb/disk_gb`` and the
allocation ratios from the settings. Idempotent; raising ``fake_hosts`` adds the new hosts,
lowering it removes nothing. Rows are written in bulk (thousands of hosts take one pass).

With ``virt_driver = "qemu"`` this machine is a real hypervisor too: one host named
``socket.gethostname()`` (``real_host``), whose ComputeNode and inventories come from
``host_resources`` (CPU count, memory, free disk under ``<data_dir>/instances``) less the
``reserved_host_*`` amounts, times the allocation ratios; refreshed on every start.
"""

from __future__ import annotations

import math
import socket
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from novalite.db.base import new_uuid, utcnow
from novalite.db.models.placement import ComputeNode, Inventory, ResourceProvider, Service
from novalite.domain.zones import DEFAULT_ZONE

BINARY = "nova-compute"
PREFIX = "fake-host-"
CPU_INFO = {
    "arch": "x86_64",
    "model": "Nehalem",
    "vendor": "Intel",
    "maxphysaddr": {"bits": 46},
    "topology": {"cells": 1, "sockets": 1, "cores": 1, "threads": 1},
    "features": ["sse", "sse2", "ssse3", "sse4.1", "sse4.2", "avx", "vmx"],
}
SUPPORTED_INSTANCES = [["x86_64", "qemu", "hvm"], ["i686", "qemu", "hvm"]]


def host_name(index: int) -> str:
    return f"{PREFIX}{index}"


def local_hosts(s: Session) -> list[str]:
    """Every simulated compute host recorded in the database (the agents this process runs)."""
    q = select(Service.host).where(
        Service.binary == BINARY, Service.host.like(PREFIX + "%"), Service.deleted.is_(False)
    )
    return sorted(s.scalars(q), key=lambda h: (len(h), h))


def real_host(settings: Any) -> str | None:
    """The QEMU host's name (this machine), or None with the fake driver."""
    return socket.gethostname() if settings.virt_driver == "qemu" else None


def seed(runtime: Any, s: Session, ids: dict[str, str]) -> None:
    settings = runtime.settings
    if settings.virt_driver == "qemu":
        seed_real_host(settings, s)
    existing = set(s.scalars(select(Service.host).where(Service.binary == BINARY)))
    missing = [host_name(i) for i in range(1, settings.fake_hosts + 1) if host_name(i) not in existing]
    if not missing:
        return
    now = utcnow()
    conn = s.connection()  # executemany, no ORM objects: thousands of hosts in one pass
    conn.execute(
        insert(Service),
        [
            {
                "uuid": new_uuid(),
                "binary": BINARY,
                "host": h,
                "topic": "compute",
                "availability_zone": DEFAULT_ZONE,
                "last_seen_at": now,
                "report_count": 0,
            }
            for h in missing
        ],
    )
    wanted = set(missing)
    service_ids = {
        h: i
        for i, h in conn.execute(select(Service.id, Service.host).where(Service.binary == BINARY))
        if h in wanted
    }
    node_uuids = {h: new_uuid() for h in missing}
    conn.execute(
        insert(ComputeNode),
        [
            {
                "uuid": node_uuids[h],
                "service_id": service_ids[h],
                "host": h,
                "hypervisor_hostname": h,
                "hypervisor_type": "QEMU",
                "hypervisor_version": 8002000,
                "vcpus": settings.fake_host_vcpus,
                "memory_mb": settings.fake_host_ram_mb,
                "local_gb": settings.fake_host_disk_gb,
                "cpu_info": CPU_INFO,
                "supported_instances": SUPPORTED_INSTANCES,
                "stats": {},
                "host_ip": "127.0.0.1",
            }
            for h in missing
        ],
    )
    conn.execute(
        insert(ResourceProvider),
        [
            {"uuid": node_uuids[h], "name": h, "generation": 1, "root_provider_uuid": node_uuids[h]}
            for h in missing
        ],
    )
    provider_ids = [
        i for i, name in conn.execute(select(ResourceProvider.id, ResourceProvider.name)) if name in wanted
    ]
    conn.execute(insert(Inventory), [inv for rp in provider_ids for inv in _inventories(rp, settings)])


def _inventories(provider_id: int, settings: Any) -> list[dict[str, Any]]:
    spec = [
        ("VCPU", settings.fake_host_vcpus, settings.cpu_allocation_ratio),
        ("MEMORY_MB", settings.fake_host_ram_mb, settings.ram_allocation_ratio),
        ("DISK_GB", settings.fake_host_disk_gb, settings.disk_allocation_ratio),
    ]
    return [
        {
            "resource_provider_id": provider_id,
            "resource_class": rc,
            "total": total,
            "reserved": 0,
            "min_unit": 1,
            "max_unit": total,
            "step_size": 1,
            "allocation_ratio": ratio,
            "used": 0,
        }
        for rc, total, ratio in spec
    ]


def real_resources(settings: Any) -> dict[str, int]:
    """The QEMU host's totals (as the ComputeNode records them) and reserved amounts."""
    from novalite.virt.qemu import host_resources

    vcpus, memory_mb, disk_gb = host_resources(settings.data_dir / "instances")
    return {
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "local_gb": disk_gb,
        "reserved_vcpus": min(vcpus, max(0, settings.reserved_host_cpus)),
        "reserved_memory_mb": min(memory_mb, max(0, settings.reserved_host_memory_mb)),
        "reserved_disk_gb": min(disk_gb, math.ceil(max(0, settings.reserved_host_disk_mb) / 1024)),
    }


def seed_real_host(settings: Any, s: Session, host: str | None = None) -> None:
    """Add (or refresh) this machine's nova-compute service, node and inventories (``host``: the
    QEMU host's name, ``novalite compute --host``; default this machine's). The node's ``host_ip``
    is the host's tunnel address (``services.tunnel.my_ip``)."""
    from novalite.services.tunnel import my_ip
    from novalite.virt.qemu.driver import _qemu_version

    host = host or socket.gethostname()
    res = real_resources(settings)
    node_values = {
        "hypervisor_type": "QEMU",
        "hypervisor_version": _qemu_version(),
        "vcpus": res["vcpus"],
        "memory_mb": res["memory_mb"],
        "local_gb": res["local_gb"],
        "host_ip": my_ip(settings),
    }
    service = s.scalars(
        select(Service).where(Service.binary == BINARY, Service.host == host, Service.deleted.is_(False))
    ).first()
    if service is None:
        service = Service(
            uuid=new_uuid(),
            binary=BINARY,
            host=host,
            topic="compute",
            availability_zone=DEFAULT_ZONE,
            last_seen_at=utcnow(),
            report_count=0,
        )
        s.add(service)
        s.flush()
    node = s.scalars(
        select(ComputeNode).where(ComputeNode.host == host, ComputeNode.deleted.is_(False))
    ).first()
    if node is None:
        node = ComputeNode(
            uuid=new_uuid(),
            service_id=service.id,
            host=host,
            hypervisor_hostname=host,
            cpu_info=CPU_INFO,
            supported_instances=SUPPORTED_INSTANCES,
            stats={},
            **node_values,
        )
        s.add(node)
        s.flush()
    else:
        for key, value in node_values.items():
            setattr(node, key, value)
    provider = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == node.uuid)).first()
    if provider is None:
        provider = ResourceProvider(uuid=node.uuid, name=host, generation=1, root_provider_uuid=node.uuid)
        s.add(provider)
        s.flush()
    else:
        provider.generation += 1
    spec = {
        "VCPU": (res["vcpus"], res["reserved_vcpus"], settings.cpu_allocation_ratio),
        "MEMORY_MB": (res["memory_mb"], res["reserved_memory_mb"], settings.ram_allocation_ratio),
        "DISK_GB": (res["local_gb"], res["reserved_disk_gb"], settings.disk_allocation_ratio),
    }
    existing = {
        inv.resource_class: inv
        for inv in s.scalars(select(Inventory).where(Inventory.resource_provider_id == provider.id))
    }
    for rc, (total, reserved, ratio) in spec.items():
        if rc in existing:
            s.execute(
                update(Inventory)
                .where(Inventory.id == existing[rc].id)
                .values(total=total, reserved=reserved, max_unit=total, allocation_ratio=ratio)
            )
        else:
            s.add(
                Inventory(
                    resource_provider_id=provider.id,
                    resource_class=rc,
                    total=total,
                    reserved=reserved,
                    min_unit=1,
                    max_unit=total,
                    step_size=1,
                    allocation_ratio=ratio,
                    used=0,
                )
            )
    s.flush()


def register(settings: Any, s: Session, names: list[str]) -> None:
    """A compute process's hosts (``novalite compute --host NAME``): each gets its ``nova-compute``
    service, compute node and resource provider (inventories from ``fake_host_*``) unless it has
    them already: an agent restarted with the same name takes its records back, no duplicates. A
    host whose service was deleted (``DELETE /os-services/{id}``) gets its rows back, enabled and up,
    and a new provider."""
    now = utcnow()
    for name in names:
        svc = s.scalars(select(Service).where(Service.binary == BINARY, Service.host == name)).first()
        if svc is None:
            svc = Service(
                uuid=new_uuid(),
                binary=BINARY,
                host=name,
                topic="compute",
                availability_zone=DEFAULT_ZONE,
                last_seen_at=now,
                report_count=0,
            )
            s.add(svc)
            s.flush()
        elif svc.deleted:
            svc.deleted, svc.deleted_at = False, None
            svc.disabled, svc.disabled_reason, svc.forced_down = False, None, False
            svc.last_seen_at = now
        node = s.scalars(select(ComputeNode).where(ComputeNode.hypervisor_hostname == name)).first()
        if node is None:
            node = ComputeNode(
                uuid=new_uuid(),
                service_id=svc.id,
                host=name,
                hypervisor_hostname=name,
                hypervisor_type="QEMU",
                hypervisor_version=8002000,
                vcpus=settings.fake_host_vcpus,
                memory_mb=settings.fake_host_ram_mb,
                local_gb=settings.fake_host_disk_gb,
                cpu_info=CPU_INFO,
                supported_instances=SUPPORTED_INSTANCES,
                stats={},
                host_ip="127.0.0.1",
            )
            s.add(node)
        elif node.deleted:
            node.deleted, node.deleted_at, node.service_id, node.host = False, None, svc.id, name
        s.flush()
        if s.scalars(select(ResourceProvider.id).where(ResourceProvider.name == name)).first() is None:
            rp = ResourceProvider(uuid=node.uuid, name=name, generation=1, root_provider_uuid=node.uuid)
            s.add(rp)
            s.flush()
            s.execute(insert(Inventory), _inventories(rp.id, settings))
    s.flush()

"""Placement: ``GET /resource_classes`` (1.2): the standard classes plus every custom class
some provider has inventory of. Creating or deleting custom classes on their own is not
offered: a ``CUSTOM_*`` class comes into being with the first inventory that names it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from novalite.api.common import runtime
from novalite.api.microversion import Version
from novalite.db.models.placement import Inventory
from novalite.errors import NotFound
from novalite.placement.api_common import PREFIX, PlacementRoute, admin, query, require_version

router = APIRouter(prefix="/placement", route_class=PlacementRoute)

STANDARD_CLASSES: tuple[str, ...] = (
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
)


def _view(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"{PREFIX}/resource_classes/{name}"}]}


def _all(request: Request) -> list[str]:
    with runtime(request).db.reader() as s:
        custom = sorted(
            set(
                s.scalars(
                    select(Inventory.resource_class).where(
                        Inventory.resource_class.like("CUSTOM\\_%", escape="\\")
                    )
                )
            )
        )
    return list(STANDARD_CLASSES) + custom


@router.get("/resource_classes")
def list_classes(request: Request) -> dict[str, Any]:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:list")
    query(request, set())
    return {"resource_classes": [_view(name) for name in _all(request)]}


@router.get("/resource_classes/{name}")
def show_class(name: str, request: Request) -> dict[str, Any]:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:show")
    if name not in _all(request):
        raise NotFound(f"No such resource class {name}.")
    return _view(name)

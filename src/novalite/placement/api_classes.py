"""Placement: ``/resource_classes`` (1.2): the standard classes and the custom ones.

A custom class (``CUSTOM_*``) exists when it has a ``resource_classes`` row (made here by
``POST``, or ``PUT`` from 1.7) or when some provider has inventory of it (an inventory may name
a new custom class; the class comes with it, as before this module wrote any).

* ``POST /resource_classes`` ``{"name": "CUSTOM_X"}``: 201, ``Location``, no body; 409 when it
  exists.
* ``PUT /resource_classes/{name}``: 1.2-1.6 renames (body ``{"name"}``; 200 with the class; a
  standard class is 400, a taken name 409; the class's inventories and allocations follow the
  new name, as placement's rows keep the class by id); from 1.7 it creates the class (201) or
  confirms it (204), with no body, and the name must be a custom one (400).
* ``DELETE /resource_classes/{name}``: 204; a standard class 400, unknown 404, one with
  inventory 409.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, runtime, validate
from novalite.api.microversion import Version
from novalite.db.models.placement import Allocation, Inventory, ResourceClass
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.placement.api_common import (
    PREFIX,
    PlacementRoute,
    admin,
    created,
    no_content,
    query,
    require_version,
    version,
)

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
_STANDARD = frozenset(STANDARD_CLASSES)

NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^CUSTOM\\_[A-Z0-9_]+$", "maxLength": 255}},
    "required": ["name"],
    "additionalProperties": False,
}
_CUSTOM_NAME = re.compile(r"^CUSTOM_[A-Z0-9_]+$")


def _url(name: str) -> str:
    return f"{PREFIX}/resource_classes/{name}"


def _view(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": _url(name)}]}


def _in_inventory(s: Session, name: str) -> bool:
    return (
        s.scalars(select(Inventory.id).where(Inventory.resource_class == name).limit(1)).first() is not None
    )


def _row(s: Session, name: str) -> ResourceClass | None:
    return s.scalars(select(ResourceClass).where(ResourceClass.name == name)).first()


def _exists(s: Session, name: str) -> bool:
    return name in _STANDARD or _row(s, name) is not None or _in_inventory(s, name)


def _all(s: Session) -> list[str]:
    custom = set(s.scalars(select(ResourceClass.name))) | set(
        s.scalars(
            select(Inventory.resource_class).where(Inventory.resource_class.like("CUSTOM\\_%", escape="\\"))
        )
    )
    return list(STANDARD_CLASSES) + sorted(custom)


def _require(s: Session, name: str) -> None:
    if not _exists(s, name):
        raise NotFound(f"No such resource class {name}.")


@router.get("/resource_classes")
def list_classes(request: Request) -> dict[str, Any]:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:list")
    query(request, set())
    with runtime(request).db.reader() as s:
        return {"resource_classes": [_view(name) for name in _all(s)]}


@router.get("/resource_classes/{name}")
def show_class(name: str, request: Request) -> dict[str, Any]:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:show")
    with runtime(request).db.reader() as s:
        _require(s, name)
    return _view(name)


@router.post("/resource_classes")
async def create_class(request: Request) -> Response:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:create")
    body = await json_body(request)
    validate(NAME_SCHEMA, body)
    name = body["name"]

    def _store() -> None:
        with runtime(request).db.session() as s:
            if _exists(s, name):
                raise Conflict(f"Conflicting resource class already exists: {name}")
            s.add(ResourceClass(name=name))

    await run_in_threadpool(_store)
    return created(None, _url(name), with_body=False)


@router.put("/resource_classes/{name}", response_model=None)
async def update_class(name: str, request: Request) -> Response | dict[str, Any]:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:update")
    if version(request) >= Version(1, 7):  # 1.7: PUT creates or confirms, no body
        return await run_in_threadpool(_ensure, request, name)
    body = await json_body(request)
    validate(NAME_SCHEMA, body)
    return await run_in_threadpool(_rename, request, name, body["name"])


def _ensure(request: Request, name: str) -> Response:
    validate(NAME_SCHEMA, {"name": name})  # the name in the path, judged as a body's would be
    with runtime(request).db.session() as s:
        if _exists(s, name):
            return Response(status_code=204, headers={"location": _url(name)})
        s.add(ResourceClass(name=name))
    return Response(status_code=201, headers={"location": _url(name)})


def _rename(request: Request, name: str, new: str) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        _require(s, name)
        if name in _STANDARD or not _CUSTOM_NAME.match(name):
            raise BadRequest(f"Cannot update standard resource class {name}")
        if new != name and _exists(s, new):
            raise Conflict(f"Resource class already exists: {new}")
        row = _row(s, name)
        if row is None:  # a class that came with an inventory gets its row now
            s.add(ResourceClass(name=new))
        else:
            row.name = new
        s.execute(update(Inventory).where(Inventory.resource_class == name).values(resource_class=new))
        s.execute(update(Allocation).where(Allocation.resource_class == name).values(resource_class=new))
    return _view(new)


@router.delete("/resource_classes/{name}")
def delete_class(name: str, request: Request) -> Response:
    require_version(request, Version(1, 2))  # 1.2: resource classes
    admin(request, "resource_classes:delete")
    with runtime(request).db.session() as s:
        _require(s, name)
        if name in _STANDARD:
            raise BadRequest(
                f"Cannot delete standard resource class {name}: Cannot delete standard resource class {name}."
            )
        if _in_inventory(s, name):
            raise Conflict(
                f"Unable to delete resource class {name}: "
                f"Cannot delete resource class {name}. Class is in use in inventory."
            )
        s.execute(delete(ResourceClass).where(ResourceClass.name == name))
    return no_content()

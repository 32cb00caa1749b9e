"""The RequestSpec document: what the create pipeline asks of the conductor and the scheduler.

POST /servers stores one per instance (the ``RequestSpec`` row's JSON ``spec``, written by
``services/create_server/steps/persist.py``); the conductor reads them back, possibly on another
machine and from another release, and hands the scheduler the first of each request. So the
document is versioned: ``VERSION`` is ``major.minor``; a newer minor only adds keys an older
reader ignores, a newer major is refused (``RequestSpecVersionError``). A document without a
``version`` is 1.0 (the shape written before the key existed).

Stored shape (1.0)::

    {"instance_uuid", "project_id", "user_id", "num_instances", "reservation_id",
     "flavor": {flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, extra_specs},
     "image": {} | {id, name, properties, min_ram, min_disk, size, disk_format, container_format},
     "is_bfv", "availability_zone", "force_hosts": [...], "force_nodes": [...],
     "requested_destination": None | {"host", "node"}, "scheduler_hints": {name: [str, ...]},
     "instance_group", "security_groups": [...],
     "requested_networks": None | "none" | "auto" | [{network_id, port_id, fixed_ip, tag}],
     "version": "1.0"}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from novalite.domain.flavor import FlavorSnapshot

VERSION = "1.0"
_MAJOR = 1


class RequestSpecVersionError(ValueError):
    """A RequestSpec document written by a newer, incompatible release."""


@dataclass(frozen=True, slots=True)
class ImageSnapshot:
    """What the scheduler and the build need of the image booted from."""

    id: str
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    min_ram: int = 0
    min_disk: int = 0
    size: int | None = None
    disk_format: str | None = None
    container_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "properties": dict(self.properties),
            "min_ram": self.min_ram,
            "min_disk": self.min_disk,
            "size": self.size,
            "disk_format": self.disk_format,
            "container_format": self.container_format,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageSnapshot:
        return cls(
            id=str(d.get("id") or ""),
            name=d.get("name"),
            properties=dict(d.get("properties") or {}),
            min_ram=int(d.get("min_ram") or 0),
            min_disk=int(d.get("min_disk") or 0),
            size=d.get("size"),
            disk_format=d.get("disk_format"),
            container_format=d.get("container_format"),
        )


@dataclass(frozen=True, slots=True)
class RequestedNetwork:
    """One entry of a server's ``networks`` list: a network (with an optional fixed IP) or a port."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "network_id": self.network_id,
            "port_id": self.port_id,
            "fixed_ip": self.fixed_ip,
            "tag": self.tag,
        }


# None: not given (before 2.37); "none" / "auto"; or the requested networks and ports in order
RequestedNetworks = Literal["none", "auto"] | tuple[RequestedNetwork, ...] | None


def networks_to_doc(requested: RequestedNetworks) -> str | list[dict[str, str | None]] | None:
    """The JSON form (the instance's ``requested_networks`` column, the build arguments, the spec)."""
    if requested is None or isinstance(requested, str):
        return requested
    return [n.to_dict() for n in requested]


def networks_from_doc(value: Any) -> RequestedNetworks:
    if value is None or value == "none" or value == "auto":
        return value  # type: ignore[no-any-return]
    return tuple(
        RequestedNetwork(
            network_id=n.get("network_id"),
            port_id=n.get("port_id"),
            fixed_ip=n.get("fixed_ip"),
            tag=n.get("tag"),
        )
        for n in value
    )


@dataclass(frozen=True, slots=True)
class RequestSpecDoc:
    """One instance's RequestSpec (all instances of a request share everything but the uuid)."""

    instance_uuid: str
    project_id: str
    user_id: str
    flavor: FlavorSnapshot  # the document keeps flavorid, name, sizes and extra specs
    image: ImageSnapshot | None = None  # None: no image, or boot from volume ({} in the document)
    is_bfv: bool = False
    num_instances: int = 1
    reservation_id: str = ""
    availability_zone: str | None = None
    force_hosts: tuple[str, ...] = ()
    force_nodes: tuple[str, ...] = ()
    requested_host: str | None = None  # 2.74 host (the document's requested_destination)
    requested_node: str | None = None  # 2.74 hypervisor_hostname
    scheduler_hints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    instance_group: str | None = None
    security_groups: tuple[str, ...] = ()
    requested_networks: RequestedNetworks = None

    def to_doc(self) -> dict[str, Any]:
        """The stored JSON document (see the module docstring)."""
        f = self.flavor
        has_destination = self.requested_host is not None or self.requested_node is not None
        return {
            "instance_uuid": self.instance_uuid,
            "project_id": self.project_id,
            "user_id": self.user_id,
            "num_instances": self.num_instances,
            "reservation_id": self.reservation_id,
            "flavor": {
                "flavorid": f.flavorid,
                "name": f.name,
                "memory_mb": f.memory_mb,
                "vcpus": f.vcpus,
                "root_gb": f.root_gb,
                "ephemeral_gb": f.ephemeral_gb,
                "swap": f.swap,
                "extra_specs": dict(f.extra_specs),
            },
            "image": self.image.to_dict() if self.image is not None else {},
            "is_bfv": self.is_bfv,
            "availability_zone": self.availability_zone,
            "force_hosts": list(self.force_hosts),
            "force_nodes": list(self.force_nodes),
            "requested_destination": (
                {"host": self.requested_host, "node": self.requested_node} if has_destination else None
            ),
            "scheduler_hints": {k: list(v) for k, v in self.scheduler_hints.items()},
            "instance_group": self.instance_group,
            "security_groups": list(self.security_groups),
            "requested_networks": networks_to_doc(self.requested_networks),
            "version": VERSION,
        }

    def to_docs(self, instance_uuids: Sequence[str]) -> list[dict[str, Any]]:
        """``to_doc`` for each instance of the request (built once; only the uuid differs)."""
        doc = self.to_doc()
        return [{**doc, "instance_uuid": u} for u in instance_uuids]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RequestSpecDoc:
        """Read a stored document (missing keys take their defaults, unknown keys of a newer minor
        are ignored); ``RequestSpecVersionError`` for a newer major version."""
        version = doc.get("version")
        if version and version != VERSION:
            _check_version(str(version))
        dest = doc.get("requested_destination") or {}
        image = doc.get("image")
        return cls(
            instance_uuid=str(doc.get("instance_uuid") or ""),
            project_id=str(doc.get("project_id") or ""),
            user_id=str(doc.get("user_id") or ""),
            flavor=FlavorSnapshot.from_dict(doc.get("flavor") or {}),
            image=ImageSnapshot.from_dict(image) if image else None,
            is_bfv=bool(doc.get("is_bfv")),
            num_instances=int(doc.get("num_instances") or 1),
            reservation_id=str(doc.get("reservation_id") or ""),
            availability_zone=doc.get("availability_zone"),
            force_hosts=tuple(doc.get("force_hosts") or ()),
            force_nodes=tuple(doc.get("force_nodes") or ()),
            requested_host=dest.get("host"),
            requested_node=dest.get("node"),
            scheduler_hints=_hints(doc.get("scheduler_hints")),
            instance_group=doc.get("instance_group"),
            security_groups=tuple(doc.get("security_groups") or ()),
            requested_networks=networks_from_doc(doc.get("requested_networks")),
        )


def instance_group_of(doc: Mapping[str, Any]) -> str | None:
    """The server group of a stored document, read alone (the compute side's late group check
    needs nothing else, and must not fail on fields it does not use)."""
    group = doc.get("instance_group")
    return str(group) if group else None


def _check_version(version: str) -> None:
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        raise RequestSpecVersionError(f"RequestSpec version {version!r} is not major.minor") from None
    if major > _MAJOR:
        raise RequestSpecVersionError(
            f"RequestSpec version {version} is newer than this release reads ({VERSION}); "
            "upgrade the conductor before the API"
        )


def _hints(value: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """Each hint as a tuple of strings (the pipeline stores lists of strings; a single value is
    taken as a list of one)."""
    if not value:
        return {}
    return {
        k: tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else () if v is None else (str(v),)
        for k, v in value.items()
    }

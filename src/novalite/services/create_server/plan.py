"""The pipeline's working state: what the steps have decided so far.

The request (``CreateServerRequest``) is frozen; each step reads it and fills in a part of
``BuildPlan``. Only ``persist`` writes to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from novalite.services.create_server.request import CreateServerRequest


@dataclass(frozen=True)
class Destination:
    """Where the user asked the server to go (§1.3 steps 6-7)."""

    availability_zone: str | None = None
    forced_host: str | None = None
    forced_node: str | None = None
    requested_host: str | None = None  # 2.74 host
    requested_node: str | None = None  # 2.74 hypervisor_hostname

    @property
    def requested_destination(self) -> dict[str, str | None] | None:
        if self.requested_host is None and self.requested_node is None:
            return None
        return {"host": self.requested_host, "node": self.requested_node}


@dataclass
class BuildPlan:
    request: CreateServerRequest
    reservation_id: str
    destination: Destination = field(default_factory=Destination)
    block_devices: list[dict[str, Any]] = field(default_factory=list)  # BDM v2 dicts
    legacy_bdm: bool = True
    image_ref: str = ""
    is_bfv: bool = False
    requested_networks: Any = None  # "none", "auto" or list of {network_id, port_id, fixed_ip, tag}
    flavor: Any = None  # FlavorSnapshot (checks.load_flavor)
    image: Any = None  # ImageInfo or None (boot from volume)
    auto_disk_config: bool = False
    key_name: str | None = None
    key_data: str | None = None
    config_drive: str = ""
    kernel_id: str = ""
    ramdisk_id: str = ""
    root_device_name: str | None = None
    instance_group: str | None = None
    scheduler_hints: dict[str, list[str]] = field(default_factory=dict)
    max_count: int = 1  # lowered by the port quota
    num_instances: int = 0
    instance_uuids: list[str] = field(default_factory=list)

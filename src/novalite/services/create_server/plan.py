"""The values the pipeline's stages hand on, each frozen.

``parse`` turns the request (``CreateServerRequest``) into a ``ParsedCreate``; ``check_in``
threads the values its steps return into a ``CheckedCreate``, which is all ``store_group`` and
the hand-off need; ``store_group`` returns a ``StoredCreate`` per create (the instances it wrote:
how many the quota let through). Only ``persist`` writes to the database.

The block device mappings are the BDM v2 dicts the conductor receives; the volume check fills in
a volume's size where the request left it out (``steps/volumes.py``), nothing changes them after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import RequestedNetworks
from novalite.image.service import ImageInfo
from novalite.services.create_server.request import CreateServerRequest


@dataclass(frozen=True, slots=True)
class RequestedPlacement:
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


@dataclass(frozen=True, slots=True)
class ParsedCreate:
    """What ``parse`` decided from the request alone."""

    request: CreateServerRequest
    reservation_id: str
    placement: RequestedPlacement
    image_ref: str
    block_devices: list[dict[str, Any]]  # BDM v2 dicts
    requested_networks: RequestedNetworks


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """What the image decides about the instance (``checks.image_settings``)."""

    kernel_id: str = ""
    ramdisk_id: str = ""
    root_device_name: str = "/dev/vda"


@dataclass(frozen=True, slots=True)
class CheckedCreate:
    """A create that passed every check: what ``store_group`` writes and the hand-off sends."""

    request: CreateServerRequest
    reservation_id: str
    placement: RequestedPlacement
    image_ref: str
    block_devices: list[dict[str, Any]]
    requested_networks: RequestedNetworks
    flavor: FlavorSnapshot
    image: ImageInfo | None  # None: boot from volume
    is_bfv: bool
    auto_disk_config: bool
    key_name: str | None
    key_data: str | None
    config_drive: str
    image_settings: ImageSettings
    scheduler_hints: dict[str, list[str]] = field(default_factory=dict)
    instance_group: str | None = None
    max_count: int = 1  # the request's, lowered by the port quota


@dataclass(frozen=True, slots=True)
class StoredCreate:
    """The instances ``store_group`` wrote for one create (as many as the quota allowed)."""

    instance_uuids: tuple[str, ...]

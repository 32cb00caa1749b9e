"""The virt driver contract: a ~10-method protocol and what a driver can do.

A driver manages guests on one host. Every method may raise ``DriverError`` (the compute
agent turns it into a reschedule or an ERROR with a fault); ``BuildAbort`` means "do not
try another host". ``destroy`` of a guest that does not exist is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from novalite.domain.states import PowerState


class DriverError(RuntimeError):
    """The hypervisor failed the operation."""


class BuildAbort(DriverError):
    """The build cannot succeed anywhere (bad image, bad request): no reschedule."""


class ServiceStopping(RuntimeError):
    """The compute service is shutting down; the operation was abandoned (not a guest failure).
    The instance stays as it is; start-up recovery deals with it."""


@dataclass(frozen=True)
class Capabilities:
    supports_tagged_attach: bool = False
    supports_trusted_certs: bool = False
    supports_multiattach: bool = False
    supports_pause: bool = True
    supports_suspend: bool = True
    supports_rescue: bool = False
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 8002000
    supported_instances: tuple[tuple[str, str, str], ...] = (
        ("x86_64", "qemu", "hvm"),
        ("i686", "qemu", "hvm"),
    )


@dataclass(frozen=True)
class GuestSpec:
    """What the driver gets about the instance to run."""

    uuid: str
    name: str
    host: str
    node: str
    flavor: Mapping[str, Any]
    image: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1  # 1 for the first host tried, 2 for the first reschedule, ...
    network_info: tuple[Mapping[str, Any], ...] = ()
    block_devices: tuple[Mapping[str, Any], ...] = ()
    admin_password: str | None = None
    injected_files: tuple[tuple[str, str], ...] = ()
    # What a real guest reads from its config drive / the metadata service (the fake driver
    # ignores them): decoded user data, key pairs as (name, type, public_key), whether the
    # request asked for a config drive, and the instance's identity as Nova writes it.
    user_data: bytes | None = None
    key_pairs: tuple[tuple[str, str, str], ...] = ()
    config_drive: bool = False
    hostname: str = ""
    display_name: str = ""
    project_id: str = ""
    availability_zone: str | None = None
    launch_index: int = 0


@dataclass(frozen=True)
class GuestInfo:
    state: PowerState
    memory_mb: int = 0
    vcpus: int = 0


class Driver(Protocol):
    def capabilities(self) -> Capabilities: ...

    def spawn(self, guest: GuestSpec) -> None: ...

    def destroy(self, guest: GuestSpec) -> None: ...

    def power_on(self, guest: GuestSpec) -> None: ...

    def power_off(self, guest: GuestSpec) -> None: ...

    def reboot(self, guest: GuestSpec, *, hard: bool = False) -> None: ...

    def pause(self, guest: GuestSpec) -> None: ...

    def unpause(self, guest: GuestSpec) -> None: ...

    def suspend(self, guest: GuestSpec) -> None: ...

    def resume(self, guest: GuestSpec) -> None: ...

    def get_info(self, guest: GuestSpec) -> GuestInfo: ...

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


class LiveMigrationCancelled(DriverError):
    """A live migration was aborted on request (``DELETE /servers/{id}/migrations/{id}``)."""


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
    # the remote console types the driver can connect (Nova's console ``type``: novnc, spice-html5,
    # serial, webmks, ...); a type not listed is 400 "Unavailable console type" (§ consoles)
    console_types: tuple[str, ...] = ()
    # the build hands the driver the image's record, the ports' addresses, user data and keys
    # (a real hypervisor needs them; the fake driver does not, and the build skips their queries)
    guest_details: bool = False


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
class ConsoleEndpoint:
    """Where a console proxy connects to reach a guest's console: a TCP ``host``/``port``, or a
    unix socket ``path`` (``host`` then names the compute host). ``internal_access_path`` is
    what the proxy sends first (Nova's, for hypervisors that multiplex consoles; usually None)."""

    host: str
    port: int | None = None
    path: str | None = None
    internal_access_path: str | None = None


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


class ConsoleDriver(Protocol):
    """The optional console hook (a driver without it answers 501 to every console request):
    ``console_endpoint(guest, kind)`` for one of ``Capabilities.console_types``, None when the
    guest has no such console now (not running, or the console is off). The compute agent asks
    it when a user requests a console URL; the console proxy then connects there."""

    def console_endpoint(self, guest: GuestSpec, kind: str) -> ConsoleEndpoint | None: ...


class DeviceDriver(Protocol):
    """The optional device hooks (the fake driver has none: its attachments are only records).
    A running guest gets the device hot-plugged; a stopped one at its next start. Detaching waits
    for the guest to release the device and raises ``DriverError`` (device kept) when it does not.

    ``path`` is the volume's data file (its ``connection_info`` ``device_path``); ``port`` is a
    port as ``GuestSpec.network_info`` has it (port_id, mac_address, fixed_ips with cidr,
    gateway). ``GuestSpec.block_devices`` entries at spawn: volume_id, path, device_name,
    boot_index (0: the guest boots from that volume)."""

    def attach_volume(self, guest: GuestSpec, volume_id: str, path: str | None) -> None: ...

    def detach_volume(self, guest: GuestSpec, volume_id: str) -> None: ...

    def attach_interface(self, guest: GuestSpec, port: Mapping[str, Any]) -> None: ...

    def detach_interface(self, guest: GuestSpec, mac: str) -> None: ...

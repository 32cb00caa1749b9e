"""The QEMU driver: one ``qemu-system-x86_64`` process per guest, controlled over QMP.

No libvirt daemon: the driver starts QEMU itself (``-daemonize``: QEMU leaves the
service's process group and session, so guests keep running when the compute service
stops or restarts) and finds a guest again from its instance directory alone — pid file,
QMP socket, ``launch.json`` — so a second driver on the same ``instances_path`` (the
service restarted) manages the guests the first one started (:meth:`list_running`).

Power states, as :meth:`get_info` reports them: a live process answers ``query-status``
(running → RUNNING, paused and migration states → PAUSED, guest-panicked/internal-error →
CRASHED); no process with a saved memory file → SUSPENDED; no process (stopped, powered
itself off, or killed from outside) → SHUTDOWN; no instance directory → NOSTATE.

Actions (QMP): power_off = ACPI ``system_powerdown`` (resent every 10 s), hard stop after
``shutdown_timeout``; power_on and hard reboot = a new process on the same disks (a saved
memory file is discarded: cold boot, as Nova); soft reboot = ACPI power-down, then start
(hard reboot when the guest does not power off in time); pause/unpause = ``stop``/``cont``;
suspend = ``stop`` + ``migrate`` to ``memory.state`` through a passed fd + quit; resume =
the same command line with ``-incoming defer`` + ``migrate-incoming`` from that file +
``cont`` (the guest continues where it was: no boot); rescue = power-off, then the command
line with the rescue image's overlay booted first and the own disk second (``virt.qemu.rescue``);
unrescue = kill, the saved command line back, the overlay deleted, start; inject_nmi (trigger
crash dump) = ``inject-nmi``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from novalite.domain.states import PowerState
from novalite.virt import driver as virt_api
from novalite.virt.driver import BuildAbort, Capabilities, DriverError, GuestInfo, GuestSpec, ServiceStopping
from novalite.virt.qemu import hotplug, launch, migration
from novalite.virt.qemu import rescue as rescue_files
from novalite.virt.qemu.accel import resolve_accelerator
from novalite.virt.qemu.images import Fetch, ImageCache
from novalite.virt.qemu.launch import CONSOLE, LAUNCH, PID_FILE, QMP_SOCKET, STATE, LaunchOptions
from novalite.virt.qemu.qmp import QMPClient, QMPError

REQUIRED_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils"}
CONSOLE_LIMIT = 1024 * 1024  # the console log keeps (about) its last MiB
START_TIMEOUT = 60.0
KILL_TIMEOUT = 10.0
ACPI_RETRY = 10.0
SAVE_TIMEOUT = 300.0
QEMU_IMG_SNAPSHOT_TIMEOUT = 600.0
CRASHED_STATES = {"guest-panicked", "internal-error", "io-error"}


class Networking(Protocol):
    """The host's network data plane (compute/networking.py): a guest's taps before QEMU starts."""

    def plug(self, instance_uuid: str) -> None: ...

    def unplug(self, instance_uuid: str) -> None: ...


P = ParamSpec("P")
R = TypeVar("R")


def _serialised(
    method: Callable[Concatenate[QemuDriver, GuestSpec, P], R],
) -> Callable[Concatenate[QemuDriver, GuestSpec, P], R]:
    """Actions on one guest run one at a time (a stop waits for a suspend to finish)."""

    @functools.wraps(method)
    def wrapper(self: QemuDriver, guest: GuestSpec, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._guest_lock(guest.uuid):
            return method(self, guest, *args, **kwargs)

    return wrapper


class QemuNotInstalled(DriverError):
    """qemu-system-x86_64 or qemu-img is missing on this host."""


class QemuDriver:
    def __init__(
        self,
        instances_path: Path | str,
        *,
        fetch: Fetch,
        accelerator: str = "auto",
        shutdown_timeout: float = 60.0,
        cpu_model: str = "max",
        metadata_command: Callable[[GuestSpec], str | None] | None = None,
        console_limit: int = CONSOLE_LIMIT,
        migration_address: str | None = None,
        migration_ports: tuple[int, int] = migration.parse_port_range(migration.PORT_RANGE),
        migration_bandwidth_mib: int = 0,
    ) -> None:
        missing = [
            f"{tool} (Debian package {pkg})" for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)
        ]
        if missing:
            raise QemuNotInstalled(
                "The QEMU driver needs " + " and ".join(missing) + ": install them with "
                "`apt-get install qemu-system-x86 qemu-utils` (or scripts/install-qemu.sh)"
            )
        self.instances_path = Path(instances_path).resolve()
        if "," in str(self.instances_path):
            raise ValueError(f"instances_path cannot contain a comma (QEMU options): {self.instances_path}")
        self.instances_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.instances_path, 0o700)
        self.images = ImageCache(self.instances_path, fetch)
        self.shutdown_timeout = shutdown_timeout
        self.cpu_model = cpu_model
        self.accelerator = resolve_accelerator(accelerator, cpu_model=cpu_model)
        self.metadata_command = metadata_command
        self.network: Networking | None = None  # set when the network data plane is on: ports on taps
        self.console_limit = console_limit
        # an incoming live migration listens on TCP at this address (ports of migration_ports);
        # None: on unix sockets in the instance directory (source and destination on one machine)
        self.migration_address = migration_address
        self.migration_ports = migration_ports
        self.migration_bandwidth_mib = migration_bandwidth_mib  # outgoing memory copy cap; 0: none
        self._version = _qemu_version()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stopping = threading.Event()
        self.unplug_timeout = hotplug.UNPLUG_TIMEOUT

    def _guest_lock(self, uuid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(uuid, threading.Lock())

    def stop(self) -> None:
        """The service is stopping: waits for a guest to power off are abandoned
        (``ServiceStopping``); the guests themselves keep running."""
        self._stopping.set()

    # -- the Driver protocol -------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return Capabilities(
            supports_pause=True,
            supports_suspend=True,
            supports_rescue=True,
            hypervisor_type="QEMU",
            hypervisor_version=self._version,
            guest_details=True,
            console_types=("serial",),
        )

    @_serialised
    def spawn(self, guest: GuestSpec) -> None:
        d = self.instance_dir(guest)
        if self._pid(d, guest.uuid) is not None:
            raise DriverError(f"Instance {guest.uuid} is already running on {guest.host}")
        for dev in guest.block_devices:  # boot from volume / volumes at boot: their files must exist
            hotplug.check_volume_file(str(dev.get("volume_id")), dev.get("path"))
        # a guest booting from a volume has no image to fetch; else before the directory: a bad
        # image leaves nothing
        base = None if hotplug.root_volume(guest.block_devices) else self.images.ensure(guest.image)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(mode=0o700)
        try:
            launch.prepare_disks(d, guest, base)
            self._copy_kernel_files(d, guest)
            md = self.metadata_command(guest) if self.metadata_command else None
            opts = LaunchOptions(
                accelerator=self.accelerator,
                cpu_model=self.cpu_model,
                metadata_command=md,
                dataplane=self.network is not None,
            )
            argv = launch.argv(d, guest, opts)
            _write_private(d / LAUNCH, json.dumps({"argv": argv}).encode())
            self._start(d, guest.uuid)
        except BaseException:
            self._kill(d, guest.uuid)
            shutil.rmtree(d, ignore_errors=True)
            raise

    @_serialised
    def destroy(self, guest: GuestSpec) -> None:
        d = self.instance_dir(guest)
        if not d.exists():
            return
        pid = self._pid(d, guest.uuid)
        if pid is not None:
            try:
                with self._qmp(d, timeout=3.0) as qmp:
                    qmp.execute("quit")
            except QMPError:
                pass
            if not _wait_gone(pid, 3.0):
                self._kill(d, guest.uuid)
        shutil.rmtree(d, ignore_errors=True)
        if self.network is not None:
            self.network.unplug(guest.uuid)

    @_serialised
    def power_off(self, guest: GuestSpec) -> None:
        d = self._existing(guest)
        pid = self._pid(d, guest.uuid)
        if pid is None:
            return
        if not self._acpi_shutdown(d, pid, self.shutdown_timeout):
            self._kill(d, guest.uuid)

    @_serialised
    def power_on(self, guest: GuestSpec) -> None:
        d = self._existing(guest)
        if self._pid(d, guest.uuid) is not None:
            return
        (d / STATE).unlink(missing_ok=True)  # a start after suspend is a cold boot (as Nova)
        self._start(d, guest.uuid)

    @_serialised
    def reboot(self, guest: GuestSpec, *, hard: bool = False) -> None:
        d = self._existing(guest)
        pid = self._pid(d, guest.uuid)
        if not hard and pid is not None and self._acpi_shutdown(d, pid, max(self.shutdown_timeout, 120.0)):
            self._start(d, guest.uuid)
            return
        self._kill(d, guest.uuid)
        (d / STATE).unlink(missing_ok=True)
        self._start(d, guest.uuid)

    @_serialised
    def pause(self, guest: GuestSpec) -> None:
        self._running_qmp(guest, "stop")

    @_serialised
    def unpause(self, guest: GuestSpec) -> None:
        self._running_qmp(guest, "cont")

    @_serialised
    def suspend(self, guest: GuestSpec) -> None:
        """Save the guest's memory to ``memory.state`` and end its process."""
        d = self._existing(guest)
        pid = self._pid(d, guest.uuid)
        if pid is None:
            raise DriverError(f"Instance {guest.uuid} is not running on {guest.host}")
        part = d / (STATE + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with self._qmp(d) as qmp:
                qmp.execute("stop")
                try:
                    qmp.execute("getfd", fds=[fd], fdname="state")
                    qmp.execute("migrate", uri="fd:state")
                    self._wait_migration(qmp, "query-migrate", guest.uuid)
                except BaseException:
                    qmp.execute("cont")
                    raise
                qmp.execute("quit")
        except QMPError as exc:
            part.unlink(missing_ok=True)
            raise DriverError(f"Could not suspend instance {guest.uuid}: {exc}") from exc
        finally:
            os.close(fd)
        if not _wait_gone(pid, KILL_TIMEOUT):
            self._kill(d, guest.uuid)
        os.replace(part, d / STATE)

    @_serialised
    def resume(self, guest: GuestSpec) -> None:
        d = self._existing(guest)
        state = d / STATE
        if self._pid(d, guest.uuid) is not None:
            return
        if not state.is_file():
            raise DriverError(f"Instance {guest.uuid} has no saved state to resume from")
        self._start(d, guest.uuid, incoming=True)
        fd = os.open(state, os.O_RDONLY)
        try:
            with self._qmp(d) as qmp:
                qmp.execute("getfd", fds=[fd], fdname="state")
                qmp.execute("migrate-incoming", uri="fd:state")
                self._wait_incoming(qmp, guest.uuid)
                qmp.execute("cont")
        except (QMPError, DriverError) as exc:
            self._kill(d, guest.uuid)
            raise DriverError(f"Could not resume instance {guest.uuid}: {exc}") from exc
        finally:
            os.close(fd)
        state.unlink(missing_ok=True)

    def get_info(self, guest: GuestSpec) -> GuestInfo:
        memory_mb, vcpus = _int(guest.flavor.get("memory_mb")), _int(guest.flavor.get("vcpus"))
        d = self.instance_dir(guest)
        if not d.is_dir():
            return GuestInfo(PowerState.NOSTATE, memory_mb, vcpus)
        self._bound_console(d)
        if self._pid(d, guest.uuid) is None:
            state = PowerState.SUSPENDED if (d / STATE).is_file() else PowerState.SHUTDOWN
            return GuestInfo(state, memory_mb, vcpus)
        try:
            with self._qmp(d, timeout=5.0) as qmp:
                status = str(qmp.execute("query-status").get("status", ""))
        except (QMPError, AttributeError):
            return GuestInfo(PowerState.NOSTATE, memory_mb, vcpus)
        if status == "running":
            power = PowerState.RUNNING
        elif status in CRASHED_STATES:
            power = PowerState.CRASHED
        elif status == "shutdown":
            power = PowerState.SHUTDOWN
        else:
            power = PowerState.PAUSED
        return GuestInfo(power, memory_mb, vcpus)

    # -- beyond the protocol -------------------------------------------------------------

    def console_output(self, guest: GuestSpec, length: int | None = None) -> str:
        """The serial console's last ``console_limit`` bytes; its last ``length`` lines if given."""
        d = self.instance_dir(guest)
        self._bound_console(d)
        try:
            with (d / CONSOLE).open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - self.console_limit))
                data = f.read(self.console_limit)
        except FileNotFoundError:
            return ""
        text = data.decode("ascii", errors="replace")
        if length is None:
            return text
        if length <= 0:
            return ""
        return "".join(text.splitlines(keepends=True)[-length:])

    def list_running(self) -> dict[str, int]:
        """``{uuid: pid}`` of every guest with a live QEMU under instances_path (re-attach)."""
        running: dict[str, int] = {}
        for d in self.instances_path.iterdir():
            if d.name.startswith("_") or not d.is_dir():
                continue
            pid = self._pid(d, d.name)
            if pid is not None:
                running[d.name] = pid
        return running

    def diagnostics(self, guest: GuestSpec) -> dict[str, Any]:
        """Nova's 2.48 diagnostics shape, from QMP and /proc."""
        d = self._existing(guest)
        info = self.get_info(guest)
        pid = self._pid(d, guest.uuid)
        argv = self._argv(d)
        result: dict[str, Any] = {
            "state": info.state.name.lower(),
            "driver": "qemu",
            "hypervisor": self.accelerator,
            "hypervisor_os": "linux",
            "uptime": None,
            "config_drive": (d / launch.CONFIG).exists(),
            "num_cpus": info.vcpus,
            "num_nics": sum(1 for a in argv if a.startswith("user,id=")),
            "num_disks": sum(1 for a in argv if a.startswith("file=")),
            "cpu_details": [],
            "disk_details": [],
            "nic_details": [],
            "memory_details": {"maximum": info.memory_mb, "used": 0},
        }
        if pid is None:
            return result
        result["uptime"] = _uptime(pid)
        result["memory_details"]["used"] = _rss_mb(pid)
        try:
            with self._qmp(d, timeout=5.0) as qmp:
                cpus = qmp.execute("query-cpus-fast")
                stats = qmp.execute("query-blockstats")
        except QMPError:
            return result
        for cpu in cpus if isinstance(cpus, list) else []:
            result["cpu_details"].append(
                {
                    "id": cpu.get("cpu-index"),
                    "time": _thread_time_ns(pid, cpu.get("thread-id")),
                    "utilisation": None,
                }
            )
        for disk in stats if isinstance(stats, list) else []:
            s = disk.get("stats", {})
            result["disk_details"].append(
                {
                    "read_bytes": s.get("rd_bytes", 0),
                    "read_requests": s.get("rd_operations", 0),
                    "write_bytes": s.get("wr_bytes", 0),
                    "write_requests": s.get("wr_operations", 0),
                    "errors_count": s.get("failed_rd_operations", 0) + s.get("failed_wr_operations", 0),
                }
            )
        return result

    @_serialised
    def snapshot(self, guest: GuestSpec, dest: Path) -> None:
        """A standalone qcow2 of the guest's root disk at ``dest`` (createImage). A running guest
        is paused meanwhile (QMP ``stop`` flushes its disks: the copy is consistent) and
        continues afterwards; a stopped or suspended one is copied as it is."""
        d = self._existing(guest)
        pid = self._pid(d, guest.uuid)
        resume = False
        if pid is not None:
            try:
                with self._qmp(d) as qmp:
                    resume = qmp.execute("query-status").get("status") == "running"
                    qmp.execute("stop")
            except QMPError as exc:
                raise DriverError(f"Could not pause instance {guest.uuid} for its snapshot: {exc}") from exc
        part = dest.with_name(dest.name + ".part")
        try:
            done = subprocess.run(
                [
                    "qemu-img",
                    "convert",
                    "-q",
                    "-U",
                    "-f",
                    "qcow2",
                    "-O",
                    "qcow2",
                    str(d / launch.DISK),
                    str(part),
                ],
                capture_output=True,
                timeout=QEMU_IMG_SNAPSHOT_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                detail = done.stderr.decode(errors="replace").strip()[-500:]
                raise DriverError(f"Snapshot of instance {guest.uuid} failed: {detail}")
            os.chmod(part, 0o600)
            os.replace(part, dest)
        except subprocess.TimeoutExpired as exc:
            raise DriverError(f"Snapshot of instance {guest.uuid} took too long") from exc
        finally:
            part.unlink(missing_ok=True)
            if resume:
                try:
                    with self._qmp(d) as qmp:
                        qmp.execute("cont")
                except QMPError:
                    pass

    @_serialised
    def rescue(self, guest: GuestSpec, rescue_image: Mapping[str, Any]) -> None:
        """Boot the guest from ``rescue_image`` with its own disk second, or with all its devices
        and the rescue device last for an image with ``hw_rescue_device``/``hw_rescue_bus``
        (stable device rescue; ``virt.qemu.rescue``):
        a running guest is powered off cleanly first (hard stop after ``shutdown_timeout``). A
        failure puts the guest's own command line back (and starts it again if it ran)."""
        d = self._existing(guest)
        if (d / rescue_files.UNRESCUE).is_file():
            raise DriverError(f"Instance {guest.uuid} is already rescued")
        argv = rescue_files.rescue_argv(
            self._argv(d),
            d,
            device=launch.image_prop(rescue_image, "hw_rescue_device"),
            bus=launch.image_prop(rescue_image, "hw_rescue_bus"),
        )
        base = self.images.ensure(rescue_image)  # before the guest stops: a bad image changes nothing
        pid = self._pid(d, guest.uuid)
        if pid is not None and not self._acpi_shutdown(d, pid, self.shutdown_timeout):
            self._kill(d, guest.uuid)
        (d / STATE).unlink(missing_ok=True)
        try:
            rescue_files.make_rescue_disk(d, base)
            os.replace(d / LAUNCH, d / rescue_files.UNRESCUE)
            _write_private(d / LAUNCH, json.dumps({"argv": argv}).encode())
            self._start(d, guest.uuid)
        except BaseException:
            self._kill(d, guest.uuid)
            if (d / rescue_files.UNRESCUE).is_file():
                os.replace(d / rescue_files.UNRESCUE, d / LAUNCH)
            (d / rescue_files.RESCUE_DISK).unlink(missing_ok=True)
            if pid is not None:
                try:
                    self._start(d, guest.uuid)
                except DriverError:
                    pass  # the power state sync reports it SHUTOFF
            raise

    @_serialised
    def unrescue(self, guest: GuestSpec) -> None:
        """Stop the rescue guest (hard, as Nova) and start the guest's own command line again;
        the rescue disk is deleted."""
        d = self._existing(guest)
        saved = d / rescue_files.UNRESCUE
        if not saved.is_file():
            raise DriverError(f"Instance {guest.uuid} is not rescued")
        self._kill(d, guest.uuid)
        os.replace(saved, d / LAUNCH)
        (d / rescue_files.RESCUE_DISK).unlink(missing_ok=True)
        self._start(d, guest.uuid)

    @_serialised
    def inject_nmi(self, guest: GuestSpec) -> None:
        """trigger_crash_dump: QMP ``inject-nmi`` (an NMI to every vCPU); the guest's kernel
        decides what to do with it (the default guest's prints "Uhhuh. NMI received ...")."""
        self._running_qmp(guest, "inject-nmi")

    # -- devices (virt.driver.DeviceDriver): volumes and NICs, hot-plugged while QEMU runs ------

    @_serialised
    def attach_volume(self, guest: GuestSpec, volume_id: str, path: str | None) -> None:
        """The volume's file as a new virtio disk: hot-plugged into a running guest, and in
        launch.json (a stopped guest sees it at its next start)."""
        d = self._changeable(guest)
        file = str(hotplug.check_volume_file(volume_id, path))
        argv = self._argv(d)
        if hotplug.has_device(argv, hotplug.volume_device(volume_id)):
            return
        if self._pid(d, guest.uuid) is not None:
            hotplug.plug_volume(lambda: self._qmp(d), volume_id, file)
        self._write_argv(d, argv + hotplug.volume_args(volume_id, file))

    @_serialised
    def detach_volume(self, guest: GuestSpec, volume_id: str) -> None:
        """Unplug the volume's disk (the guest must release it within ``UNPLUG_TIMEOUT``, else
        DriverError and the disk stays), then drop it from launch.json."""
        d = self._changeable(guest)
        device = hotplug.volume_device(volume_id)
        if self._pid(d, guest.uuid) is not None:
            qmp = lambda: self._qmp(d)  # noqa: E731
            if not hotplug.unplug(qmp, device, timeout=self.unplug_timeout):
                raise DriverError(
                    f"Instance {guest.uuid} did not release volume {volume_id} within "
                    f"{self.unplug_timeout:.0f}s; it stays attached"
                )
            hotplug.drop_backend(qmp, "blockdev-del", **{"node-name": hotplug.volume_node(volume_id)})
        self._write_argv(d, hotplug.without_device(self._argv(d), device))

    @_serialised
    def attach_interface(self, guest: GuestSpec, port: Mapping[str, Any]) -> None:
        """A NIC for ``port`` (port_id, mac_address, fixed_ips with cidr, gateway): its tap
        first with the network data plane on, else restricted user-mode networking."""
        d = self._changeable(guest)
        mac = str(port.get("mac_address") or "")
        if not mac:
            raise DriverError(f"Port {port.get('port_id')} has no MAC address")
        argv = self._argv(d)
        if hotplug.find_nic(argv, mac) is not None:
            return
        netdev_id, device_id = hotplug.nic_ids(str(port.get("port_id") or mac))
        option = hotplug.netdev_option(port, netdev_id, dataplane=self.network is not None)
        device = {"driver": hotplug.nic_model(argv), "netdev": netdev_id, "mac": mac, "id": device_id}
        if self._pid(d, guest.uuid) is not None:
            if self.network is not None and option.startswith("tap,"):
                self.network.plug(guest.uuid)  # the port's tap on its bridge before QEMU opens it
                fds = self._tap_fds(["-netdev", option])
                try:
                    netdev = hotplug.netdev_qmp(hotplug.tap_by_fd(option, netdev_id))
                    hotplug.plug_nic(lambda: self._qmp(d), netdev, device, fd=fds[0][1])
                finally:
                    self._close(fds)
            else:
                hotplug.plug_nic(lambda: self._qmp(d), hotplug.netdev_qmp(option), device)
        nic = ",".join(f"{k}={v}" for k, v in device.items() if k != "driver")
        self._write_argv(d, argv + ["-netdev", option, "-device", f"{device['driver']},{nic}"])

    @_serialised
    def detach_interface(self, guest: GuestSpec, mac: str) -> None:
        """Unplug the NIC with ``mac`` (the guest must release it in time), its netdev, and drop
        both from launch.json. The tap goes with the port (the data plane follows the database)."""
        d = self._changeable(guest)
        nic = hotplug.find_nic(self._argv(d), mac)
        if nic is None:
            return
        if self._pid(d, guest.uuid) is not None:
            qmp = lambda: self._qmp(d)  # noqa: E731
            if not hotplug.unplug(qmp, nic["id"], timeout=self.unplug_timeout):
                raise DriverError(
                    f"Instance {guest.uuid} did not release the interface {mac} within "
                    f"{self.unplug_timeout:.0f}s; it stays attached"
                )
            hotplug.drop_backend(qmp, "netdev_del", id=nic["netdev"])
        self._write_argv(d, hotplug.without_device(self._argv(d), nic["id"]))

    # -- live migration (virt.qemu.migration: block migration, no shared storage) ---------

    def live_migration_source(self, guest: GuestSpec) -> dict[str, Any]:
        """Source: what the destination needs to prepare (command line, instance directory)."""
        return {"argv": migration.source_argv(self, guest), "instance_dir": str(self.instance_dir(guest))}

    @_serialised
    def prepare_live_migration(self, guest: GuestSpec, source: Mapping[str, Any]) -> dict[str, Any]:
        """Destination: a QEMU waiting for the guest's disks (NBD) and memory."""
        target = migration.prepare(self, guest, list(source["argv"]), str(source["instance_dir"]))
        return target.to_dict()

    @_serialised
    def live_migrate(self, guest: GuestSpec, target: Mapping[str, Any], *, bandwidth_mib: int = 0) -> None:
        """Source: disks then memory to the destination (at most ``bandwidth_mib`` MiB/s of memory
        when > 0, else the host's ``migration_bandwidth_mib``); on failure the guest runs on here."""
        migration.migrate(
            self,
            guest,
            migration.MigrationTarget.from_dict(target),
            bandwidth_mib=bandwidth_mib or self.migration_bandwidth_mib,
        )

    def control_live_migration(self, guest: GuestSpec, what: str) -> bool:
        """Source, during ``live_migrate`` (not serialised): ``force_complete`` or ``abort``."""
        return migration.request(self, guest, what)

    @_serialised
    def finish_live_migration(self, guest: GuestSpec) -> None:
        """Destination: the guest continues here."""
        migration.finish(self, guest)

    @_serialised
    def abort_live_migration(self, guest: GuestSpec) -> None:
        """Destination: the incoming guest and its directory are removed."""
        migration.abort(self, guest)

    @_serialised
    def rollback_live_migration(self, guest: GuestSpec) -> None:
        """Source: the migration failed after the memory went over: the guest runs here again."""
        migration.rollback(self, guest)

    def _changeable(self, guest: GuestSpec) -> Path:
        d = self._existing(guest)
        if self._pid(d, guest.uuid) is None and (d / STATE).is_file():
            raise DriverError(f"Instance {guest.uuid} is suspended: its devices cannot change")
        return d

    def _write_argv(self, d: Path, argv: list[str]) -> None:
        part = d / (LAUNCH + ".part")
        _write_private(part, json.dumps({"argv": argv}).encode())
        os.replace(part, d / LAUNCH)

    def console_endpoint(self, guest: GuestSpec, kind: str) -> virt_api.ConsoleEndpoint | None:
        """The serial console: the unix socket on the guest's first serial port (``console.sock``,
        one client at a time; ``console.log`` keeps logging). None when the guest is not running
        or was started before it had one."""
        if kind != "serial":
            return None
        d = self.instance_dir(guest)
        sock = d / launch.CONSOLE_SOCKET
        if self._pid(d, guest.uuid) is None or not sock.is_socket():
            return None
        return virt_api.ConsoleEndpoint(host=guest.host, path=str(sock))

    def _copy_kernel_files(self, d: Path, guest: GuestSpec) -> None:
        """A kernel/ramdisk image: its kernel and ramdisk images, fetched and verified through the
        image cache, copied into the instance directory (``-kernel``/``-initrd`` read them there)."""
        for key, row in launch.kernel_files(guest.image).items():
            cached = self.images.ensure_file(row)
            target = d / (launch.KERNEL if key == "kernel" else launch.RAMDISK)
            shutil.copyfile(cached, target)
            os.chmod(target, 0o600)

    def prune_images(self, max_age_s: float) -> list[Path]:
        return self.images.prune(max_age_s)

    def instance_dir(self, guest: GuestSpec) -> Path:
        try:
            canonical = str(uuidlib.UUID(guest.uuid))
        except ValueError as exc:
            raise BuildAbort(f"Invalid instance uuid {guest.uuid!r}") from exc
        if canonical != guest.uuid.lower():
            raise BuildAbort(f"Invalid instance uuid {guest.uuid!r}")
        return self.instances_path / canonical

    # -- processes -----------------------------------------------------------------------

    def _existing(self, guest: GuestSpec) -> Path:
        d = self.instance_dir(guest)
        if not (d / LAUNCH).is_file():
            raise DriverError(f"Instance {guest.uuid} does not exist on {guest.host}")
        return d

    def _argv(self, d: Path) -> list[str]:
        try:
            argv = json.loads((d / LAUNCH).read_text())["argv"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DriverError(f"Instance directory {d.name} has no usable {LAUNCH}: {exc}") from exc
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise DriverError(f"Instance directory {d.name} has a corrupt {LAUNCH}")
        return argv

    def _start(self, d: Path, uuid: str, *, incoming: bool = False) -> None:
        """Start QEMU detached and wait until QMP answers and the guest runs (or waits for
        its incoming state). The guest's boot is not waited for."""
        argv = self._argv(d) + (["-incoming", "defer"] if incoming else [])
        if self.network is not None and any(a.startswith("tap,") for a in argv):
            self.network.plug(uuid)  # the taps, on their bridges, filtered: QEMU gets fds on them
        self._trim_console(d)
        for name in (QMP_SOCKET, PID_FILE, launch.CONSOLE_SOCKET):
            (d / name).unlink(missing_ok=True)
        fds = self._tap_fds(argv) if self.network is not None else []
        for i, fd in fds:
            argv[i] = hotplug.tap_by_fd(argv[i], str(fd))
        try:
            done = subprocess.run(
                argv,
                cwd=d,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=START_TIMEOUT,
                start_new_session=True,
                check=False,
                pass_fds=[fd for _, fd in fds],
            )
        except subprocess.TimeoutExpired as exc:
            self._kill(d, uuid)
            raise DriverError(f"QEMU did not start instance {uuid} within {START_TIMEOUT:.0f}s") from exc
        except OSError as exc:
            raise DriverError(f"Could not run QEMU for instance {uuid}: {exc}") from exc
        finally:
            self._close(fds)  # QEMU holds its own copies
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-1000:] or f"exit status {done.returncode}"
            raise DriverError(f"QEMU failed to start instance {uuid}: {detail}")
        for name in (CONSOLE, PID_FILE):
            if (d / name).exists():
                os.chmod(d / name, 0o600)
        want = ("inmigrate",) if incoming else ("running",)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._pid(d, uuid) is None:
                raise DriverError(f"QEMU for instance {uuid} exited right after starting")
            try:
                with self._qmp(d, timeout=5.0) as qmp:
                    status = qmp.execute("query-status").get("status")
                if status in want:
                    return
            except (QMPError, AttributeError):
                pass
            if time.monotonic() > deadline:
                self._kill(d, uuid)
                raise DriverError(f"Instance {uuid} did not reach {want[0]} within {START_TIMEOUT:.0f}s")
            time.sleep(0.1)

    @staticmethod
    def _tap_fds(argv: list[str]) -> list[tuple[int, int]]:
        """(argv index, open fd) for each ``-netdev tap,...,ifname=T``: the tap is in its network's
        namespace (network/dataplane/l2.py), so QEMU gets a descriptor instead of a name."""
        from novalite.network.dataplane import l2

        fds: list[tuple[int, int]] = []
        for i in range(1, len(argv)):
            tap = hotplug.tap_ifname(argv[i]) if argv[i - 1] == "-netdev" else None
            if tap is None:
                continue
            try:
                fd = l2.open_tap(tap)
            except OSError as exc:
                fd, reason = None, str(exc)
            else:
                reason = "no network on this host has it"
            if fd is None:
                QemuDriver._close(fds)
                raise DriverError(f"Could not open the tap {tap}: {reason}")
            fds.append((i, fd))
        return fds

    @staticmethod
    def _close(fds: list[tuple[int, int]]) -> None:
        for _, fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _acpi_shutdown(self, d: Path, pid: int, timeout: float) -> bool:
        """Press the ACPI power button (again every ACPI_RETRY s); True if QEMU exited in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self._qmp(d, timeout=5.0) as qmp:
                    qmp.execute("system_powerdown")
            except QMPError:
                pass
            if _wait_gone(pid, min(ACPI_RETRY, max(0.0, deadline - time.monotonic())), self._stopping):
                return True
            if self._stopping.is_set():
                raise ServiceStopping("the compute service is stopping; the guest keeps running")
            if time.monotonic() >= deadline:
                return False

    def _kill(self, d: Path, uuid: str) -> None:
        pid = self._pid(d, uuid)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if not _wait_gone(pid, KILL_TIMEOUT):
            raise DriverError(f"QEMU process {pid} of instance {uuid} does not die")

    def _pid(self, d: Path, uuid: str) -> int | None:
        """The pid of this instance's live QEMU (checked against its command line), else None."""
        try:
            pid = int((d / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if f"guest={uuid}".encode() in cmdline else None

    def _qmp(self, d: Path, *, timeout: float = 10.0) -> QMPClient:
        return QMPClient(d / QMP_SOCKET, timeout=timeout)

    def _running_qmp(self, guest: GuestSpec, command: str) -> None:
        d = self._existing(guest)
        if self._pid(d, guest.uuid) is None:
            raise DriverError(f"Instance {guest.uuid} is not running on {guest.host}")
        try:
            with self._qmp(d) as qmp:
                qmp.execute(command)
        except QMPError as exc:
            raise DriverError(f"{command} of instance {guest.uuid} failed: {exc}") from exc

    def _wait_migration(self, qmp: QMPClient, query: str, uuid: str) -> None:
        deadline = time.monotonic() + SAVE_TIMEOUT
        while time.monotonic() < deadline:
            answer = qmp.execute(query)
            status = answer.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                why = answer.get("error-desc") or status
                raise DriverError(f"Saving the memory of instance {uuid} failed: {why}")
            time.sleep(0.1)
        raise DriverError(f"Saving the memory of instance {uuid} took more than {SAVE_TIMEOUT:.0f}s")

    def _wait_incoming(self, qmp: QMPClient, uuid: str) -> None:
        deadline = time.monotonic() + SAVE_TIMEOUT
        while time.monotonic() < deadline:
            status = qmp.execute("query-status").get("status")
            if status in ("paused", "running"):
                return
            if status != "inmigrate":
                raise DriverError(f"Restoring instance {uuid} left it {status}")
            time.sleep(0.1)
        raise DriverError(f"Restoring the memory of instance {uuid} took more than {SAVE_TIMEOUT:.0f}s")

    def _trim_console(self, d: Path) -> None:
        """Keep the last console_limit bytes of the log (QEMU appends: O_APPEND writers
        keep writing at the new end after a truncation)."""
        path = d / CONSOLE
        try:
            with path.open("r+b") as f:
                size = f.seek(0, os.SEEK_END)
                if size <= self.console_limit:
                    return
                f.seek(size - self.console_limit)
                keep = f.read()
                f.seek(0)
                f.truncate()
                f.write(keep)
        except FileNotFoundError:
            return

    def _bound_console(self, d: Path) -> None:
        try:
            if (d / CONSOLE).stat().st_size > 2 * self.console_limit:
                self._trim_console(d)
        except FileNotFoundError:
            return


def host_resources(instances_path: Path | str) -> tuple[int, int, int]:
    """This host's (vcpus, memory_mb, free disk GiB under instances_path) for its inventories."""
    vcpus = os.cpu_count() or 1
    memory_mb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) // 1024
                break
    path = Path(instances_path)
    while not path.exists() and path != path.parent:
        path = path.parent
    disk_gb = shutil.disk_usage(path).free // (1024**3)
    return vcpus, memory_mb, disk_gb


def _qemu_version() -> int:
    try:
        out = subprocess.run(
            ["qemu-system-x86_64", "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QemuNotInstalled(f"qemu-system-x86_64 --version failed: {exc}") from exc
    found = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if not found:
        raise QemuNotInstalled(f"Cannot read QEMU's version from {out.strip()[:200]!r}")
    major, minor, micro = (int(x) for x in found.groups())
    return major * 1_000_000 + minor * 1_000 + micro


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a daemonized QEMU is not our child)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]
    return bool(state) and state[0] not in ("Z", "X")


def _wait_gone(pid: int, timeout: float, cut_short: threading.Event | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline or (cut_short is not None and cut_short.is_set()):
            return False
        time.sleep(0.1)
    return True


def _uptime(pid: int) -> int | None:
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
        boot_uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, int(boot_uptime - start_ticks / os.sysconf("SC_CLK_TCK")))


def _rss_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def _thread_time_ns(pid: int, tid: object) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/task/{int(str(tid))}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

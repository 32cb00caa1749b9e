"""Live migration of a running QEMU guest between two hosts without shared storage (block
migration, as Nova's libvirt driver does it with ``--copy-storage-inc``).

The steps, each host's driver doing its own part (the agents call them in this order)::

    destination  prepare   instance directory: a new root overlay on its own cached base of the
                           same image (verified by the image cache) and the same size, ephemeral
                           and swap disks, the config drive regenerated, launch.json = the source's
                           command line with the source directory replaced by its own; taps
                           plugged (data plane on); QEMU started with ``-incoming defer``; an NBD
                           server exporting its local disks writable (a named export per
                           disk, as many connections as disks); ``migrate-incoming``
    source       migrate   per local disk: ``blockdev-add`` of the NBD export + ``blockdev-mirror``
                           (sync=top: the base is in both caches; copy-mode write-blocking), wait
                           until every job is ready, ``migrate`` to the target's URI, wait for
                           completed, ``block-job-cancel`` (the target stays a consistent copy)
    destination  finish    ``nbd-server-stop``, ``cont``: the guest runs on, no reboot
    source       destroy   QEMU quits, its instance directory is removed, taps unplugged

Where the destination listens: with an address (the host's ``my_ip``) the NBD server and
``migrate-incoming`` listen on TCP at that address, each on a free port of the host's port range
(``live_migration_port_range``, 49152-49215 like libvirt's), for hosts on different machines;
without one on unix sockets in its instance directory (``nbd.sock``, ``migrate.sock``: both
hosts on one machine). The streams are not encrypted (libvirt's default TCP transport neither).
The listeners close when the move ends: ``nbd-server-stop`` at finish, QEMU killed at abort.

Volumes are files every host reaches: the destination opens the same file (no copy). A failure
at any step before finish leaves the source running (``rollback``: jobs cancelled, ``cont``)
and the destination is destroyed (``abort``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novalite.virt.driver import DriverError, GuestSpec, LiveMigrationCancelled
from novalite.virt.qemu import hotplug, launch
from novalite.virt.qemu.qmp import QMPClient, QMPError

if TYPE_CHECKING:
    from novalite.virt.qemu.driver import QemuDriver

NBD_SOCKET, MIGRATE_SOCKET = "nbd.sock", "migrate.sock"
LOCAL_DRIVES = ("drive-root", "drive-ephemeral", "drive-swap")  # copied; config drive regenerated
MIRROR_TIMEOUT = 600.0
MIGRATE_TIMEOUT = 600.0
SUN_PATH_MAX = 107
PORT_RANGE = "49152-49215"  # libvirt's default migration ports
FORCE_COMPLETE, ABORT = "force_complete", "abort"
_running: dict[str, set[str]] = {}  # instance directory of a migrating source -> requests
_running_guard = threading.Lock()


@dataclass(frozen=True)
class MigrationTarget:
    """What the destination tells the source: where to send the disks and the memory."""

    instance_uuid: str
    # the destination's NBD server as a QMP SocketAddress: {"type": "unix", "path": ...} or
    # {"type": "inet", "host": ip, "port": "N"}
    nbd_server: Mapping[str, str]
    migrate_uri: str  # ``unix:<path>`` or ``tcp:<ip>:<port>``: the destination QEMU's memory listener
    drives: tuple[str, ...]  # the drives copied over NBD (export name = drive id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_uuid": self.instance_uuid,
            "nbd_server": dict(self.nbd_server),
            "migrate_uri": self.migrate_uri,
            "drives": list(self.drives),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MigrationTarget:
        server = data.get("nbd_server")
        if not isinstance(server, Mapping):  # an agent of the unix-socket-only version
            server = {"type": "unix", "path": str(data["nbd_socket"])}
        return cls(
            instance_uuid=str(data["instance_uuid"]),
            nbd_server={str(k): str(v) for k, v in server.items()},
            migrate_uri=str(data["migrate_uri"]),
            drives=tuple(str(x) for x in data["drives"]),
        )


def parse_port_range(text: str) -> tuple[int, int]:
    """``"49152-49215"`` -> (49152, 49215); ValueError naming the setting when malformed."""
    try:
        low, high = (int(x) for x in str(text).split("-", 1))
    except ValueError:
        raise ValueError(f"live_migration_port_range must be LOW-HIGH, not {text!r}") from None
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"live_migration_port_range {text!r}: ports 1-65535, LOW <= HIGH")
    return low, high


def local_drives(d: Path, argv: Sequence[str]) -> tuple[str, ...]:
    """The drives of the command line whose file lives in the instance directory ``d`` (root,
    ephemeral, swap): those are copied. Volumes and the config drive are not."""
    found = []
    for arg in argv:
        fields = dict(f.split("=", 1) for f in arg.split(",") if "=" in f)
        if fields.get("id") in LOCAL_DRIVES and Path(fields.get("file", "")).parent == d:
            found.append(fields["id"])
    return tuple(found)


def source_argv(driver: QemuDriver, guest: GuestSpec) -> list[str]:
    """The source's command line (its launch.json): the destination starts the same devices."""
    return driver._argv(driver._existing(guest))


def prepare(driver: QemuDriver, guest: GuestSpec, argv: Sequence[str], source_dir: str) -> MigrationTarget:
    """Destination: the instance directory and a QEMU waiting for the disks and the memory."""
    d = driver.instance_dir(guest)
    if driver._pid(d, guest.uuid) is not None or d.exists():
        raise DriverError(f"Instance {guest.uuid} already exists on {guest.host}")
    for dev in guest.block_devices:  # shared volume files: the destination opens the same file
        hotplug.check_volume_file(str(dev.get("volume_id")), dev.get("path"))
    address = driver.migration_address
    for name in (NBD_SOCKET, MIGRATE_SOCKET) if address is None else ():
        if len(str(d / name).encode()) > SUN_PATH_MAX:
            raise DriverError(f"instances_path {driver.instances_path} is too long for a unix socket")
    base = None if hotplug.root_volume(guest.block_devices) else driver.images.ensure(guest.image)
    d.mkdir(mode=0o700)
    try:
        launch.prepare_disks(d, guest, base)
        if base is not None:
            _same_size(d, source_dir)
        driver._copy_kernel_files(d, guest)
        own = [a.replace(source_dir.rstrip("/") + "/", f"{d}/") for a in argv]
        if driver.metadata_command is not None:  # this host's metadata relay, not the source's
            own = own_metadata_relay(own, driver.metadata_command(guest))
        drives = local_drives(d, own)
        _write(d / launch.LAUNCH, json.dumps({"argv": own}).encode())
        driver._start(d, guest.uuid, incoming=True)
        with driver._qmp(d) as qmp:
            nodes = _drive_nodes(qmp)
            listeners = _Listeners(qmp, d, address, driver.migration_ports)
            nbd_server = listeners.nbd(max(1, len(drives)))
            for drive in drives:
                qmp.execute(
                    "block-export-add",
                    type="nbd",
                    id=f"export-{drive}",
                    **_args({"node-name": nodes[drive]}),
                    name=drive,
                    writable=True,
                )
            migrate_uri = listeners.incoming()
    except BaseException as exc:
        abort(driver, guest)
        if isinstance(exc, QMPError):
            raise DriverError(f"Instance {guest.uuid} cannot be received on {guest.host}: {exc}") from exc
        raise
    return MigrationTarget(guest.uuid, nbd_server, migrate_uri, drives)


def own_metadata_relay(argv: Sequence[str], command: str | None) -> list[str]:
    """The source's command line with its guestfwd metadata relay (a command naming the source
    host's data directory) replaced by this host's ``command``."""
    marker = "-cmd:"
    out = []
    for arg in argv:
        if command is not None and "guestfwd=" in arg and marker in arg:
            head, _, tail = arg.partition(marker)
            rest = tail.split(",", 1)  # the command has no comma (QEMU option syntax)
            arg = head + marker + command + ("," + rest[1] if len(rest) > 1 else "")
        out.append(arg)
    return out


class _Listeners:
    """Destination: the NBD server and the memory listener, on unix sockets in the instance
    directory (no address) or on TCP ports of ``ports`` at ``address`` (a port another process
    holds is skipped)."""

    def __init__(self, qmp: QMPClient, d: Path, address: str | None, ports: tuple[int, int]) -> None:
        self.qmp, self.d, self.address, self.ports = qmp, d, address, ports
        self.taken: set[int] = set()

    def nbd(self, connections: int) -> dict[str, str]:
        """Start the NBD server: at most ``connections`` clients (the source's, one per disk)."""
        limit = _args({"max-connections": connections})
        if self.address is None:
            path = str(self.d / NBD_SOCKET)
            self.qmp.execute("nbd-server-start", addr={"type": "unix", "data": {"path": path}}, **limit)
            return {"type": "unix", "path": path}
        address = self.address
        port = self._bind(
            lambda p: self.qmp.execute(
                "nbd-server-start", addr={"type": "inet", "data": {"host": address, "port": str(p)}}, **limit
            )
        )
        return {"type": "inet", "host": address, "port": str(port)}

    def incoming(self) -> str:
        """``migrate-incoming``; answers the URI the source migrates to."""
        if self.address is None:
            uri = f"unix:{self.d / MIGRATE_SOCKET}"
            self.qmp.execute("migrate-incoming", uri=uri)
            return uri
        port = self._bind(lambda p: self.qmp.execute("migrate-incoming", uri=f"tcp:{self.address}:{p}"))
        return f"tcp:{self.address}:{port}"

    def _bind(self, listen: Callable[[int], object]) -> int:
        low, high = self.ports
        span = high - low + 1
        first = random.randrange(span)  # two destinations preparing at once rarely collide
        for i in range(span):
            port = low + (first + i) % span
            if port in self.taken:
                continue
            try:
                listen(port)
            except QMPError as exc:
                if "in use" in str(exc).lower():
                    continue
                raise
            self.taken.add(port)
            return port
        raise DriverError(f"No free port in the live migration port range {low}-{high} on {self.address}")


def migrate(driver: QemuDriver, guest: GuestSpec, target: MigrationTarget, *, bandwidth_mib: int = 0) -> None:
    """Source: mirror the local disks to the destination, then its memory. On failure the source
    keeps running (jobs cancelled, ``cont``) and DriverError is raised."""
    d = driver._existing(guest)
    if driver._pid(d, guest.uuid) is None:
        raise DriverError(f"Instance {guest.uuid} is not running on {guest.host}")
    with _running_guard:
        _running[str(d)] = set()
    try:
        _migrate(driver, d, guest, target, bandwidth_mib)
    finally:
        with _running_guard:
            _running.pop(str(d), None)


def request(driver: QemuDriver, guest: GuestSpec, what: str) -> bool:
    """Source, while ``migrate`` runs (another thread): ``force_complete`` pauses the guest so
    that its memory copy converges (it runs again on the destination, or here if the move
    fails); ``abort`` cancels the copies (the guest stays here). False: no migration runs."""
    if what not in (FORCE_COMPLETE, ABORT):
        raise ValueError(what)
    with _running_guard:
        requests = _running.get(str(driver.instance_dir(guest)))
        if requests is None:
            return False
        requests.add(what)
        return True


def _asked(d: Path, what: str) -> bool:
    with _running_guard:
        return what in _running.get(str(d), set())


def _migrate(
    driver: QemuDriver, d: Path, guest: GuestSpec, target: MigrationTarget, bandwidth_mib: int
) -> None:
    try:
        with driver._qmp(d, timeout=30.0) as qmp:
            try:
                for drive in target.drives:
                    node = f"migration-{drive}"
                    qmp.execute(
                        "blockdev-add",
                        driver="nbd",
                        **_args({"node-name": node}),
                        server=dict(target.nbd_server),
                        export=drive,
                    )
                    qmp.execute(
                        "blockdev-mirror",
                        **_args({"job-id": node, "copy-mode": "write-blocking"}),
                        device=drive,
                        target=node,
                        sync="top",
                    )
                _wait_ready(qmp, [f"migration-{x}" for x in target.drives], guest.uuid, d)
                if bandwidth_mib > 0:  # Nova's [libvirt] live_migration_bandwidth (MiB/s); 0: no limit
                    qmp.execute(
                        "migrate-set-parameters", **_args({"max-bandwidth": bandwidth_mib * 1024 * 1024})
                    )
                qmp.execute("migrate", uri=target.migrate_uri)
                _wait_migrated(qmp, guest.uuid, d)
                _end_jobs(qmp, target.drives)
            except BaseException:
                _undo(qmp, target.drives)
                raise
    except QMPError as exc:
        raise DriverError(f"Live migration of instance {guest.uuid} failed: {exc}") from exc


def finish(driver: QemuDriver, guest: GuestSpec) -> None:
    """Destination: the memory and disks are here; the guest continues."""
    d = driver._existing(guest)
    if driver._pid(d, guest.uuid) is None:
        raise DriverError(f"The incoming QEMU of instance {guest.uuid} is gone")
    try:
        with driver._qmp(d) as qmp:
            driver._wait_incoming(qmp, guest.uuid)
            qmp.execute("nbd-server-stop")
            qmp.execute("cont")
    except QMPError as exc:
        raise DriverError(f"Instance {guest.uuid} could not continue on {guest.host}: {exc}") from exc
    for name in (NBD_SOCKET, MIGRATE_SOCKET):
        (d / name).unlink(missing_ok=True)


def abort(driver: QemuDriver, guest: GuestSpec) -> None:
    """Destination: the incoming QEMU killed, its directory and taps removed."""
    d = driver.instance_dir(guest)
    driver._kill(d, guest.uuid)
    shutil.rmtree(d, ignore_errors=True)
    if driver.network is not None:
        driver.network.unplug(guest.uuid)


def rollback(driver: QemuDriver, guest: GuestSpec) -> None:
    """Source: the destination could not take the guest over: the source runs again."""
    d = driver._existing(guest)
    if driver._pid(d, guest.uuid) is None:
        raise DriverError(f"Instance {guest.uuid} is not running on {guest.host}")
    try:
        with driver._qmp(d) as qmp:
            if qmp.execute("query-status").get("status") != "running":
                qmp.execute("cont")
    except QMPError as exc:
        raise DriverError(f"Instance {guest.uuid} could not continue on {guest.host}: {exc}") from exc


def _drive_nodes(qmp: QMPClient) -> dict[str, str]:
    """drive id -> the node name of its image (``block-export-add`` wants a node)."""
    nodes = {}
    for dev in qmp.execute("query-block"):
        inserted = dev.get("inserted")
        if isinstance(inserted, dict) and inserted.get("node-name"):
            nodes[str(dev.get("device"))] = str(inserted["node-name"])
    return nodes


def _same_size(d: Path, source_dir: str) -> None:
    """The new overlay has the source's virtual size (the flavor's root disk, or the image's)."""
    source_disk = Path(source_dir) / launch.DISK
    if not source_disk.is_file():
        return  # another machine: the flavor decides both sizes alike
    mine, theirs = _virtual_size(d / launch.DISK), _virtual_size(source_disk)
    if mine != theirs:
        raise DriverError(f"The destination's root disk is {mine} bytes, the source's {theirs}")


def _virtual_size(path: Path) -> int:
    done = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise DriverError(f"qemu-img info {path} failed: {done.stderr.strip()[-300:]}")
    return int(json.loads(done.stdout)["virtual-size"])


def _jobs(qmp: QMPClient) -> dict[str, dict[str, Any]]:
    return {str(j.get("device")): j for j in qmp.execute("query-block-jobs")}


def _wait_ready(qmp: QMPClient, job_ids: list[str], uuid: str, d: Path) -> None:
    deadline = time.monotonic() + MIRROR_TIMEOUT
    while True:
        if _asked(d, ABORT):
            raise LiveMigrationCancelled(f"The live migration of instance {uuid} was aborted")
        jobs = _jobs(qmp)
        missing = [j for j in job_ids if j not in jobs]
        if missing:
            errors = [e for e in qmp.events if e.get("event") == "BLOCK_JOB_COMPLETED"]
            why = next((str(e["data"]["error"]) for e in errors if e.get("data", {}).get("error")), "ended")
            raise DriverError(f"Copying the disks of instance {uuid} failed: {why}")
        if all(jobs[j].get("ready") for j in job_ids):
            return
        if time.monotonic() > deadline:
            raise DriverError(f"Copying the disks of instance {uuid} took more than {MIRROR_TIMEOUT:.0f}s")
        time.sleep(0.2)


def _wait_migrated(qmp: QMPClient, uuid: str, d: Path) -> None:
    deadline = time.monotonic() + MIGRATE_TIMEOUT
    paused = False
    while True:
        if _asked(d, ABORT):
            raise LiveMigrationCancelled(f"The live migration of instance {uuid} was aborted")
        if not paused and _asked(d, FORCE_COMPLETE):
            qmp.execute("stop")  # no more dirty pages: the copy converges (``cont`` on failure)
            paused = True
        answer = qmp.execute("query-migrate")
        status = answer.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            why = answer.get("error-desc") or status
            raise DriverError(f"Migrating the memory of instance {uuid} failed: {why}")
        if time.monotonic() > deadline:
            raise DriverError(f"Migrating instance {uuid}'s memory took more than {MIGRATE_TIMEOUT:.0f}s")
        time.sleep(0.2)


def _end_jobs(qmp: QMPClient, drives: Sequence[str]) -> None:
    """Cancel the ready mirrors (the target keeps a consistent copy; the source keeps its disk)
    and wait until they are gone."""
    ids = [f"migration-{x}" for x in drives]
    for job in ids:
        qmp.execute("block-job-cancel", device=job)
    deadline = time.monotonic() + MIRROR_TIMEOUT
    while any(j in _jobs(qmp) for j in ids):
        if time.monotonic() > deadline:
            raise DriverError("The disk copies did not end")
        time.sleep(0.1)
    for job in ids:
        try:
            qmp.execute("blockdev-del", **_args({"node-name": job}))
        except QMPError:
            pass


def _undo(qmp: QMPClient, drives: Sequence[str]) -> None:
    """Source after a failure: migration and disk copies cancelled, the guest running."""
    for command, args in [("migrate_cancel", {})] + [
        ("block-job-cancel", {"device": f"migration-{x}", "force": True}) for x in drives
    ]:
        try:
            qmp.execute(command, **_args(args))
        except QMPError:
            pass
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        try:
            if not any(f"migration-{x}" in _jobs(qmp) for x in drives):
                break
        except QMPError:
            break
        time.sleep(0.1)
    for x in drives:
        try:
            qmp.execute("blockdev-del", **_args({"node-name": f"migration-{x}"}))
        except QMPError:
            pass
    try:
        if qmp.execute("query-status").get("status") != "running":
            qmp.execute("cont")
    except QMPError:
        pass


def _args(arguments: Mapping[str, object]) -> dict[str, Any]:
    """QMP arguments whose names are not Python identifiers (``node-name``)."""
    return dict(arguments)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

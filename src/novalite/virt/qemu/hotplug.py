"""Volumes and NICs added to and removed from a guest: its ``launch.json`` argv and, while QEMU
runs, the same devices hot-plugged over QMP.

Every device has an id derived from what it carries, so it is found again after a restart of
the service or of the guest:

* a volume: block node ``vol-<24 hex of the volume id>`` (``-blockdev`` raw over the volume's
  file, the same JSON for ``blockdev-add``) and device ``disk-vol-...`` (``virtio-blk-pci``,
  ``serial`` = the volume id's first 20 characters, what ``/dev/disk/by-id`` shows);
* a port hot-plugged later: netdev ``net-<24 hex of the port id>``, device ``nic-...``. A port
  the guest booted with keeps launch.py's ``net<i>``/``nic<i>``: a NIC is found by its MAC.

Hot-plug is ``blockdev-add`` + ``device_add`` (``netdev_add`` + ``device_add``); unplug is
``device_del``, then waiting until the guest has released the device (ACPI: the guest acks the
eject; QEMU then removes it from ``/machine/peripheral``), then ``blockdev-del`` / ``netdev_del``.
A guest that does not release the device in time keeps it, and nothing else changes: a later
detach finds the device gone (the guest acked late) or asks again.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from novalite.network.dataplane.names import tap_name
from novalite.virt.driver import BuildAbort, DriverError
from novalite.virt.qemu.qmp import QMPClient, QMPError

UNPLUG_TIMEOUT = 60.0  # how long a guest gets to release a device (ACPI eject)
SERIAL_LENGTH = 20  # virtio-blk's serial (VIRTIO_BLK_ID_BYTES)

QMPFactory = Callable[[], QMPClient]


def _hex(ident: str) -> str:
    cleaned = "".join(c for c in ident.lower() if c in "0123456789abcdef")
    if len(cleaned) < 8:
        raise DriverError(f"Invalid device identifier {ident!r}")
    return cleaned[:24]


def volume_node(volume_id: str) -> str:
    return f"vol-{_hex(volume_id)}"


def volume_device(volume_id: str) -> str:
    return f"disk-{volume_node(volume_id)}"


def check_volume_file(volume_id: str, path: str | None) -> Path:
    """The volume's data file, which must exist (``volume_storage=file``); BuildAbort otherwise."""
    if not path:
        raise BuildAbort(
            f"Volume {volume_id} has no data file (volume_storage=records keeps none): "
            "a real guest cannot use it"
        )
    file = Path(path)
    if not file.is_absolute() or "," in path or not file.is_file():
        raise BuildAbort(f"Volume {volume_id}'s data file {path} is missing or unusable")
    return file


def root_volume(block_devices: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The volume a guest boots from (``boot_index`` 0), if any."""
    return next((b for b in block_devices if b.get("boot_index") == 0 and b.get("volume_id")), None)


def boot_volume_args(block_devices: Sequence[Mapping[str, Any]], *, root: bool) -> list[str]:
    """The command line of the root volume (``root``: first disk, booted) or of the others."""
    args: list[str] = []
    for dev in block_devices:
        is_root = dev.get("boot_index") == 0
        if is_root == root and dev.get("volume_id") and dev.get("path"):
            args += volume_args(str(dev["volume_id"]), str(dev["path"]), bootindex=1 if root else None)
    return args


def blockdev(volume_id: str, path: str) -> dict[str, Any]:
    """The raw block node over the volume's file (its format is never probed)."""
    return {
        "driver": "raw",
        "node-name": volume_node(volume_id),
        "file": {"driver": "file", "filename": path},
    }


def blk_device(volume_id: str, *, bootindex: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "driver": "virtio-blk-pci",
        "drive": volume_node(volume_id),
        "id": volume_device(volume_id),
        "serial": volume_id[:SERIAL_LENGTH],
    }
    if bootindex is not None:
        out["bootindex"] = bootindex
    return out


def volume_args(volume_id: str, path: str, *, bootindex: int | None = None) -> list[str]:
    """``-blockdev`` (JSON) and ``-device`` for a volume on the command line."""
    dev = blk_device(volume_id, bootindex=bootindex)
    device = ",".join(f"{k}={v}" for k, v in dev.items() if k != "driver")
    return [
        "-blockdev",
        json.dumps(blockdev(volume_id, path), separators=(",", ":")),
        "-device",
        f"{dev['driver']},{device}",
    ]


def nic_ids(port_id: str) -> tuple[str, str]:
    """(netdev id, device id) of a port plugged after boot."""
    h = _hex(port_id)
    return f"net-{h}", f"nic-{h}"


def netdev_option(port: Mapping[str, Any], netdev_id: str, *, dataplane: bool) -> str:
    """The ``-netdev`` value of a port: its tap with the data plane on, else restricted user-mode
    networking that leases the port's fixed IP (as launch.py does for boot-time NICs)."""
    from novalite.virt.qemu.launch import _addressing

    if dataplane and port.get("port_id"):
        return f"tap,id={netdev_id},ifname={tap_name(str(port['port_id']))},script=no,downscript=no"
    return f"user,id={netdev_id},restrict=on{_addressing(port)}"


TAP_BY_NAME = ("ifname", "script", "downscript")  # QEMU refuses them beside fd=


def tap_ifname(option: str) -> str | None:
    """The tap device a ``-netdev`` value names (``tap,...,ifname=T``), else None."""
    fields = option_fields(option)
    return fields.get("ifname") if fields["driver"] == "tap" else None


def tap_by_fd(option: str, fd: str) -> str:
    """A ``tap,...,ifname=T,...`` value as ``tap,...,fd=<fd>``: launch.json keeps the tap's name,
    QEMU gets an open descriptor on it (the tap lives in its network's namespace, where QEMU
    could not find it by name: network/dataplane/l2.py)."""
    kind, *pairs = option.split(",")
    kept = [p for p in pairs if p.partition("=")[0] not in TAP_BY_NAME]
    return ",".join([kind, *kept, f"fd={fd}"])


def netdev_qmp(option: str) -> dict[str, Any]:
    """A ``-netdev`` value as ``netdev_add``'s arguments."""
    kind, *pairs = option.split(",")
    out: dict[str, Any] = {"type": kind}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = {"on": True, "off": False}.get(value, value) if key == "restrict" else value
    return out


def option_fields(value: str) -> dict[str, str]:
    """``driver,key=value,...`` as ``{"driver": driver, key: value}``."""
    first, *pairs = value.split(",")
    out = {"driver": first}
    for pair in pairs:
        key, _, val = pair.partition("=")
        out[key] = val
    return out


def find_nic(argv: list[str], mac: str) -> dict[str, str] | None:
    """The ``-device`` fields of the NIC with ``mac`` (id, netdev, driver), if any."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-device" and f"mac={mac.lower()}" in value.lower():
            fields = option_fields(value)
            if "netdev" in fields and "id" in fields:
                return fields
    return None


def nic_model(argv: list[str]) -> str:
    """The model the guest's NICs use (the first NIC's), virtio-net-pci when it has none."""
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-device" and ",netdev=" in value and ",mac=" in value:
            return value.split(",", 1)[0]
    return "virtio-net-pci"


def has_device(argv: list[str], device_id: str) -> bool:
    return any(
        flag == "-device" and option_fields(value).get("id") == device_id
        for flag, value in zip(argv, argv[1:], strict=False)
    )


def without_device(argv: list[str], device_id: str) -> list[str]:
    """``argv`` without the ``-device`` whose id is ``device_id`` and the backend it uses
    (its ``-blockdev``/``-drive`` for ``drive=``, its ``-netdev`` for ``netdev=``)."""
    backend = None
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "-device" and option_fields(value).get("id") == device_id:
            fields = option_fields(value)
            backend = fields.get("drive") or fields.get("netdev")
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if nxt is not None and _names(flag, nxt, device_id, backend):
            i += 2
            continue
        out.append(flag)
        i += 1
    return out


def _names(flag: str, value: str, device_id: str, backend: str | None) -> bool:
    if flag == "-device":
        return option_fields(value).get("id") == device_id
    if backend is None:
        return False
    if flag == "-blockdev" and value.startswith("{"):
        try:
            return bool(json.loads(value).get("node-name") == backend)
        except ValueError:
            return False
    if flag in ("-netdev", "-drive"):
        return option_fields(value).get("id") == backend
    return False


# -- QMP ------------------------------------------------------------------------------------


def plug_volume(qmp: QMPFactory, volume_id: str, path: str) -> None:
    node = volume_node(volume_id)
    try:
        with qmp() as q:
            q.execute("blockdev-add", **blockdev(volume_id, path))
            try:
                q.execute("device_add", **blk_device(volume_id))
            except QMPError:
                q.execute("blockdev-del", (), **{"node-name": node})
                raise
    except QMPError as exc:
        raise DriverError(f"Could not attach volume {volume_id}: {exc.desc or exc}") from exc


def plug_nic(
    qmp: QMPFactory, netdev: dict[str, Any], device: dict[str, Any], *, fd: int | None = None
) -> None:
    """``netdev_add`` then ``device_add``; with ``fd``, first handed to QEMU by ``getfd`` under the
    name in ``netdev["fd"]`` on the same QMP session (QEMU looks it up on that monitor)."""
    try:
        with qmp() as q:
            if fd is not None:
                q.execute("getfd", fds=[fd], fdname=netdev["fd"])
            try:
                q.execute("netdev_add", **netdev)
            except QMPError:
                if fd is not None:
                    with contextlib.suppress(QMPError):
                        q.execute("closefd", fdname=netdev["fd"])
                raise
            try:
                q.execute("device_add", **device)
            except QMPError:
                q.execute("netdev_del", id=netdev["id"])
                raise
    except QMPError as exc:
        raise DriverError(
            f"Could not attach the interface with MAC {device.get('mac')}: {exc.desc or exc}"
        ) from exc


def _present(qmp: QMPFactory, device_id: str) -> bool:
    with qmp() as q:
        found = q.execute("qom-list", path="/machine/peripheral")
    return any(isinstance(p, dict) and p.get("name") == device_id for p in found or [])


def unplug(qmp: QMPFactory, device_id: str, *, timeout: float = UNPLUG_TIMEOUT) -> bool:
    """Ask the guest to release ``device_id`` and wait; True once it is gone (or was already),
    False when the guest still holds it after ``timeout``. Short QMP sessions: the power-state
    sync and other callers get their turn meanwhile."""
    try:
        if not _present(qmp, device_id):
            return True
        try:
            with qmp() as q:
                q.execute("device_del", id=device_id)
        except QMPError:
            pass  # already being unplugged (asked before): wait for it all the same
        deadline = time.monotonic() + timeout
        while _present(qmp, device_id):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True
    except QMPError as exc:
        raise DriverError(f"Could not detach device {device_id}: {exc}") from exc


def drop_backend(qmp: QMPFactory, command: str, **arguments: Any) -> None:
    """``blockdev-del`` / ``netdev_del`` after the device went; a backend already gone is fine."""
    try:
        with qmp() as q:
            q.execute(command, **arguments)
    except QMPError as exc:
        if exc.error_class in ("DeviceNotFound",) or "not found" in exc.desc.lower():
            return
        if "cannot find" in exc.desc.lower():
            return
        raise DriverError(f"{command} failed: {exc}") from exc

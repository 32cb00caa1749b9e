"""A rescued guest's files and command line (Nova's legacy rescue, docs/qemu.md "Rescue").

Rescue keeps the guest's ``launch.json`` aside as ``unrescue.json`` (Nova's ``unrescue.xml``)
and launches the same command line with one more disk in front: ``disk.rescue``, a qcow2
overlay on the cached rescue image (the image's own size: never grown to the flavor), on
virtio with boot index 1, before the original root disk (which loses its boot index). The guest
therefore sees the rescue disk as ``vda`` and its own disk as ``vdb`` (on the default virtio
bus). Unrescue puts ``unrescue.json`` back and deletes ``disk.rescue``.

Stable device rescue (Nova's, when the rescue image has ``hw_rescue_device`` or
``hw_rescue_bus``): every device of the guest stays where it is and the rescue device is added
last with boot index 1: a ``disk`` (default) on ``virtio`` (default) or ``scsi``, or a
``cdrom`` on ``scsi``. Other buses are refused (a ``DriverError``: the server keeps its state).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from novalite.virt.driver import DriverError
from novalite.virt.qemu.images import CachedImage
from novalite.virt.qemu.launch import DISK

RESCUE_DISK = "disk.rescue"
UNRESCUE = "unrescue.json"
_ROOT_DRIVE = "id=drive-root"
_BOOT_FIRST = ",bootindex=1"
RESCUE_DEVICES = ("disk", "cdrom")
RESCUE_BUSES = ("virtio", "scsi")


def rescue_argv(argv: list[str], d: Path, *, device: str = "", bus: str = "") -> list[str]:
    """``argv`` (the guest's launch command line) with the rescue disk booted first; ``device``
    or ``bus`` (the rescue image's ``hw_rescue_device``/``hw_rescue_bus``): stable device rescue."""
    if device or bus:
        return _stable_rescue_argv(argv, d, device or "disk", bus or "virtio")
    root_file = f"file={d / DISK},"
    at = next(
        (
            i
            for i in range(len(argv) - 1)
            if argv[i] == "-drive" and argv[i + 1].startswith(root_file) and _ROOT_DRIVE in argv[i + 1]
        ),
        None,
    )
    if at is None:  # boot from volume: no local root disk to put second
        raise DriverError("The instance has no local root disk to rescue")
    rescued = [a.replace(_BOOT_FIRST, "") if "drive=drive-root" in a else a for a in argv]
    return [
        *rescued[:at],
        "-drive",
        f"file={d / RESCUE_DISK},format=qcow2,if=none,id=drive-rescue",
        "-device",
        f"virtio-blk-pci,drive=drive-rescue,id=disk-rescue{_BOOT_FIRST}",
        *rescued[at:],
    ]


def _stable_rescue_argv(argv: list[str], d: Path, device: str, bus: str) -> list[str]:
    if device not in RESCUE_DEVICES:
        raise DriverError(f"Unsupported hw_rescue_device {device!r} (one of {', '.join(RESCUE_DEVICES)})")
    if bus not in RESCUE_BUSES or (device == "cdrom" and bus == "virtio"):
        raise DriverError(
            f"Unsupported hw_rescue_bus {bus!r} for a rescue {device} "
            f"(virtio or scsi for a disk, scsi for a cdrom)"
        )
    cdrom = device == "cdrom"
    rescued = [a.replace(_BOOT_FIRST, "") if a.endswith(_BOOT_FIRST) else a for a in argv]
    media = ",media=cdrom,readonly=on" if cdrom else ""
    extra = ["-drive", f"file={d / RESCUE_DISK},format=qcow2,if=none,id=drive-rescue{media}"]
    if bus == "virtio":
        extra += ["-device", f"virtio-blk-pci,drive=drive-rescue,id=disk-rescue{_BOOT_FIRST}"]
    else:
        if not any(a.startswith("virtio-scsi-pci,id=scsi") for a in rescued):
            extra += ["-device", "virtio-scsi-pci,id=scsi"]
        kind = "cd" if cdrom else "hd"
        extra += ["-device", f"scsi-{kind},drive=drive-rescue,id=disk-rescue,bus=scsi.0{_BOOT_FIRST}"]
    return rescued + extra


def make_rescue_disk(d: Path, base: CachedImage) -> Path:
    """``disk.rescue``: a qcow2 overlay on the rescue image's cached base, at the image's size."""
    path = d / RESCUE_DISK
    path.unlink(missing_ok=True)
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base.path), "-F", "qcow2", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"qemu-img failed: {exc}") from exc
    if done.returncode != 0:
        raise DriverError(f"qemu-img failed: {done.stderr.strip()[-500:]}")
    os.chmod(path, 0o600)
    return path

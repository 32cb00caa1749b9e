"""The rescue command line (``virt.qemu.rescue``): the rescue disk boots first on virtio, the
guest's own root disk follows without a boot index, everything else is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalite.virt.driver import DriverError, GuestSpec
from novalite.virt.qemu import launch
from novalite.virt.qemu.rescue import RESCUE_DISK, rescue_argv

UUID = "0b5c1c4e-6f51-4c0e-9f0a-3f1f1d3f2a10"


def _argv(d: Path, bus: str = "virtio") -> list[str]:
    (d / launch.CONFIG).write_bytes(b"")
    guest = GuestSpec(
        uuid=UUID,
        name="instance-00000001",
        host="h",
        node="h",
        flavor={"memory_mb": 128, "vcpus": 1},
        image={"properties": {"hw_disk_bus": bus}},
    )
    return launch.argv(d, guest, launch.LaunchOptions(accelerator="tcg", cpu_model="max"))


def test_rescue_disk_boots_first_and_the_own_disk_follows(tmp_path: Path) -> None:
    argv = _argv(tmp_path)
    rescued = rescue_argv(argv, tmp_path)
    drives = [a for a in rescued if a.startswith("file=")]
    assert drives[0].startswith(f"file={tmp_path / RESCUE_DISK},format=qcow2")
    assert drives[1].startswith(f"file={tmp_path / launch.DISK},")
    devices = [rescued[i + 1] for i, a in enumerate(rescued) if a == "-device"]
    rescue_dev = next(i for i, d in enumerate(devices) if "drive=drive-rescue" in d)
    root_dev = next(i for i, d in enumerate(devices) if "drive=drive-root" in d)
    assert rescue_dev < root_dev  # probed first: vda; the own disk is vdb
    assert devices[rescue_dev].endswith("bootindex=1") and "bootindex" not in devices[root_dev]
    assert [a for a in argv if "drive-config" in a] == [a for a in rescued if "drive-config" in a]
    assert len(rescued) == len(argv) + 4


def test_the_own_disk_on_another_bus_stays_there(tmp_path: Path) -> None:
    rescued = rescue_argv(_argv(tmp_path, "sata"), tmp_path)
    root = next(a for a in rescued if "drive=drive-root" in a)
    assert root.startswith("ide-hd,") and "bootindex" not in root
    assert any(a.startswith("virtio-blk-pci,drive=drive-rescue") for a in rescued)


def test_no_local_root_disk_cannot_be_rescued(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="no local root disk"):
        rescue_argv(["qemu-system-x86_64", "-nodefaults"], tmp_path)


def test_stable_device_rescue_adds_the_rescue_device_last(tmp_path: Path) -> None:
    argv = _argv(tmp_path)
    rescued = rescue_argv(argv, tmp_path, device="disk", bus="virtio")
    assert rescued[: len(argv)] == [a.replace(",bootindex=1", "") for a in argv]  # all kept, in place
    assert rescued[len(argv) :] == [
        "-drive",
        f"file={tmp_path / RESCUE_DISK},format=qcow2,if=none,id=drive-rescue",
        "-device",
        "virtio-blk-pci,drive=drive-rescue,id=disk-rescue,bootindex=1",
    ]
    cdrom = rescue_argv(argv, tmp_path, device="cdrom", bus="scsi")
    assert "virtio-scsi-pci,id=scsi" in cdrom
    assert cdrom[-1] == "scsi-cd,drive=drive-rescue,id=disk-rescue,bus=scsi.0,bootindex=1"
    assert any(a.endswith("id=drive-rescue,media=cdrom,readonly=on") for a in cdrom)
    on_scsi = rescue_argv(_argv(tmp_path, "scsi"), tmp_path, bus="scsi")
    assert on_scsi.count("virtio-scsi-pci,id=scsi") == 1  # the guest's controller is reused


@pytest.mark.parametrize(("device", "bus"), [("floppy", ""), ("cdrom", "virtio"), ("disk", "usb")])
def test_stable_device_rescue_refuses_what_it_cannot_attach(tmp_path: Path, device: str, bus: str) -> None:
    with pytest.raises(DriverError, match="Unsupported hw_rescue"):
        rescue_argv(_argv(tmp_path), tmp_path, device=device, bus=bus)

"""The QEMU command line's serial console (a logging unix socket) and kernel/ramdisk images."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalite.virt.driver import BuildAbort, GuestSpec
from novalite.virt.qemu.launch import LaunchOptions, argv, kernel_files

OPTS = LaunchOptions(accelerator="tcg", cpu_model="max")
KERNEL = {"id": "k-1", "size": 10, "checksum": "x"}
RAMDISK = {"id": "r-1", "size": 10, "checksum": "y"}


def _guest(image: dict[str, object]) -> GuestSpec:
    return GuestSpec(
        uuid="0f0c3a9e-1b2c-4d5e-8f90-123456789abc",
        name="vm",
        host="h",
        node="h",
        flavor={"memory_mb": 128, "vcpus": 1},
        image=image,
    )


def _after(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_the_first_serial_port_is_a_socket_that_logs_to_console_log(tmp_path: Path) -> None:
    args = argv(tmp_path, _guest({"id": "img"}), OPTS)
    console = next(c for c in _after(args, "-chardev") if "id=console" in c)
    assert console.startswith("socket,id=console,path=console.sock,server=on,wait=off,")
    assert f"logfile={tmp_path / 'console.log'},logappend=on" in console
    assert _after(args, "-serial") == ["chardev:console"]
    assert "-kernel" not in args  # a disk image boots by itself


def test_a_kernel_ramdisk_image_boots_its_copies_with_novas_default_command_line(tmp_path: Path) -> None:
    image = {
        "id": "img",
        "properties": {"kernel_id": "k-1", "ramdisk_id": "r-1"},
        "kernel": KERNEL,
        "ramdisk": RAMDISK,
    }
    args = argv(tmp_path, _guest(image), OPTS)
    assert _after(args, "-kernel") == [str(tmp_path / "kernel")]
    assert _after(args, "-initrd") == [str(tmp_path / "ramdisk")]
    assert _after(args, "-append") == ["root=/dev/vda console=ttyS0"]
    assert kernel_files(image) == {"kernel": KERNEL, "ramdisk": RAMDISK}


def test_os_command_line_and_a_kernel_without_ramdisk(tmp_path: Path) -> None:
    image = {
        "id": "img",
        "properties": {"kernel_id": "k-1", "os_command_line": "console=ttyS0 quiet"},
        "kernel": KERNEL,
    }
    args = argv(tmp_path, _guest(image), OPTS)
    assert _after(args, "-append") == ["console=ttyS0 quiet"] and "-initrd" not in args


def test_a_kernel_id_naming_no_image_is_refused() -> None:
    with pytest.raises(BuildAbort, match="kernel image k-9 of image img was not found"):
        kernel_files({"id": "img", "properties": {"kernel_id": "k-9"}})
    with pytest.raises(BuildAbort, match="ramdisk image r-9"):
        kernel_files({"id": "img", "properties": {"kernel_id": "k-1", "ramdisk_id": "r-9"}, "kernel": KERNEL})


def test_tcg_bounds_its_translation_cache_and_kvm_is_left_alone(tmp_path: Path) -> None:
    tcg = argv(tmp_path, _guest({"id": "img"}), OPTS)
    assert _after(tcg, "-accel") == ["tcg,tb-size=32"]
    kvm = argv(tmp_path, _guest({"id": "img"}), LaunchOptions(accelerator="kvm", cpu_model="max"))
    assert _after(kvm, "-accel") == ["kvm"]


def test_nokernel_means_the_image_boots_by_itself(tmp_path: Path) -> None:
    image = {"id": "img", "properties": {"kernel_id": "nokernel", "ramdisk_id": "r-1"}}
    assert kernel_files(image) == {}
    assert "-kernel" not in argv(tmp_path, _guest(image), OPTS)

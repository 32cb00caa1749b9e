"""Volumes and NICs in a guest's QEMU command line: boot from volume, devices added to and removed
from ``launch.json`` (what stop/start and reboots reuse), and what hot-plug sends over QMP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novalite.virt.driver import BuildAbort, GuestSpec
from novalite.virt.qemu import hotplug
from novalite.virt.qemu.launch import LaunchOptions, argv

VOLUME = "1b2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6"
OTHER = "aa2c3d4e-5f60-4718-9a0b-c1d2e3f4a5b6"
PORT = {
    "port_id": "5f0c3a9e-1b2c-4d5e-8f90-123456789abc",
    "mac_address": "fa:16:3e:12:34:56",
    "fixed_ips": [{"ip_address": "10.0.0.5", "cidr": "10.0.0.0/24"}],
    "gateway": "10.0.0.1",
}
OPTS = LaunchOptions(accelerator="tcg", cpu_model="max")


def _guest(**kw: object) -> GuestSpec:
    return GuestSpec(
        uuid="0f0c3a9e-1b2c-4d5e-8f90-123456789abc",
        name="vm",
        host="h",
        node="h",
        flavor={"memory_mb": 128, "vcpus": 1},
        **kw,  # type: ignore[arg-type]
    )


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_a_server_booted_from_a_volume_boots_its_raw_file_first(tmp_path: Path) -> None:
    devices = (
        {"volume_id": OTHER, "path": "/v/other", "device_name": "/dev/vdb", "boot_index": None},
        {"volume_id": VOLUME, "path": "/v/root", "device_name": "/dev/vda", "boot_index": 0},
    )
    args = argv(tmp_path, _guest(block_devices=devices), OPTS)
    assert not any("drive-root" in a for a in args)  # no image overlay
    blockdevs = [json.loads(v) for v in _values(args, "-blockdev")]
    assert [(b["driver"], b["file"]["filename"]) for b in blockdevs] == [
        ("raw", "/v/root"),
        ("raw", "/v/other"),
    ]
    disks = [d for d in _values(args, "-device") if d.startswith("virtio-blk-pci")]
    assert disks[0].endswith("bootindex=1") and f"serial={VOLUME[:20]}" in disks[0]
    assert "bootindex" not in disks[1]


def test_an_image_boot_keeps_its_overlay_and_adds_attached_volumes(tmp_path: Path) -> None:
    devices = ({"volume_id": OTHER, "path": "/v/other", "device_name": "/dev/vdb", "boot_index": None},)
    args = argv(tmp_path, _guest(block_devices=devices), OPTS)
    assert any("id=drive-root" in a for a in _values(args, "-drive"))
    assert len(_values(args, "-blockdev")) == 1


def test_devices_are_added_and_removed_with_their_backends() -> None:
    base = ["qemu-system-x86_64", "-netdev", "user,id=net0,restrict=on", "-device",
            "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,id=nic0"]  # fmt: skip
    with_volume = base + hotplug.volume_args(VOLUME, "/v/root")
    device = hotplug.volume_device(VOLUME)
    assert hotplug.has_device(with_volume, device)
    assert hotplug.without_device(with_volume, device) == base
    # a NIC the guest booted with is found by its MAC and goes with its netdev
    nic = hotplug.find_nic(base, "FA:16:3E:00:00:01")
    assert nic is not None and (nic["id"], nic["netdev"]) == ("nic0", "net0")
    assert hotplug.without_device(with_volume, "nic0") == ["qemu-system-x86_64"] + with_volume[5:]
    assert hotplug.nic_model(base) == "virtio-net-pci"


def test_a_hot_plugged_nic_is_what_launch_would_give_the_port() -> None:
    netdev_id, _ = hotplug.nic_ids(str(PORT["port_id"]))
    option = hotplug.netdev_option(PORT, netdev_id, dataplane=False)
    assert (
        option.startswith(f"user,id={netdev_id},restrict=on,net=10.0.0.0/24")
        and "dhcpstart=10.0.0.5" in option
    )
    qmp = hotplug.netdev_qmp(option)
    assert qmp["type"] == "user" and qmp["restrict"] is True and qmp["dhcpstart"] == "10.0.0.5"
    tap = hotplug.netdev_qmp(hotplug.netdev_option(PORT, netdev_id, dataplane=True))
    assert tap == {
        "type": "tap",
        "id": netdev_id,
        "ifname": "tap5f0c3a9e-1b",
        "script": "no",
        "downscript": "no",
    }


def test_a_volume_without_a_data_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildAbort, match="no data file"):
        hotplug.check_volume_file(VOLUME, None)  # volume_storage=records
    with pytest.raises(BuildAbort, match="missing"):
        hotplug.check_volume_file(VOLUME, str(tmp_path / "gone"))
    (tmp_path / "v").write_bytes(b"")
    assert hotplug.check_volume_file(VOLUME, str(tmp_path / "v")) == tmp_path / "v"


def test_a_tap_named_in_launch_json_reaches_qemu_as_a_descriptor() -> None:
    """The tap lives in its network's namespace, where QEMU cannot find it by name: the name
    stays in launch.json and QEMU is given ``fd=`` without ifname/script/downscript, which
    QEMU refuses beside it."""
    port = {"port_id": "c0ffee00-0000-4000-8000-000000000001", "mac_address": "fa:16:3e:00:00:01"}
    option = hotplug.netdev_option(port, "net-x", dataplane=True)
    assert hotplug.tap_ifname(option) == "tapc0ffee00-00"
    assert hotplug.tap_by_fd(option, "net-x") == "tap,id=net-x,fd=net-x"
    assert hotplug.netdev_qmp(hotplug.tap_by_fd(option, "7")) == {"type": "tap", "id": "net-x", "fd": "7"}
    assert hotplug.tap_ifname("user,id=n0,restrict=on") is None

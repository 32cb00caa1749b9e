"""The QEMU command line's NICs: each port on its tap with the data plane, user networking without."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalite.compute import networking
from novalite.virt.driver import GuestSpec
from novalite.virt.qemu.launch import LaunchOptions, argv

PORT = {
    "port_id": "5f0c3a9e-1b2c-4d5e-8f90-123456789abc",
    "mac_address": "fa:16:3e:12:34:56",
    "network_id": "net-1",
    "fixed_ips": [{"ip_address": "10.0.0.5", "cidr": "10.0.0.0/24"}],
    "gateway": "10.0.0.1",
}
GUEST = GuestSpec(
    uuid="0f0c3a9e-1b2c-4d5e-8f90-123456789abc",
    name="vm",
    host="h",
    node="h",
    flavor={"memory_mb": 128, "vcpus": 1},
    network_info=(PORT,),
)


def _netdevs(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "-netdev"]


def test_with_the_data_plane_each_port_is_its_tap_with_the_port_mac(tmp_path: Path) -> None:
    args = argv(tmp_path, GUEST, LaunchOptions(accelerator="tcg", cpu_model="max", dataplane=True))
    assert _netdevs(args) == ["tap,id=net0,ifname=tap5f0c3a9e-1b,script=no,downscript=no"]
    assert "virtio-net-pci,netdev=net0,mac=fa:16:3e:12:34:56,id=nic0" in args


def test_without_it_the_port_gets_its_fixed_ip_from_user_networking(tmp_path: Path) -> None:
    args = argv(tmp_path, GUEST, LaunchOptions(accelerator="tcg", cpu_model="max"))
    (netdev,) = _netdevs(args)
    assert netdev.startswith("user,id=net0,restrict=on,net=10.0.0.0/24")
    assert "dhcpstart=10.0.0.5" in netdev


def test_the_metadata_nic_stays_next_to_the_taps(tmp_path: Path) -> None:
    opts = LaunchOptions(accelerator="tcg", cpu_model="max", dataplane=True, metadata_command="/bin/md")
    netdevs = _netdevs(argv(tmp_path, GUEST, opts))
    assert netdevs[0].startswith("tap,") and netdevs[1].startswith("user,id=metadata,restrict=on")


def test_network_dataplane_setting_off_or_unknown() -> None:
    assert networking.resolve("off") is False
    with pytest.raises(SystemExit, match="auto, on or off"):
        networking.resolve("maybe")
    expected = networking.unavailable_reason() is None
    assert networking.resolve("auto") is expected

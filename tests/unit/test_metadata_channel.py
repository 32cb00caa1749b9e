"""The user-mode metadata channel in a guest's QEMU command line, and the EC2 fields of its documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from novalite.compute.metadata_service import relay_command
from novalite.virt.configdrive import ec2_meta_data
from novalite.virt.driver import GuestSpec
from novalite.virt.qemu.launch import LaunchOptions, argv, config_drive_data

GUEST = GuestSpec(
    uuid="0f0c3a9e-1b2c-4d5e-8f90-123456789abc",
    name="instance-0000002a",
    host="h",
    node="h",
    flavor={"name": "g1.nano", "memory_mb": 128, "vcpus": 1},
    network_info=({"port_id": "p", "fixed_ips": [{"ip_address": "10.0.0.5", "cidr": "10.0.0.0/24"}]},),
    hostname="vm",
)


def test_the_guestfwd_runs_the_relay_with_the_guest_uuid_baked_in(tmp_path: Path) -> None:
    command = relay_command(tmp_path)(GUEST)
    words = command.split()
    assert words[1:4] == ["-I", "-S", str(tmp_path / "metadata" / "relay.py")]
    assert words[4:] == [str(tmp_path / "metadata" / "metadata.sock"), GUEST.uuid]
    opts = LaunchOptions(accelerator="tcg", cpu_model="max", metadata_command=command)
    netdevs = [a for a in argv(tmp_path, GUEST, opts) if a.startswith("user,id=metadata")]
    assert netdevs == [
        f"user,id=metadata,restrict=on,net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:{command}"
    ]


def test_a_data_dir_that_qemu_options_cannot_carry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="comma"):
        relay_command(tmp_path / "a,b")


def test_ec2_fields_come_from_the_instance() -> None:
    md = ec2_meta_data(config_drive_data(GUEST))
    assert md["instance-id"] == "i-0000002a"
    assert md["instance-type"] == "g1.nano"
    assert md["local-ipv4"] == "10.0.0.5"
    assert md["hostname"] == "vm.novalocal"

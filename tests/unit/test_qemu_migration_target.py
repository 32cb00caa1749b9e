"""The live migration's target and the destination's listening settings (virt.qemu.migration):
the port range setting, the target's wire form (TCP or unix, and an older agent's unix-only
form), and the metadata relay a destination puts in place of the source's."""

from __future__ import annotations

import pytest

from novalite.virt.qemu.migration import MigrationTarget, own_metadata_relay, parse_port_range


@pytest.mark.parametrize(
    ("text", "ports"), [("49152-49215", (49152, 49215)), ("5000-5000", (5000, 5000)), (" 1-2 ", (1, 2))]
)
def test_port_range(text: str, ports: tuple[int, int]) -> None:
    assert parse_port_range(text) == ports


@pytest.mark.parametrize("text", ["", "49152", "a-b", "5-4", "0-10", "1-70000", "1-2-3"])
def test_bad_port_range_names_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="live_migration_port_range"):
        parse_port_range(text)


def test_target_round_trip_tcp() -> None:
    target = MigrationTarget(
        "u1", {"type": "inet", "host": "10.0.0.2", "port": "49160"}, "tcp:10.0.0.2:49161", ("drive-root",)
    )
    assert MigrationTarget.from_dict(target.to_dict()) == target
    assert target.to_dict()["nbd_server"] == {"type": "inet", "host": "10.0.0.2", "port": "49160"}


def test_target_of_an_agent_with_unix_sockets_only() -> None:
    old = {"instance_uuid": "u1", "nbd_socket": "/i/u1/nbd.sock", "migrate_uri": "unix:/i/u1/m", "drives": []}
    target = MigrationTarget.from_dict(old)
    assert dict(target.nbd_server) == {"type": "unix", "path": "/i/u1/nbd.sock"}
    assert target.migrate_uri == "unix:/i/u1/m" and target.drives == ()


def test_the_destination_relays_metadata_itself() -> None:
    fwd = "user,id=metadata,restrict=on,net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:"
    argv = ["-netdev", fwd + "/usr/bin/python3 -I -S /a/data/relay.py /a/data/md.sock u1", "-m", "128"]
    mine = own_metadata_relay(argv, "/usr/bin/python3 -I -S /b/data/relay.py /b/data/md.sock u1")
    assert mine[1] == fwd + "/usr/bin/python3 -I -S /b/data/relay.py /b/data/md.sock u1"
    assert mine[0] == "-netdev" and mine[2:] == ["-m", "128"]
    assert own_metadata_relay(argv, None) == argv

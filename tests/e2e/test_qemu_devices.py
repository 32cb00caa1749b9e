"""Volumes and NICs on real guests (issue 17, item 6), through the unmodified ``openstack`` CLI
against ``novalite serve --driver qemu --accelerator tcg --network-dataplane off``: a running guest
of the default image gets a volume hot-plugged (its console reports ``disk added vdb``) and
removed, keeps an attached volume across a hard reboot, gets a port and a network's NIC
hot-plugged (``nic added ethN <the port's MAC> <its fixed IP>``) and removed; a server boots from
a volume made from the default image; a volume in use elsewhere is refused.

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.conftest import RunningServer, start_server
from tests.e2e.test_qemu_servers import (
    BOOT_TIMEOUT,
    SYNC_INTERVAL,
    Cloud,
    _alive,
    _kill_guests,
    _qemu_pid,
    _settled,
    _wait,
    _wait_ready,
)
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

pytestmark = pytest.mark.e2e


class DevicesCloud(Cloud):
    """QEMU user-mode networking for hot-plugged NICs (no bridge or address on this host)."""

    def start(self) -> RunningServer:
        self.server = start_server(
            self.root,
            "--driver",
            "qemu",
            "--accelerator",
            "tcg",
            "--network-dataplane",
            "off",
            env_extra={
                "NOVALITE_GUEST_CACHE": str(guest_cache_dir()),
                "NOVALITE_SYNC_POWER_STATE_INTERVAL": SYNC_INTERVAL,
                "NOVALITE_SHUTDOWN_TIMEOUT": "30",
            },
        )
        return self.server


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    require_qemu()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvd-"))  # short: QEMU's socket paths
    c = DevicesCloud(root)
    try:
        c.start()
        c.cli(
            "flavor", "create", "--ram", "128", "--disk", "1", "--vcpus", "1", "g1.nano",
            cloud="novalite-admin",
        )  # fmt: skip
        yield c
    finally:
        c.stop()
        _kill_guests(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def guest(cloud: Cloud) -> str:
    """A booted guest of the default image, no NIC (config drive)."""
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "dev1",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    _wait_ready(cloud, created["id"], 1)
    return str(created["id"])


def _console_has(cloud: Cloud, uuid: str, pattern: str, *, after: int = 0) -> re.Match[str]:
    """Wait for ``pattern`` on the console after its first ``after`` characters."""
    found: re.Match[str] = _wait(
        f"{pattern!r} on the console of {uuid}",
        lambda: re.search(pattern, cloud.console(uuid)[after:]),
        detail=lambda: cloud.console(uuid)[-3000:],
    )
    return found


def _disks(text: str) -> list[set[str]]:
    """The disks the guest listed at each boot (``novalite-guest: disks sr0 vda ...``)."""
    return [set(m.split()) for m in re.findall(r"novalite-guest: disks ([^\n]*)", text)]


def _volume_status(cloud: Cloud, volume: str, status: str) -> dict[str, Any]:
    shown: dict[str, Any] = _wait(
        f"volume {volume} {status}",
        lambda: (v := cloud.json("volume", "show", volume))["status"] == status and v,
        timeout=BOOT_TIMEOUT,
        detail=lambda: json.dumps(cloud.json("volume", "show", volume)),
    )
    return shown


def _launch_argv(cloud: Cloud, uuid: str) -> str:
    return " ".join(json.loads((cloud.instances / uuid / "launch.json").read_text())["argv"])


def test_volume_is_hot_plugged_and_removed(cloud: Cloud, guest: str) -> None:
    assert _disks(cloud.console(guest)) == [{"vda", "sr0"}]
    volume = cloud.json("volume", "create", "--size", "1", "data1")
    _volume_status(cloud, volume["id"], "available")
    mark = len(cloud.console(guest))
    cloud.cli("server", "add", "volume", guest, volume["id"])
    _volume_status(cloud, volume["id"], "in-use")
    _console_has(cloud, guest, r"novalite-guest: disk added vdb\b", after=mark)
    listed = cloud.json("server", "volume", "list", guest)
    assert [(v["Volume ID"], v["Device"]) for v in listed] == [(volume["id"], "/dev/vdb")]
    shown = cloud.json("volume", "show", volume["id"])
    assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [(guest, "/dev/vdb")]
    assert f"disk-vol-{volume['id'].replace('-', '')[:24]}" in _launch_argv(cloud, guest)

    # kept in the guest's definition: a hard reboot boots with the volume
    cloud.cli("server", "reboot", "--hard", "--wait", guest)
    _settled(cloud, guest, "ACTIVE")
    _wait_ready(cloud, guest, 2)
    assert _disks(cloud.console(guest)[mark:]) == [{"vda", "vdb", "sr0"}]

    mark = len(cloud.console(guest))
    cloud.cli("server", "remove", "volume", guest, volume["id"])
    _volume_status(cloud, volume["id"], "available")
    _console_has(cloud, guest, r"novalite-guest: disk removed vdb\b", after=mark)
    assert cloud.json("server", "volume", "list", guest) == []
    assert "disk-vol-" not in _launch_argv(cloud, guest)
    assert cloud.status(guest) == "ACTIVE"
    cloud.cli("volume", "delete", volume["id"])


def test_port_and_network_nics_are_hot_plugged_and_removed(cloud: Cloud, guest: str) -> None:
    cloud.cli("network", "create", "devnet")
    cloud.cli("subnet", "create", "--network", "devnet", "--subnet-range", "10.77.0.0/24", "devsub")
    port = cloud.json("port", "create", "--network", "devnet", "devport")
    mac, ip = port["mac_address"], port["fixed_ips"][0]["ip_address"]
    mark = len(cloud.console(guest))
    cloud.cli("server", "add", "port", guest, port["id"])
    added = _console_has(cloud, guest, rf"novalite-guest: nic added (eth\d+) {mac} (\S*)", after=mark)
    nic = added.group(1)
    assert added.group(2) == f"{ip}/24"  # DHCP leased the port's fixed IP
    assert cloud.json("port", "show", port["id"])["device_id"] == guest
    assert mac in _launch_argv(cloud, guest)

    mark = len(cloud.console(guest))
    cloud.cli("server", "remove", "port", guest, port["id"])
    _console_has(cloud, guest, rf"novalite-guest: nic removed {nic}\b", after=mark)
    # the user's port stays, unbound, once the host has let it go (a detach is asynchronous)
    _wait("the port unbound", lambda: cloud.json("port", "show", port["id"])["device_id"] == "")
    assert mac not in _launch_argv(cloud, guest)

    mark = len(cloud.console(guest))
    cloud.cli("server", "add", "network", guest, "devnet")
    ports = cloud.json("port", "list", "--server", guest)
    assert len(ports) == 1
    new_mac = ports[0]["MAC Address"]
    added = _console_has(cloud, guest, rf"novalite-guest: nic added (eth\d+) {new_mac} ", after=mark)
    mark = len(cloud.console(guest))
    cloud.cli("server", "remove", "network", guest, "devnet")
    _console_has(cloud, guest, rf"novalite-guest: nic removed {added.group(1)}\b", after=mark)
    _wait("the port Nova made deleted", lambda: cloud.json("port", "list", "--server", guest) == [])
    assert cloud.status(guest) == "ACTIVE"
    cloud.cli("port", "delete", port["id"])


def test_server_boots_from_a_volume_of_the_default_image(cloud: Cloud, guest: str) -> None:
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--boot-from-volume", "1", "--flavor", "g1.nano",
        "--config-drive", "true", "--no-network", "--wait", "bfv1",
    )  # fmt: skip
    uuid = created["id"]
    assert created["status"] == "ACTIVE"
    _wait_ready(cloud, uuid, 1)
    assert _disks(cloud.console(uuid)) == [{"vda", "sr0"}]
    assert not (cloud.instances / uuid / "disk").exists()  # no image overlay: the volume is the root
    listed = cloud.json("server", "volume", "list", uuid)
    assert [v["Device"] for v in listed] == ["/dev/vda"]
    root_volume = listed[0]["Volume ID"]
    assert cloud.json("volume", "show", root_volume)["status"] == "in-use"
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None

    # a volume in use by another server is refused, nothing changes
    other = cloud.json("volume", "create", "--size", "1", "data2")
    _volume_status(cloud, other["id"], "available")
    cloud.cli("server", "add", "volume", guest, other["id"])
    _volume_status(cloud, other["id"], "in-use")
    refused = cloud.cli("server", "add", "volume", uuid, other["id"], check=False)
    assert refused.returncode != 0 and "400" in refused.stderr and "in-use" in refused.stderr
    assert [v["Volume ID"] for v in cloud.json("server", "volume", "list", uuid)] == [root_volume]
    # the root volume of a server booted from it cannot be detached
    refused = cloud.cli("server", "remove", "volume", uuid, root_volume, check=False)
    assert refused.returncode != 0 and "400" in refused.stderr and "root device" in refused.stderr
    cloud.cli("server", "remove", "volume", guest, other["id"])
    _volume_status(cloud, other["id"], "available")
    cloud.cli("volume", "delete", other["id"])

    cloud.cli("server", "delete", "--wait", uuid)
    assert not _alive(pid)
    assert not (cloud.instances / uuid).exists()
    # created by the boot without delete_on_termination (Nova's default): it stays, available
    assert _volume_status(cloud, root_volume, "available")["attachments"] == []
    cloud.cli("volume", "delete", root_volume)

"""Rescue, unrescue and trigger crash dump of a real guest, end to end (issue 17 item 6):
``novalite serve --driver qemu --accelerator tcg`` and the unmodified ``openstack`` CLI.

The default guest prints ``novalite-guest: disks ...`` and its ready line at each boot: in rescue
it boots again from the rescue image with its own disk as the second disk (``vdb``); after
unrescue it boots once more with its own disk only; an NMI makes its kernel print "NMI received".

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

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.e2e.test_qemu_servers import BOOT_TIMEOUT, Cloud, _alive, _kill_guests, _qemu_pid, _settled, _wait
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    require_qemu()
    try:
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvr-"))  # short: QEMU's socket paths
    c = Cloud(root)
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


def _boots(cloud: Cloud, uuid: str) -> list[str]:
    """The ``disks`` line of each boot that reached its ready line, in order."""
    console = cloud.console(uuid)
    disks = re.findall(r"novalite-guest: disks ([^\r\n]*)", console)
    return disks[: console.count(f"novalite-guest ready {uuid}")]


def _wait_boots(cloud: Cloud, uuid: str, count: int) -> list[str]:
    found: list[str] = _wait(
        f"boot #{count} of {uuid} (ready line)",
        lambda: (lambda b: b if len(b) >= count else None)(_boots(cloud, uuid)),
        timeout=BOOT_TIMEOUT,
        detail=lambda: cloud.console(uuid)[-3000:],
    )
    return found


def test_rescue_boots_the_rescue_image_with_the_own_disk_second_then_unrescue(cloud: Cloud) -> None:
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "r1",
    )  # fmt: skip
    uuid = created["id"]
    d = cloud.instances / uuid
    first = _wait_boots(cloud, uuid, 1)[0].split()
    assert "vda" in first and "vdb" not in first

    cloud.cli("server", "rescue", uuid)
    shown = _settled(cloud, uuid, "RESCUE")
    assert shown["OS-EXT-STS:vm_state"] == "rescued" and shown["OS-EXT-STS:power_state"] in (1, "Running")
    boots = _wait_boots(cloud, uuid, 2)
    assert {"vda", "vdb"} <= set(boots[1].split())  # booted from the rescue disk; its own disk is vdb
    assert (d / "disk.rescue").is_file() and (d / "disk").is_file()
    assert _qemu_pid(cloud, uuid) is not None

    cloud.cli("server", "unrescue", uuid)
    _settled(cloud, uuid, "ACTIVE")
    boots = _wait_boots(cloud, uuid, 3)
    assert "vda" in boots[2].split() and "vdb" not in boots[2].split()  # its own disk only
    assert not (d / "disk.rescue").exists()  # the rescue overlay is gone
    events = [e["Action"] for e in cloud.json("server", "event", "list", uuid)]
    assert events[:2] == ["unrescue", "rescue"]

    # trigger crash dump (2.17): an NMI the guest's kernel reports on the console
    cloud.cli("--os-compute-api-version", "2.17", "server", "dump", "create", uuid)
    _wait(
        "the NMI on the console",
        lambda: "NMI received" in cloud.console(uuid),
        timeout=120,
        detail=lambda: cloud.console(uuid)[-2000:],
    )
    assert cloud.status(uuid) == "ACTIVE"
    dump = cloud.json("server", "event", "list", uuid)[0]
    assert dump["Action"] == "trigger_crash_dump"

    # a rescued server deleted: no QEMU, no rescue overlay, no instance directory left
    cloud.cli("server", "rescue", uuid)
    _settled(cloud, uuid, "RESCUE")
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None and (d / "disk.rescue").is_file()
    cloud.cli("server", "delete", "--wait", uuid)
    assert not d.exists()
    assert not _alive(pid)


def test_stable_device_rescue_from_another_image(cloud: Cloud) -> None:
    """A rescue image with hw_rescue_device/hw_rescue_bus: the guest keeps its devices and the
    rescue disk comes last, booted first; the rescue image is fetched into the host's cache."""
    built = build_guest_image(guest_cache_dir())
    image = cloud.json(
        "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", str(built.path),
        "--property", "hw_rescue_device=disk", "--property", "hw_rescue_bus=virtio", "rescue-img",
    )  # fmt: skip
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "r3",
    )  # fmt: skip
    uuid = created["id"]
    _wait_boots(cloud, uuid, 1)
    cloud.cli("server", "rescue", "--image", "rescue-img", uuid)
    _settled(cloud, uuid, "RESCUE")
    boots = _wait_boots(cloud, uuid, 2)
    assert {"vda", "vdb"} <= set(boots[1].split())
    argv = json.loads((cloud.instances / uuid / "launch.json").read_text())["argv"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    disks = [dev for dev in devices if "drive=drive-" in dev]
    assert disks[-1].startswith("virtio-blk-pci,drive=drive-rescue") and disks[-1].endswith("bootindex=1")
    assert not any("bootindex" in dev for dev in disks[:-1])  # its own disks first, as they were
    cloud.cli("server", "unrescue", uuid)
    _settled(cloud, uuid, "ACTIVE")
    assert _wait_boots(cloud, uuid, 3)[2].split().count("vdb") == 0
    cloud.cli("server", "delete", "--wait", uuid)
    cloud.cli("image", "delete", image["id"])


def test_crash_dump_of_a_stopped_server_is_a_conflict(cloud: Cloud) -> None:
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--no-network",
        "--wait", "r2",
    )  # fmt: skip
    uuid = created["id"]
    cloud.cli("server", "stop", uuid)
    _settled(cloud, uuid, "SHUTOFF")
    proc = cloud.cli("--os-compute-api-version", "2.17", "server", "dump", "create", uuid, check=False)
    assert proc.returncode != 0 and "409" in proc.stderr + proc.stdout
    cloud.cli("server", "delete", "--wait", uuid)
    assert not (cloud.instances / uuid).exists()

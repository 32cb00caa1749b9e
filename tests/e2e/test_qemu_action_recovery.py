"""A real guest's action interrupted by a ``kill -9`` of the service does not leave the server in its
task state: the restarted agent settles it from what the guest really is (compute/action_recovery.py).

One guest of the default image, ``novalite serve --driver qemu --accelerator tcg`` and the
``openstack`` CLI: a stop whose service is killed right after the API accepted it ends SHUTOFF with
its QEMU gone; a reboot whose message was lost with the service (task state set, nothing queued)
ends ACTIVE with the guest booted again (its console prints a new ready line).

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.e2e.test_qemu_servers import (
    Cloud,
    _alive,
    _kill_guests,
    _qemu_pid,
    _ready_count,
    _settled,
    _wait,
    _wait_ready,
)
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

pytestmark = pytest.mark.e2e


@pytest.fixture
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
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "g1.nano",
            cloud="novalite-admin",
        )
        yield c
    finally:
        c.stop()
        _kill_guests(root)
        shutil.rmtree(root, ignore_errors=True)


def _kill_service(cloud: Cloud) -> None:
    """``kill -9`` of the engine process (its compute agent with it), then of the API process:
    the guests keep running."""
    assert cloud.server is not None
    api = psutil.Process(cloud.server.process.pid)
    engines = [p for p in api.children() if "engine_child" in " ".join(p.cmdline())]
    for engine in engines:
        engine.kill()
    cloud.server.process.kill()
    cloud.server.process.wait(30)
    psutil.wait_procs(engines, timeout=30)


def _row(cloud: Cloud, uuid: str) -> tuple[str, str | None]:
    with sqlite3.connect(cloud.root / "data" / "novalite.db") as db:
        vm_state, task = db.execute(
            "SELECT vm_state, task_state FROM instances WHERE uuid = ?", (uuid,)
        ).fetchone()
    return str(vm_state), task


def _set(cloud: Cloud, uuid: str, vm_state: str, task: str) -> None:
    """What the API writes before it casts the action (the cast then lost with the service)."""
    with sqlite3.connect(cloud.root / "data" / "novalite.db") as db:
        db.execute("UPDATE instances SET vm_state = ?, task_state = ? WHERE uuid = ?", (vm_state, task, uuid))


def _log(cloud: Cloud) -> str:
    assert cloud.server is not None
    return cloud.server.log.read_text(errors="replace")


def test_actions_interrupted_by_a_kill_settle_as_the_guest_is(cloud: Cloud) -> None:
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "vm1",
    )  # fmt: skip
    uuid = created["id"]
    _wait_ready(cloud, uuid, 1)
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None

    # a stop, the service killed while its agent waits for the guest to power off
    cloud.cli("server", "stop", uuid)
    _kill_service(cloud)
    if _row(cloud, uuid)[1] is None:  # the stop was quicker than the kill: lose it anyway
        _set(cloud, uuid, "active", "powering-off")
    assert _row(cloud, uuid)[1] == "powering-off"
    cloud.start()
    shown = _settled(cloud, uuid, "SHUTOFF")
    assert shown["OS-EXT-STS:power_state"] in (4, "Shutdown")
    _wait("QEMU gone after the settled stop", lambda: not _alive(pid), timeout=60)
    assert "powering-off -> stopped" in _log(cloud)
    events = cloud.json("server", "event", "list", uuid)
    assert events[0]["Action"] == "stop"

    # a hard reboot accepted, its message lost with the service: the guest is off -> rebooted
    before = _ready_count(cloud, uuid)
    _kill_service(cloud)
    _set(cloud, uuid, "stopped", "rebooting_hard")
    cloud.start()
    _settled(cloud, uuid, "ACTIVE")
    _wait_ready(cloud, uuid, before + 1)
    assert _qemu_pid(cloud, uuid) is not None
    assert "rebooting_hard -> active" in _log(cloud)

    cloud.cli("server", "delete", "--wait", uuid)
    assert not (cloud.instances / uuid).exists()

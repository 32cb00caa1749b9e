"""Real guests end to end (issue 17): ``novalite serve --driver qemu --accelerator tcg`` and the
unmodified ``openstack`` CLI. One guest of the default image (``novalite-guest``) goes through
boot (config drive: hostname, key, user_data), stop/start, hard reboot, pause/unpause,
suspend/resume, a ``kill -9`` of its QEMU, a restart of the service and delete.

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from novalite.guest.builder import GuestBuildError, build_guest_image
from tests.conftest import RunningServer, start_server, stop_server
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

pytestmark = pytest.mark.e2e

BOOT_TIMEOUT = 180.0  # TCG on two busy cores; a bound, not a target
SYNC_INTERVAL = "1"


class Cloud:
    """The running service (replaced when the test restarts it) and where its files are."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: RunningServer | None = None

    def start(self) -> RunningServer:
        self.server = start_server(
            self.root,
            "--driver",
            "qemu",
            "--accelerator",
            "tcg",
            env_extra={
                "NOVALITE_GUEST_CACHE": str(guest_cache_dir()),
                "NOVALITE_SYNC_POWER_STATE_INTERVAL": SYNC_INTERVAL,
                "NOVALITE_SHUTDOWN_TIMEOUT": "30",
            },
        )
        return self.server

    def stop(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            stop_server(self.server)

    @property
    def instances(self) -> Path:
        return self.root / "data" / "instances"

    def cli(
        self, *args: str, check: bool = True, cloud: str = "novalite"
    ) -> subprocess.CompletedProcess[str]:
        assert self.server is not None
        return self.server.openstack(*args, check=check, cloud=cloud)

    def json(self, *args: str, cloud: str = "novalite") -> Any:
        return json.loads(self.cli(*args, "-f", "json", cloud=cloud).stdout)

    def status(self, server: str) -> str:
        return str(self.json("server", "show", server)["status"])

    def console(self, server: str) -> str:
        return self.cli("console", "log", "show", server).stdout


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _qemu_pid(cloud: Cloud, uuid: str) -> int | None:
    try:
        pid = int((cloud.instances / uuid / "qemu.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _wait(
    what: str, check: Callable[[], Any], timeout: float = BOOT_TIMEOUT, detail: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s\n{detail()}")
        time.sleep(1)


def _kill_guests(root: Path) -> None:
    for pid_file in root.glob("data/instances/*/qemu.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            if f"guest={pid_file.parent.name}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    require_qemu()
    try:  # built (or found) before serve starts, which would build it inside its start-up wait
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvq-"))  # short: QEMU's socket paths
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


@pytest.fixture(scope="module")
def guest(cloud: Cloud) -> dict[str, str]:
    """A booted guest of the default image: key pair k, user_data printing a marker, config drive."""
    cloud.cli("keypair", "create", "k")  # prints the private key
    key = cloud.cli("keypair", "show", "--public-key", "k").stdout.split()[1]
    fingerprint = "SHA256:" + base64.b64encode(
        hashlib.sha256(base64.b64decode(key)).digest()
    ).decode().rstrip("=")
    user_data = cloud.root / "user-data.sh"
    user_data.write_text('#!/bin/sh\necho "marker-$(hostname)"\n')
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--key-name", "k",
        "--user-data", str(user_data), "--config-drive", "true", "--no-network", "--wait", "vm1",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"
    return {"id": created["id"], "fingerprint": fingerprint}


def test_this_machine_is_a_qemu_hypervisor_with_its_real_resources(cloud: Cloud) -> None:
    hypervisors = cloud.json("hypervisor", "list", cloud="novalite-admin")
    assert [(h["Hypervisor Hostname"], h["Hypervisor Type"]) for h in hypervisors] == [
        (socket.gethostname(), "QEMU")
    ]  # no simulated hosts unless --fake-hosts asks for them
    providers = cloud.json("resource", "provider", "list", cloud="novalite-admin")
    assert [p["name"] for p in providers] == [socket.gethostname()]
    inventory = {
        row["resource_class"]: row
        for row in cloud.json(
            "resource", "provider", "inventory", "list", providers[0]["uuid"], cloud="novalite-admin"
        )
    }
    mem_total = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    assert inventory["VCPU"]["total"] == os.cpu_count()
    assert inventory["MEMORY_MB"]["total"] == mem_total // 1024
    assert inventory["MEMORY_MB"]["reserved"] == 512
    free_gb = shutil.disk_usage(cloud.instances).free // 1024**3
    assert abs(inventory["DISK_GB"]["total"] - free_gb) <= 1


def _ready_count(cloud: Cloud, uuid: str) -> int:
    return cloud.console(uuid).count(f"novalite-guest ready {uuid}")


def _wait_ready(cloud: Cloud, uuid: str, at_least: int) -> None:
    _wait(
        f"ready line #{at_least} of {uuid}",
        lambda: _ready_count(cloud, uuid) >= at_least,
        detail=lambda: cloud.console(uuid)[-3000:],
    )


def test_guest_boots_with_config_drive_key_and_user_data(cloud: Cloud, guest: dict[str, str]) -> None:
    uuid = guest["id"]
    _wait_ready(cloud, uuid, 1)
    console = cloud.console(uuid)
    assert f"uuid={uuid} hostname=vm1 source=config-drive" in console
    assert "marker-vm1" in console
    assert f"fingerprint={guest['fingerprint']}" in console
    assert _qemu_pid(cloud, uuid) is not None
    diagnostics = cloud.json("server", "show", "--diagnostics", uuid, cloud="novalite-admin")
    assert diagnostics["driver"] == "qemu" and diagnostics["state"] == "running"
    # the console length is honoured (last N lines)
    last = cloud.cli("console", "log", "show", "--lines", "1", uuid).stdout.strip().splitlines()
    assert len(last) == 1


def _settled(cloud: Cloud, server: str, status: str) -> dict[str, Any]:
    """Poll as ``openstack server ... --wait`` and Tempest do: the status, with no task in progress."""

    def shown() -> dict[str, Any] | None:
        s = cloud.json("server", "show", server)
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    found: dict[str, Any] = _wait(f"{server} {status} with no task", shown, timeout=BOOT_TIMEOUT)
    return found


def _qmp_status(cloud: Cloud, uuid: str) -> str:
    """The guest's run state as its QEMU tells it (query-status on the QMP socket)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(cloud.instances / uuid / "qmp.sock"))
        reader = sock.makefile("rb")
        reader.readline()  # the greeting
        for command in ("qmp_capabilities", "query-status"):
            sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
            while True:
                answer = json.loads(reader.readline())
                if "return" in answer or "error" in answer:
                    break
        return str(answer["return"]["status"])


def test_power_actions_act_on_the_guest(cloud: Cloud, guest: dict[str, str]) -> None:
    """Each action goes through the host's agent: once the server shows its new status with no
    task state, the guest has already done it (no wait for a sync)."""
    uuid = guest["id"]
    _wait_ready(cloud, uuid, 1)
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None
    cloud.cli("server", "stop", uuid)
    assert _settled(cloud, uuid, "SHUTOFF")["OS-EXT-STS:power_state"] in (4, "Shutdown")
    assert not _alive(pid)
    cloud.cli("server", "start", uuid)
    _settled(cloud, uuid, "ACTIVE")
    _wait_ready(cloud, uuid, 2)
    cloud.cli("server", "reboot", "--hard", "--wait", uuid)
    _settled(cloud, uuid, "ACTIVE")
    _wait_ready(cloud, uuid, 3)
    events = cloud.json("server", "event", "list", uuid)
    assert [e["Action"] for e in events][:3] == ["reboot", "start", "stop"]
    cloud.cli("server", "pause", uuid)
    assert _settled(cloud, uuid, "PAUSED")["OS-EXT-STS:power_state"] in (3, "Paused")
    assert _qmp_status(cloud, uuid) == "paused"
    cloud.cli("server", "unpause", uuid)
    assert _settled(cloud, uuid, "ACTIVE")["OS-EXT-STS:power_state"] in (1, "Running")
    assert _qmp_status(cloud, uuid) == "running"
    running = _qemu_pid(cloud, uuid)
    assert running is not None
    cloud.cli("server", "suspend", uuid)
    _settled(cloud, uuid, "SUSPENDED")
    assert not _alive(running) and _qemu_pid(cloud, uuid) is None
    assert (cloud.instances / uuid / "memory.state").is_file()
    cloud.cli("server", "resume", uuid)
    _settled(cloud, uuid, "ACTIVE")
    assert _qemu_pid(cloud, uuid) is not None
    assert not (cloud.instances / uuid / "memory.state").exists()
    assert _ready_count(cloud, uuid) == 3  # resumed where it was: no new boot


def test_rebuild_boots_a_new_disk_from_the_image(cloud: Cloud, guest: dict[str, str]) -> None:
    uuid = guest["id"]
    old_pid = _wait("a running guest", lambda: _qemu_pid(cloud, uuid), timeout=60)
    marker = cloud.instances / uuid / "left-by-the-test"  # gone with the old instance directory
    marker.write_text("old")
    cloud.cli("server", "rebuild", "--image", "novalite-guest", "--wait", uuid)
    _wait("a new QEMU after rebuild", lambda: (_qemu_pid(cloud, uuid) or old_pid) != old_pid, timeout=120)
    assert not marker.exists() and (cloud.instances / uuid / "disk").is_file()  # a new overlay
    _wait_ready(cloud, uuid, 1)
    assert "marker-vm1" in cloud.console(uuid)
    assert cloud.status(uuid) == "ACTIVE"


def test_snapshot_is_an_image_that_boots(cloud: Cloud, guest: dict[str, str]) -> None:
    image = cloud.json("server", "image", "create", "--name", "snap", "--wait", guest["id"])
    shown = cloud.json("image", "show", image["id"])
    assert shown["status"] == "active" and shown["disk_format"] == "qcow2"
    assert cloud.status(guest["id"]) == "ACTIVE" and _qemu_pid(cloud, guest["id"]) is not None
    second = cloud.json(
        "server", "create", "--image", "snap", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "vm2",
    )  # fmt: skip
    _wait_ready(cloud, second["id"], 1)
    assert "hostname=vm2 source=config-drive" in cloud.console(second["id"])
    cloud.cli("image", "delete", image["id"])  # the host keeps its cached copy for vm2
    guest["second"] = second["id"]  # the restart test deletes it while the service is down


def test_killed_guest_is_shutoff_and_a_restart_keeps_guests(cloud: Cloud, guest: dict[str, str]) -> None:
    uuid = guest["id"]
    pid = _wait("a running guest", lambda: _qemu_pid(cloud, uuid), timeout=60)
    os.kill(pid, signal.SIGKILL)
    _wait("SHUTOFF after kill -9", lambda: cloud.status(uuid) == "SHUTOFF", timeout=60)
    actions = [a["Action"] for a in cloud.json("server", "event", "list", uuid)]
    assert actions[0] == "stop"  # the sync records the stop, as Nova's _sync_power_states does
    cloud.cli("server", "start", uuid)
    before = _ready_count(cloud, uuid)
    _wait_ready(cloud, uuid, before + 1)
    pid = _qemu_pid(cloud, uuid)
    assert pid is not None
    second = guest.get("second")
    second_pid = _qemu_pid(cloud, second) if second else None
    cloud.stop()  # the guest is not a child that dies with the service
    assert _alive(pid)
    if second:  # deleted while no compute agent ran (as another API process on the database would)
        with sqlite3.connect(cloud.root / "data" / "novalite.db") as db:
            db.execute(
                "UPDATE instances SET deleted = 1, deleted_at = CURRENT_TIMESTAMP WHERE uuid = ?", (second,)
            )
    cloud.start()
    if second:
        assert second_pid is not None
        _wait("the deleted server's guest destroyed at start", lambda: not _alive(second_pid), timeout=60)
        assert not (cloud.instances / second).exists()
    time.sleep(3)  # a few sync intervals
    assert cloud.status(uuid) == "ACTIVE" and _qemu_pid(cloud, uuid) == pid
    cloud.cli("server", "stop", uuid)
    _wait("QEMU gone after stop (restarted service)", lambda: not _alive(pid), timeout=60)
    cloud.cli("server", "delete", "--wait", uuid)
    assert not (cloud.instances / uuid).exists()
    assert not _alive(pid)


def test_image_data_not_matching_its_checksum_is_an_error(cloud: Cloud) -> None:
    data = cloud.root / "junk.raw"
    data.write_bytes(os.urandom(1 << 20))
    image = cloud.json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare",
        "--file", str(data), "tampered",
    )  # fmt: skip
    (cloud.root / "data" / "images" / image["id"]).write_bytes(os.urandom(1 << 20))  # changed behind Glance
    proc = cloud.cli(
        "server", "create", "--image", "tampered", "--flavor", "g1.nano", "--no-network", "--wait", "bad",
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    shown = cloud.json("server", "show", "bad")
    assert shown["status"] == "ERROR"
    assert "does not match its checksum" in json.dumps(shown["fault"])
    events = cloud.json("server", "event", "list", "bad")
    assert [e["Action"] for e in events] == ["create"]  # one attempt: no reschedule
    cloud.cli("server", "delete", "--wait", "bad")
    assert not any(p.name == shown["id"] for p in cloud.instances.iterdir())


def test_driver_qemu_without_qemu_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    exe = str(Path(sys.executable).parent / "novalite")
    proc = subprocess.run(
        [exe, "serve", "--driver", "qemu", "--data-dir", str(tmp_path / "data"), "--no-clouds-yaml"],
        env={**os.environ, "PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "qemu-system-x86" in proc.stderr and "qemu-utils" in proc.stderr
    assert "scripts/install-qemu.sh" in proc.stderr
    assert not (tmp_path / "data" / "novalite.db").exists()
    assert re.search(r"qemu-system-x86_64 \(Debian package qemu-system-x86\)", proc.stderr)

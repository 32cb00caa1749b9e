"""QemuDriver runs real guests (QEMU TCG) and obeys every action it offers, driven directly.

No API here: the tests build ``GuestSpec`` values as the compute agent will, and read
what a user would see through the driver (power state, console output) and on the host
(processes, files). One guest goes through most actions in one test (each boot costs
~4 s of TCG on these machines). Every QEMU started is killed whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from novalite.domain.states import PowerState
from novalite.guest.builder import GuestImage
from novalite.virt.driver import BuildAbort, GuestSpec
from novalite.virt.qemu import QemuDriver, QemuNotInstalled, host_resources
from novalite.virt.qemu.accel import resolve_accelerator
from novalite.virt.qemu.images import file_store_fetch
from novalite.virt.qemu.launch import prepare_disks
from novalite.virt.qemu.qmp import QMPClient, QMPError
from tests.guest.conftest import BOOT_TIMEOUT, require_qemu
from tests.guest.test_guest_image import public_key

READY = "novalite-guest ready"
# user_data: a marker with the hostname, then a counter that keeps printing: a guest that
# resumes continues counting, a guest that boots again starts over.
USER_DATA = (
    b"#!/bin/sh\n"
    b'echo "user-data-marker host=$(hostname)"\n'
    b'( n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 1; done ) &\n'
)
IMAGE_ID = "novalite-guest.qcow2"
FLAVOR = {"memory_mb": 128, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0, "swap": 0}


@pytest.fixture(scope="module")
def image_meta(guest_image: GuestImage) -> dict[str, Any]:
    digest = hashlib.sha512(guest_image.path.read_bytes()).hexdigest()
    return {"id": IMAGE_ID, "disk_format": "qcow2", "os_hash_algo": "sha512", "os_hash_value": digest}


@pytest.fixture
def instances(guest_image: GuestImage) -> Iterator[Path]:
    """An instances_path (short: QMP sockets); every QEMU under it is killed at the end."""
    root = Path(tempfile.mkdtemp(prefix="nlq-"))
    try:
        yield root / "instances"
    finally:
        for pidfile in root.glob("instances/*/qemu.pid"):
            try:
                pid = int(pidfile.read_text())
                if f"guest={pidfile.parent.name}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(root, ignore_errors=True)


def make_driver(instances: Path, guest_image: GuestImage, **kwargs: Any) -> QemuDriver:
    # the image store is the guest cache directory: image id = the image's file name
    fetch = file_store_fetch(guest_image.path.parent)
    return QemuDriver(instances, fetch=fetch, accelerator="tcg", **kwargs)


def spec(image: dict[str, Any], **kwargs: Any) -> GuestSpec:
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "name": "instance-00000001",
        "host": "compute-1",
        "node": "compute-1",
        "flavor": FLAVOR,
        "image": image,
    }
    return GuestSpec(**(values | kwargs))


def wait_console(driver: QemuDriver, guest: GuestSpec, pattern: str, count: int = 1) -> str:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        text = driver.console_output(guest).replace("\r\n", "\n")  # a serial tty writes CRLF
        if len(re.findall(pattern, text)) >= count:
            return text
        if time.monotonic() > deadline:
            pytest.fail(
                f"{count} x {pattern!r} not on the console within {BOOT_TIMEOUT:.0f}s:\n{text[-4000:]}"
            )
        time.sleep(0.2)


def ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)", text, re.M)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_guest_lifecycle(instances, guest_image, image_meta):
    require_qemu()
    driver = make_driver(instances, guest_image, shutdown_timeout=60)
    key, _ = public_key("alice@laptop")
    guest = spec(
        image_meta,
        config_drive=True,
        hostname="web-1",
        display_name="web 1",
        user_data=USER_DATA,
        key_pairs=(("alice", "ssh", key),),
        network_info=({"fixed_ips": [{"ip_address": "10.1.2.7", "cidr": "10.1.2.0/24"}]},),
    )

    # spawn: boots from its overlay, reads its config drive, runs its user_data
    driver.spawn(guest)
    assert driver.get_info(guest).state == PowerState.RUNNING
    text = wait_console(driver, guest, READY)
    assert f"{READY} {guest.uuid}" in text
    assert f"novalite-guest: uuid={guest.uuid} hostname=web-1 source=config-drive" in text
    assert "novalite-guest: key=alice@laptop type=ssh-ed25519" in text
    assert "user-data-marker host=web-1" in text
    assert "novalite-guest: net eth0 10.1.2.7/24" in text  # the port's fixed IP
    assert driver.console_output(guest, length=1).count("\n") <= 1
    d = instances / guest.uuid
    assert mode(instances) == 0o700 and mode(d) == 0o700
    assert all(mode(d / name) == 0o600 for name in ("disk", "disk.config", "console.log", "launch.json"))
    with QMPClient(d / "qmp.sock") as qmp, pytest.raises(QMPError) as err:
        qmp.execute("no-such-command")
    assert err.value.error_class == "CommandNotFound"

    # a second driver on the same instances_path (the service restarted) finds the guest
    again = make_driver(instances, guest_image, shutdown_timeout=60)
    running = again.list_running()
    assert list(running) == [guest.uuid]
    assert f"guest={guest.uuid}" in Path(f"/proc/{running[guest.uuid]}/cmdline").read_text()

    again.pause(guest)
    assert again.get_info(guest).state == PowerState.PAUSED
    again.unpause(guest)
    assert again.get_info(guest).state == PowerState.RUNNING

    # suspend: memory saved, no process; resume: the guest continues (no boot, counter goes on)
    wait_console(driver, guest, r"(?m)^tick 2$")
    again.suspend(guest)
    assert again.get_info(guest).state == PowerState.SUSPENDED
    assert again.list_running() == {}
    assert mode(d / "memory.state") == 0o600
    before = ticks(driver.console_output(guest))
    again.resume(guest)
    assert again.get_info(guest).state == PowerState.RUNNING
    text = wait_console(driver, guest, rf"(?m)^tick {before[-1] + 2}$")
    assert text.count(READY) == 1, "the guest booted again instead of resuming"
    assert ticks(text) == list(range(1, len(ticks(text)) + 1))
    assert not (d / "memory.state").exists()
    diag = again.diagnostics(guest)
    assert diag["state"] == "running" and diag["config_drive"] is True and diag["num_cpus"] == 1

    # hard reboot: a new boot of the same disk
    again.reboot(guest, hard=True)
    wait_console(driver, guest, READY, count=2)

    # stop: ACPI power button, the guest powers off, no process left
    again.power_off(guest)
    assert again.get_info(guest).state == PowerState.SHUTDOWN
    assert again.list_running() == {}
    assert "novalite-guest: power button, powering off" in driver.console_output(guest)

    # start: boots again, same disk and config drive
    again.power_on(guest)
    text = wait_console(driver, guest, READY, count=3)
    assert text.count(f"novalite-guest: uuid={guest.uuid} hostname=web-1 source=config-drive") == 3

    # soft reboot: the guest powers itself off on the ACPI button, then boots again
    again.reboot(guest)
    text = wait_console(driver, guest, READY, count=4)
    assert text.count("novalite-guest: power button, powering off") == 2

    # QEMU killed from outside: the guest shows SHUTDOWN
    os.kill(again.list_running()[guest.uuid], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while again.get_info(guest).state != PowerState.SHUTDOWN and time.monotonic() < deadline:
        time.sleep(0.1)
    assert again.get_info(guest).state == PowerState.SHUTDOWN

    # destroy: nothing left; a second destroy is a no-op
    again.power_on(guest)
    pid = again.list_running()[guest.uuid]
    again.destroy(guest)
    assert not Path(f"/proc/{pid}").exists() or f"guest={guest.uuid}" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_text(errors="replace")
    assert not d.exists()
    assert again.get_info(guest).state == PowerState.NOSTATE
    again.destroy(guest)
    assert [p.name for p in instances.iterdir()] == ["_base"]


def test_image_with_wrong_checksum_aborts_and_leaves_nothing(instances, guest_image, image_meta):
    require_qemu()
    driver = make_driver(instances, guest_image)
    guest = spec(image_meta | {"os_hash_value": "0" * 128})
    with pytest.raises(BuildAbort) as err:
        driver.spawn(guest)
    assert "checksum" in str(err.value)
    assert [p.name for p in instances.iterdir()] == ["_base"]
    assert [p for p in (instances / "_base").iterdir() if not p.name.endswith(".lock")] == []
    assert driver.list_running() == {}

    md5_guest = spec({"id": IMAGE_ID, "disk_format": "qcow2", "checksum": "0" * 32})
    with pytest.raises(BuildAbort, match="checksum"):
        driver.spawn(md5_guest)
    with pytest.raises(BuildAbort, match="no data"):
        driver.spawn(spec({"id": "no-such-image", "disk_format": "qcow2"}))
    assert [p.name for p in instances.iterdir()] == ["_base"]


def test_image_cache_downloads_once_and_prunes_unused_bases(instances, guest_image, image_meta):
    require_qemu()
    fetched: list[str] = []
    plain = make_driver(instances, guest_image)
    original_fetch = plain.images.fetch

    def counting_fetch(image_id: str) -> Iterable[bytes]:
        fetched.append(image_id)
        return original_fetch(image_id)

    plain.images.fetch = counting_fetch
    with ThreadPoolExecutor(3) as pool:  # concurrent spawns of one image download it once
        first, *others = pool.map(lambda _: plain.images.ensure(image_meta), range(3))
    assert fetched == [IMAGE_ID] and all(o.path == first.path for o in others)
    assert mode(first.path) == 0o600

    # an overlay refers to the base: kept even when old
    guest = spec(image_meta, flavor=FLAVOR | {"root_gb": 2})
    d = plain.instance_dir(guest)
    d.mkdir(mode=0o700)
    prepare_disks(d, guest, first)
    assert plain.prune_images(0) == []
    shutil.rmtree(d)
    assert plain.prune_images(3600) == []  # unused but recently used
    assert plain.prune_images(0) == [first.path]
    assert not first.path.exists()


def test_images_are_checked_before_use(instances, tmp_path):
    """A too-big image, a qcow2 pointing at a host file, data that is not its disk_format: refused."""
    require_qemu()
    big, backed, raw = tmp_path / "big.qcow2", tmp_path / "backed.qcow2", tmp_path / "raw.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", str(backed), "1M"],
        check=True,
    )
    raw.write_bytes(b"\0" * 1024 * 1024)
    files = {"big": big, "backed": backed, "raw": raw}
    driver = QemuDriver(
        instances, fetch=lambda image_id: iter([files[image_id].read_bytes()]), accelerator="tcg"
    )

    with pytest.raises(BuildAbort, match="Flavor's disk is too small"):
        driver.spawn(spec({"id": "big", "disk_format": "qcow2"}, flavor=FLAVOR | {"root_gb": 1}))
    with pytest.raises(BuildAbort, match="backing file"):
        driver.spawn(spec({"id": "backed", "disk_format": "qcow2"}))
    with pytest.raises(BuildAbort, match="does not match its disk_format"):
        driver.spawn(spec({"id": "raw", "disk_format": "qcow2"}))
    assert [p.name for p in instances.iterdir()] == ["_base"]
    assert driver.list_running() == {}

    base = driver.images.ensure({"id": "raw", "disk_format": "raw"})  # raw data becomes a qcow2 base
    info = subprocess.run(
        ["qemu-img", "info", "--output", "json", str(base.path)], capture_output=True, check=True
    )
    assert json.loads(info.stdout)["format"] == "qcow2" and base.virtual_size == 1024 * 1024


def test_missing_qemu_is_named_with_its_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QemuNotInstalled) as err:
        QemuDriver(tmp_path / "instances", fetch=lambda image_id: iter(()), accelerator="tcg")
    assert "qemu-system-x86" in str(err.value) and "qemu-utils" in str(err.value)


def test_auto_accelerator_decides_without_hanging():
    require_qemu()
    chosen = resolve_accelerator("auto", cpu_model="max", timeout=5)
    assert chosen in ("kvm", "tcg")
    if chosen == "tcg":  # e.g. the CI machines, where /dev/kvm exists but does not work
        with pytest.raises(ValueError, match="does not run under KVM"):
            resolve_accelerator("kvm", cpu_model="max", timeout=5)
    with pytest.raises(ValueError):
        resolve_accelerator("xen", cpu_model="max")


def test_host_resources_are_the_real_host(tmp_path):
    vcpus, memory_mb, disk_gb = host_resources(tmp_path / "not-yet")
    assert vcpus == os.cpu_count()
    assert memory_mb > 0 and disk_gb >= 0


def test_console_log_is_bounded(instances, guest_image, image_meta):
    require_qemu()
    driver = make_driver(instances, guest_image, console_limit=4096)
    guest = spec(image_meta)
    log = driver.instance_dir(guest) / "console.log"
    log.parent.mkdir(mode=0o700, parents=True)
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(5000)))
    text = driver.console_output(guest)
    assert text.endswith("line 4999\n") and len(text) <= 4096
    assert log.stat().st_size <= 4096  # the file itself was cut down to the last 4 KiB
    assert driver.console_output(guest, length=2) == "line 4998\nline 4999\n"
    assert driver.console_output(guest, length=0) == ""

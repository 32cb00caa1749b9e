"""Real guests' consoles and kernel/ramdisk images end to end (issue 17, items 2 and 6), with
``novalite serve --driver qemu --accelerator tcg`` and the unmodified ``openstack`` CLI:

* ``openstack console url show --serial`` gives a ws:// URL; a websocket client on it reaches the
  guest's first serial port both ways (a line typed on it comes back as the default guest's
  ``novalite-guest: console read: <line>``) while ``openstack console log show`` keeps showing
  everything the guest printed; the same after a restart of the service (the guest keeps its console socket);
* the default guest's kernel and initramfs uploaded as an aki and an ari image, and a raw root
  image naming them (``kernel_id``/``ramdisk_id``) boots with ``-kernel``/``-initrd`` and Nova's
  default ``os_command_line``.

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1. Every QEMU started here is killed and every file removed.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from novalite.guest.builder import GuestBuildError, build_boot_files, build_guest_image
from tests.e2e.test_qemu_servers import Cloud, _kill_guests, _qemu_pid, _wait_ready
from tests.guest.conftest import _skip_or_fail, guest_cache_dir, require_qemu

pytestmark = pytest.mark.e2e
ANSWER = b"novalite-guest: console read: "  # what the default guest prints for each line typed


@pytest.fixture(scope="module")
def qemu_cloud() -> Iterator[Cloud]:
    require_qemu()
    try:  # built (or found) before serve starts, which would build it inside its start-up wait
        build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
    root = Path(tempfile.mkdtemp(prefix="nvc-"))  # short: QEMU's socket paths
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


async def _exchange(url: str, send: bytes, until: bytes, timeout: float = 120) -> bytes:
    """Open the serial console websocket, send ``send`` (again every 5 s while nothing comes
    back: the guest's console reader may be respawning) and read until ``until`` arrives."""
    received = b""
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("binary")]) as ws:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while until not in received:
            await ws.send(send)
            try:
                while until not in received:
                    left = deadline - loop.time()
                    if left <= 0:
                        pytest.fail(
                            f"{until!r} not read from the serial console within {timeout:.0f}s: {received!r}"
                        )
                    chunk = await asyncio.wait_for(ws.recv(), timeout=min(5.0, left))
                    received += chunk if isinstance(chunk, bytes) else chunk.encode()
            except TimeoutError:
                continue
    return received


def _serial_url(cloud: Cloud, server: str) -> str:
    shown = cloud.json("console", "url", "show", "--serial", server)
    assert shown["type"] == "serial"
    url = str(shown["url"])
    assert cloud.server is not None
    assert url.startswith(cloud.server.url.replace("http://", "ws://") + "/compute-console/?token=")
    return url


def test_serial_console_reaches_the_guest_both_ways(qemu_cloud: Cloud) -> None:
    cloud = qemu_cloud
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "con1",
    )  # fmt: skip
    uuid = created["id"]
    _wait_ready(cloud, uuid, 1)

    received = asyncio.run(_exchange(_serial_url(cloud, uuid), b"hello-serial\r", ANSWER + b"hello-serial"))
    assert ANSWER + b"hello-serial" in received
    # console.log keeps everything the guest printed, including what it answered the client
    log = cloud.console(uuid)
    assert f"novalite-guest ready {uuid}" in log and "console read: hello-serial" in log
    assert len(cloud.cli("console", "log", "show", "--lines", "2", uuid).stdout.strip().splitlines()) <= 2

    # the guest keeps its console socket across a restart of the service
    pid = _qemu_pid(cloud, uuid)
    cloud.stop()
    cloud.start()
    assert _qemu_pid(cloud, uuid) == pid
    again = asyncio.run(_exchange(_serial_url(cloud, uuid), b"after-restart\r", ANSWER + b"after-restart"))
    assert ANSWER + b"after-restart" in again

    cloud.cli("server", "delete", "--wait", uuid)
    assert not (cloud.instances / uuid).exists()


def test_kernel_ramdisk_image_boots(qemu_cloud: Cloud) -> None:
    cloud = qemu_cloud
    try:
        vmlinuz, initrd = build_boot_files(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest's kernel and initramfs: {exc}")
    kernel = cloud.json(
        "image", "create", "--disk-format", "aki", "--container-format", "aki", "--file", str(vmlinuz),
        "k-aki",
    )  # fmt: skip
    ramdisk = cloud.json(
        "image", "create", "--disk-format", "ari", "--container-format", "ari", "--file", str(initrd),
        "k-ari",
    )  # fmt: skip
    root = cloud.root / "root.raw"
    root.write_bytes(bytes(1 << 20))  # an empty disk: the initramfs needs no root file system
    image = cloud.json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(root),
        "--property", f"kernel_id={kernel['id']}", "--property", f"ramdisk_id={ramdisk['id']}", "k-root",
    )  # fmt: skip
    created = cloud.json(
        "server", "create", "--image", image["id"], "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "kvm1",
    )  # fmt: skip
    uuid = created["id"]
    _wait_ready(cloud, uuid, 1)
    log = cloud.console(uuid)
    assert "Kernel command line: root=/dev/vda console=ttyS0" in log  # Nova's default os_command_line
    assert f"uuid={uuid} hostname=kvm1 source=config-drive" in log
    d = cloud.instances / uuid
    assert (d / "kernel").read_bytes() == vmlinuz.read_bytes()
    assert (d / "ramdisk").read_bytes() == initrd.read_bytes()
    cloud.cli("server", "delete", "--wait", uuid)
    assert not d.exists()


def test_kernel_id_naming_no_image_is_refused_and_nokernel_boots_the_disk(qemu_cloud: Cloud) -> None:
    cloud = qemu_cloud
    root = cloud.root / "root2.raw"
    root.write_bytes(bytes(1 << 20))
    missing = "00000000-0000-4000-8000-00000000dead"
    cloud.json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(root),
        "--property", f"kernel_id={missing}", "no-kernel",
    )  # fmt: skip
    proc = cloud.cli(
        "server", "create", "--image", "no-kernel", "--flavor", "g1.nano", "--no-network", "nok", check=False
    )  # fmt: skip
    assert proc.returncode != 0 and f"Image {missing} could not be found" in proc.stderr
    assert "nok" not in cloud.cli("server", "list", "-f", "value", "-c", "Name").stdout.split()
    # kernel_id "nokernel" (Nova's word for none): the image boots by itself
    admin = "novalite-admin"  # the default image belongs to the admin project
    cloud.cli("image", "set", "--property", "kernel_id=nokernel", "novalite-guest", cloud=admin)
    try:
        created = cloud.json(
            "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
            "--no-network", "--wait", "nok2",
        )  # fmt: skip
        _wait_ready(cloud, created["id"], 1)
        assert not (cloud.instances / created["id"] / "kernel").exists()
    finally:
        cloud.cli("image", "unset", "--property", "kernel_id", "novalite-guest", cloud=admin)
    cloud.cli("server", "delete", "--wait", "nok2")

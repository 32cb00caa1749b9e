"""Live migration between two QEMU "hosts" on one machine: two QemuDriver instances, each on its
own instances_path (its own image cache, its own overlays). The guest keeps running: the
counter its user_data prints goes on on the destination's console, with no second boot.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.domain.states import PowerState
from novalite.guest.builder import GuestImage
from novalite.virt.driver import DriverError, LiveMigrationCancelled
from tests.conftest import poll_until
from tests.guest.conftest import require_qemu
from tests.guest.test_qemu_driver import READY, USER_DATA, image_meta, make_driver, spec, ticks, wait_console

__all__ = ["image_meta"]  # the module-scoped fixture, shared with test_qemu_driver


@pytest.fixture
def two_hosts(guest_image: GuestImage) -> Iterator[tuple[Path, Path]]:
    """Two instances_paths (short: unix sockets); every QEMU under them is killed at the end."""
    root = Path(tempfile.mkdtemp(prefix="nlm-"))
    try:
        yield root / "a", root / "b"
    finally:
        for pidfile in root.glob("*/*/qemu.pid"):
            try:
                pid = int(pidfile.read_text())
                if f"guest={pidfile.parent.name}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(root, ignore_errors=True)


# the first boot writes a mark at 900 MiB of the root disk (past the image's file system: the base
# has nothing there, so only a copy of the source's overlay has it); every boot prints what it finds
MARKED_USER_DATA = USER_DATA + (
    b"m=$(dd if=/dev/vda bs=1M skip=900 count=1 2>/dev/null | head -c 12)\n"
    b'if [ "$m" = disk-mark-ok ]; then echo "found $m"; else\n'
    b"  printf disk-mark-ok | dd of=/dev/vda bs=1M seek=900 conv=fsync 2>/dev/null; echo wrote-mark; fi\n"
)


def _counted_past(driver, guest, n: int) -> str:
    """The console once the guest's counter is past ``n`` (the ticks printed on the source while
    the move ran are not on the destination's console: no exact tick number to wait for)."""
    deadline = time.monotonic() + 240
    while True:
        text = driver.console_output(guest).replace("\r\n", "\n")
        if any(t > n for t in ticks(text)):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"the counter did not pass {n} on the destination:\n{text[-4000:]}")
        time.sleep(0.2)


def _migrate(src, dst, guest_src, guest_dst) -> None:
    """The order the agents follow: destination prepares, source migrates, destination finishes,
    source destroys; a failure aborts the destination and leaves the source running."""
    target = dst.prepare_live_migration(guest_dst, src.live_migration_source(guest_src))
    try:
        src.live_migrate(guest_src, target)
    except BaseException:
        dst.abort_live_migration(guest_dst)
        raise
    dst.finish_live_migration(guest_dst)
    src.destroy(guest_src)


def test_running_guest_moves_to_another_host_without_reboot(two_hosts, guest_image, image_meta):
    require_qemu()
    a, b = two_hosts
    src, dst = make_driver(a, guest_image), make_driver(b, guest_image)
    guest = spec(image_meta, config_drive=True, hostname="mover", user_data=MARKED_USER_DATA)
    on_b = dataclasses.replace(guest, host="compute-2", node="compute-2")

    src.spawn(guest)
    wait_console(src, guest, READY)
    wait_console(src, guest, r"(?m)^wrote-mark$")
    wait_console(src, guest, r"(?m)^tick 3$")
    before = ticks(src.console_output(guest).replace("\r\n", "\n"))[-1]

    _migrate(src, dst, guest, on_b)

    assert dst.get_info(on_b).state == PowerState.RUNNING
    text = _counted_past(dst, on_b, before + 3)
    after = ticks(text)
    assert after and after[0] > before, text[-2000:]  # the counter went on: no new boot from 1
    assert READY not in text  # no second boot on the destination
    assert after == list(range(after[0], after[0] + len(after)))
    # nothing of the guest stays on the source host
    assert src.list_running() == {}
    assert not (a / guest.uuid).exists()
    assert src.get_info(guest).state == PowerState.NOSTATE
    # the destination's overlay sits on its own cached base
    assert list(dst.list_running()) == [on_b.uuid]
    assert str(b / "_base") in (b / guest.uuid / "launch.json").read_text() or any((b / "_base").iterdir())
    assert str(a) not in (b / guest.uuid / "launch.json").read_text()
    assert {p.name for p in (b / guest.uuid).iterdir()} >= {"disk", "disk.config", "launch.json"}
    assert not (b / guest.uuid / "nbd.sock").exists()

    # the moved guest is an ordinary guest there: it reboots from its copied disk, which has
    # what the guest wrote on the source
    dst.reboot(on_b, hard=True)
    wait_console(dst, on_b, READY, count=1)
    wait_console(dst, on_b, r"(?m)^found disk-mark-ok$")
    dst.destroy(on_b)
    assert dst.list_running() == {}


def test_failed_migration_leaves_the_guest_running_on_the_source(two_hosts, guest_image, image_meta):
    require_qemu()
    a, b = two_hosts
    src, dst = make_driver(a, guest_image), make_driver(b, guest_image)
    guest = spec(image_meta, config_drive=True, user_data=USER_DATA)

    src.spawn(guest)
    wait_console(src, guest, r"(?m)^tick 2$")
    target = dst.prepare_live_migration(guest, src.live_migration_source(guest))
    bad = dict(target) | {"migrate_uri": f"unix:{b}/no-such.sock"}  # the memory cannot go over
    with pytest.raises(DriverError, match="Live migration|Migrating"):
        src.live_migrate(guest, bad)
    dst.abort_live_migration(guest)

    assert not (b / guest.uuid).exists() and dst.list_running() == {}
    assert src.get_info(guest).state == PowerState.RUNNING
    before = ticks(src.console_output(guest).replace("\r\n", "\n"))[-1]
    text = wait_console(src, guest, rf"(?m)^tick {before + 2}$")
    assert len(re.findall(READY, text)) == 1  # the source guest never rebooted
    src.destroy(guest)


def test_abort_cancels_a_running_migration(two_hosts, guest_image, image_meta):
    """The memory goes at 1 MiB/s, so the move is still running when the abort comes (from another
    thread, as the agent's cast does); the guest keeps counting on the source."""
    require_qemu()
    a, b = two_hosts
    src, dst = make_driver(a, guest_image), make_driver(b, guest_image)
    guest = spec(image_meta, config_drive=True, user_data=USER_DATA)
    src.spawn(guest)
    wait_console(src, guest, r"(?m)^tick 2$")
    target = dst.prepare_live_migration(guest, src.live_migration_source(guest))
    asked = threading.Event()

    def abort_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not src.control_live_migration(guest, "abort"):
            time.sleep(0.05)
        asked.set()

    helper = threading.Thread(target=abort_when_running, daemon=True)
    helper.start()
    with pytest.raises(LiveMigrationCancelled):
        src.live_migrate(guest, target, bandwidth_mib=1)
    helper.join(10)
    assert asked.is_set()
    dst.abort_live_migration(guest)
    assert not src.control_live_migration(guest, "abort")  # nothing runs any more

    assert not (b / guest.uuid).exists() and dst.list_running() == {}
    assert src.get_info(guest).state == PowerState.RUNNING
    before = ticks(src.console_output(guest).replace("\r\n", "\n"))[-1]
    text = wait_console(src, guest, rf"(?m)^tick {before + 2}$")
    assert len(re.findall(READY, text)) == 1
    src.destroy(guest)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports_freed(ports: tuple[int, ...]) -> bool:
    """QEMU closes a listener once it has handled the cancel or the finish: poll, bounded."""
    return poll_until(lambda: all(_port_free(p) for p in ports), timeout=15.0, interval=0.1)


def _three_free_ports() -> int:
    """The first of three consecutive ports free on loopback."""
    for _ in range(200):
        low = random.randint(20000, 40000)
        if all(_port_free(p) for p in range(low, low + 3)):
            return low
    pytest.skip("no three consecutive free ports on loopback")


def test_tcp_listeners_on_the_destination_address(two_hosts, guest_image, image_meta):
    """A destination with an address (its my_ip; loopback here) listens on TCP ports of its
    range, skips a port another process holds, and closes both listeners at abort and at finish;
    the guest moves over TCP without a reboot."""
    require_qemu()
    a, b = two_hosts
    low = _three_free_ports()
    src = make_driver(a, guest_image)
    dst = make_driver(b, guest_image, migration_address="127.0.0.1", migration_ports=(low, low + 2))
    guest = spec(image_meta, config_drive=True, user_data=USER_DATA)
    on_b = dataclasses.replace(guest, host="compute-2", node="compute-2")
    src.spawn(guest)
    wait_console(src, guest, r"(?m)^tick 2$")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", low + 1))  # someone else's port in the range
        holder.listen()

        def ports(target: dict) -> set[int]:
            assert target["nbd_server"]["type"] == "inet" and target["nbd_server"]["host"] == "127.0.0.1"
            assert target["migrate_uri"].startswith("tcp:127.0.0.1:")
            return {int(target["nbd_server"]["port"]), int(target["migrate_uri"].rsplit(":", 1)[1])}

        target = dst.prepare_live_migration(on_b, src.live_migration_source(guest))
        assert ports(target) == {low, low + 2}
        assert not any(_port_free(p) for p in (low, low + 2))
        assert not (b / guest.uuid / "nbd.sock").exists()
        dst.abort_live_migration(on_b)
        assert _ports_freed((low, low + 2))  # released at abort

        target = dst.prepare_live_migration(on_b, src.live_migration_source(guest))
        assert ports(target) == {low, low + 2}
        before = ticks(src.console_output(guest).replace("\r\n", "\n"))[-1]
        src.live_migrate(guest, target)
        dst.finish_live_migration(on_b)
        src.destroy(guest)
        assert _ports_freed((low, low + 2))  # released at finish
    text = _counted_past(dst, on_b, before + 3)
    after = ticks(text)
    assert after and after[0] > before and READY not in text, text[-2000:]
    assert src.list_running() == {} and list(dst.list_running()) == [on_b.uuid]
    dst.destroy(on_b)
    assert dst.list_running() == {}


def test_force_complete_pauses_the_guest_so_that_the_copy_converges(two_hosts, guest_image, image_meta):
    """A guest that rewrites 4 MiB of random bytes without pause, memory capped at 1 MiB/s: the
    copy cannot converge while it runs. force_complete pauses it (as Nova's libvirt driver does
    without post-copy): the move completes and the guest counts on on the destination."""
    require_qemu()
    a, b = two_hosts
    src, dst = make_driver(a, guest_image), make_driver(b, guest_image)
    busy = (
        USER_DATA + b"( while true; do dd if=/dev/urandom of=/dev/null bs=4M count=64 2>/dev/null; done ) &\n"
    )
    guest = spec(image_meta, config_drive=True, user_data=busy)
    on_b = dataclasses.replace(guest, host="compute-2", node="compute-2")
    src.spawn(guest)
    wait_console(src, guest, r"(?m)^tick 2$")
    target = dst.prepare_live_migration(on_b, src.live_migration_source(guest))
    failures: list[BaseException] = []

    def move() -> None:
        try:
            src.live_migrate(guest, target, bandwidth_mib=1)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    mover = threading.Thread(target=move, daemon=True)
    mover.start()
    time.sleep(20)  # the copy runs (and cannot converge) for a while
    assert mover.is_alive(), failures
    before = ticks(src.console_output(guest).replace("\r\n", "\n"))[-1]
    assert src.control_live_migration(guest, "force_complete")
    mover.join(300)
    assert not mover.is_alive() and not failures, failures
    dst.finish_live_migration(on_b)
    src.destroy(guest)
    text = _counted_past(dst, on_b, before + 2)
    assert READY not in text and ticks(text)[0] > before, text[-2000:]
    assert dst.get_info(on_b).state == PowerState.RUNNING
    dst.destroy(on_b)

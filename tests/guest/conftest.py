"""Real QEMU guests for tests (TCG, never KVM: KVM is not usable on the CI machines).

* ``require_qemu()``: skips loudly when ``qemu-system-x86_64``/``qemu-img`` or the image
  tools are missing (``scripts/install-qemu.sh`` installs them), and fails instead under
  NOVALITE_REQUIRE_SERVICES=1, as ``require_service`` does for PostgreSQL.
* ``guest_image``: the default guest image, built once and cached across test runs in
  ``$NOVALITE_GUEST_CACHE`` (default ``~/.cache/novalite/guest``; the kernel package is
  kept there too, so later builds are offline). A cached image is reused at once.
* ``qemu_guests``: starts guests (``QemuGuest``) and, whatever happens, kills every QEMU
  process it started and removes its directory (overlay, config drive, console log, socket).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from novalite.guest.builder import SYSLINUX_MBR, TOOLS, GuestBuildError, GuestImage, build_guest_image

BOOT_TIMEOUT = 120.0  # bound for the ready line; TCG on 2 busy cores, not a performance target
EXIT_TIMEOUT = 60.0


def guest_cache_dir() -> Path:
    return Path(os.environ.get("NOVALITE_GUEST_CACHE") or Path.home() / ".cache" / "novalite" / "guest")


def _skip_or_fail(msg: str) -> None:
    msg += "; run scripts/install-qemu.sh to run this test"
    if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
    pytest.skip("SKIPPED LOUDLY: " + msg)


def require_qemu() -> None:
    """Skip (or fail under NOVALITE_REQUIRE_SERVICES=1) unless QEMU and the image tools exist."""
    tools = ["qemu-system-x86_64", *TOOLS]
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [str(p) for p in (Path("/bin/busybox"), SYSLINUX_MBR) if not p.is_file()]
    if missing:
        _skip_or_fail("missing " + ", ".join(missing))


def require_guest_image() -> GuestImage:
    """The default guest image, built into the cache if needed; skips (or fails under
    NOVALITE_REQUIRE_SERVICES=1) when it cannot be built."""
    try:
        return build_guest_image(guest_cache_dir())
    except GuestBuildError as exc:
        _skip_or_fail(f"cannot build the guest image: {exc}")
        raise


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    require_qemu()
    return require_guest_image()


class QemuGuest:
    """One ``qemu-system-x86_64 -accel tcg`` process with a serial log and a QMP socket."""

    def __init__(self, directory: Path, extra_args: Sequence[str], pass_fds: Sequence[int] = ()) -> None:
        self.dir = directory
        self.console = directory / "console.log"
        self.qmp_path = directory / "qmp.sock"
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-nodefaults", "-nographic",
            "-no-user-config", "-serial", f"file:{self.console}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *extra_args,
        ]  # fmt: skip
        self.stderr = (directory / "qemu.stderr").open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, pass_fds=tuple(pass_fds)
        )

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern: str, timeout: float = BOOT_TIMEOUT) -> re.Match[str]:
        """Wait until the console log matches ``pattern``; fail with the log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.console_text())
            if found:
                return found
            if self.proc.poll() is not None:
                pytest.fail(f"QEMU exited ({self.proc.returncode}) before {pattern!r}:\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} on the console within {timeout:.0f}s:\n{self.diagnostics()}")
            time.sleep(0.2)

    def qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run one QMP command on a fresh connection and return its ``return`` value."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_path))
            stream = sock.makefile("rwb")
            json.loads(stream.readline())  # greeting
            for cmd, args in (("qmp_capabilities", None), (command, arguments)):
                msg: dict[str, Any] = {"execute": cmd}
                if args:
                    msg["arguments"] = args
                stream.write(json.dumps(msg).encode() + b"\n")
                stream.flush()
                while True:
                    answer = json.loads(stream.readline())
                    if "event" not in answer:
                        break
                if "error" in answer:
                    raise AssertionError(f"QMP {cmd} failed: {answer['error']}")
            return answer.get("return")

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stderr.close()

    def diagnostics(self) -> str:
        err = (self.dir / "qemu.stderr").read_text(errors="replace")[-2000:]
        return f"--- console ---\n{self.console_text()[-4000:]}\n--- qemu stderr ---\n{err}"


class QemuGuests:
    def __init__(self, image: GuestImage) -> None:
        self.image = image
        self.root = Path(tempfile.mkdtemp(prefix="novalite-guest-test-"))  # short: QMP socket path
        self.guests: list[QemuGuest] = []

    def path(self, name: str) -> Path:
        return self.root / name

    def overlay(self, name: str = "disk.qcow2") -> Path:
        """A qcow2 overlay backed by the cached image (the cached image stays untouched)."""
        path = self.root / name
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(self.image.path), str(path)],
            check=True,
        )
        return path

    def start(self, *extra_args: str, pass_fds: Sequence[int] = ()) -> QemuGuest:
        directory = Path(tempfile.mkdtemp(prefix="g", dir=self.root))
        guest = QemuGuest(directory, extra_args, pass_fds)
        self.guests.append(guest)
        return guest

    def close(self) -> None:
        for guest in self.guests:
            guest.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def qemu_guests(guest_image: GuestImage) -> Iterator[QemuGuests]:
    guests = QemuGuests(guest_image)
    try:
        yield guests
    finally:
        guests.close()

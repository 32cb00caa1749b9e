"""Choosing QEMU's accelerator: ``kvm`` only when a probe guest really runs under it.

``/dev/kvm`` existing, opening, and ``query-kvm`` saying enabled prove nothing on nested
machines whose KVM fails at the first vCPU setup or the first real-mode instruction (seen
on the CI machines: QEMU aborts, or stops in ``internal-error`` with the process alive).
So ``auto`` boots a one-sector probe disk under ``-accel kvm`` with the CPU model the
guests will use; the probe writes a line on the serial port and halts. Only when that line
arrives within the timeout is KVM chosen; any other outcome (no device, exit, error state,
silence) chooses TCG. The probe process is always killed, so this never hangs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

ACCELERATORS = ("auto", "kvm", "tcg")
PROBE_TIMEOUT = 8.0
PROBE_MARK = b"NOVALITE-KVM-OK"


def probe_boot_sector() -> bytes:
    """Real-mode code: print PROBE_MARK on COM1 (0x3f8), then ``cli; hlt`` forever."""
    code = bytearray(b"\xba\xf8\x03")  # mov dx, 0x3f8
    for ch in PROBE_MARK + b"\n":
        code += bytes((0xB0, ch, 0xEE))  # mov al, ch; out dx, al
    code += b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back to hlt
    return bytes(code).ljust(510, b"\0") + b"\x55\xaa"


def resolve_accelerator(requested: str, *, cpu_model: str, timeout: float = PROBE_TIMEOUT) -> str:
    """``kvm`` or ``tcg`` for ``auto``/``kvm``/``tcg``; ``kvm`` requested but unusable is an error."""
    if requested not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {', '.join(ACCELERATORS)}, not {requested!r}")
    if requested == "tcg":
        return "tcg"
    works = kvm_works(cpu_model=cpu_model, timeout=timeout)
    if requested == "kvm" and not works:
        raise ValueError("accelerator kvm was requested but a probe guest does not run under KVM here")
    return "kvm" if works else "tcg"


def kvm_works(*, cpu_model: str, timeout: float = PROBE_TIMEOUT) -> bool:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory(prefix="novalite-kvm-probe-") as tmp:
        disk, log = Path(tmp) / "probe.img", Path(tmp) / "serial.log"
        disk.write_bytes(probe_boot_sector())
        argv = [
            "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-accel", "kvm", "-cpu", cpu_model, "-m", "16", "-no-reboot",
            "-drive", f"file={disk},format=raw,if=ide", "-serial", f"file:{log}",
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError:
            return False
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if log.is_file() and PROBE_MARK in log.read_bytes():
                    return True
                if proc.poll() is not None:
                    return False
                time.sleep(0.1)
            return False
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

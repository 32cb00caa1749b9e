"""CI smoke of bench/guest.py (real QEMU guests): one guest, and the script must print each of its
figure lines and leave nothing behind. No thresholds: the figures are recorded in bench/README.md.

Needs QEMU and the image tools (``scripts/install-qemu.sh``): skips loudly without them, fails
under NOVALITE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.guest.conftest import require_qemu

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[2] / "bench"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def test_guest_bench_prints_its_figures_and_cleans_up() -> None:
    require_qemu()
    done = subprocess.run(
        [sys.executable, str(BENCH / "guest.py"), "-n", "1", "--accelerator", "tcg"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout
    assert done.returncode == 0, f"guest.py exited {done.returncode}:\n{out}\n{done.stderr}"
    assert "guests: 1 of novalite-guest, at most 1 booting at once, 128 MB / 1 vCPU" in out, out
    assert re.search(rf"POST -> ACTIVE:\s+p50\s+{NUMBER} s\s+p95\s+{NUMBER} s", out), out
    assert re.search(rf"POST -> guest ready:\s+p50\s+{NUMBER} s\s+p95\s+{NUMBER} s", out), out
    assert re.search(rf"all 1 ready:\s+{NUMBER} s after the first POST", out), out
    assert re.search(rf"QEMU CPU to ready:\s+mean\s+{NUMBER} s", out), out
    assert re.search(rf"QEMU RSS per guest:\s+mean\s+{NUMBER} MB at ready\s+peak\s+{NUMBER} MB", out), out
    assert re.search(rf"delete:\s+all gone in\s+{NUMBER} s", out), out
    cleaned = re.search(r"cleaned up: (\S+) removed", out)
    assert cleaned is not None, out
    assert not Path(cleaned.group(1)).exists()  # its data directory, and every guest in it, is gone

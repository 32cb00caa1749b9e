"""CI smoke of the benchmark scripts (bench/): each runs as a subprocess with a small N and must
print its figure lines. No thresholds: the figures themselves are recorded in bench/README.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[2] / "bench"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def _run(script: str, *args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_boot_prints_throughput_latencies_and_footprint() -> None:
    out = _run("boot.py", "-n", "6", "-c", "3", "--hosts", "2")
    assert re.search(rf"boot throughput: {NUMBER} servers/s", out), out
    assert re.search(rf"POST /servers latency ms: p50 {NUMBER}\s+p95 {NUMBER}\s+p99 {NUMBER}", out), out
    assert re.search(rf"time to ACTIVE ms: p50 {NUMBER}\s+p95 {NUMBER}", out), out
    assert re.search(rf"delete throughput: {NUMBER} servers/s", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out
    assert re.search(rf"server peak memory \(\d+ process(es)?\): RSS {NUMBER} MB, PSS {NUMBER} MB\s+"
                     rf"first answer after start: {NUMBER} s", out), out


def test_boot_with_paced_arrivals() -> None:
    out = _run("boot.py", "-n", "6", "-c", "3", "--hosts", "2", "--rate", "20")
    assert "arrivals paced at 20/s" in out, out
    assert re.search(rf"POST /servers latency ms: p50 {NUMBER}\s+p95 {NUMBER}\s+p99 {NUMBER}", out), out
    assert re.search(r"POSTs sent late \(C already in flight at their arrival time\): \d+", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out


def test_list_prints_page_and_filter_times() -> None:
    out = _run("list.py", "-n", "60", "--rounds", "1", "--page", "25")
    assert re.search(rf"GET /servers/detail\?limit=25 over 60 servers: 3 pages, ms per page p50 {NUMBER}", out), out
    assert re.search(rf"filtered list \(name regex \+ status, 1 matches\): ms p50 {NUMBER}", out), out
    assert re.search(rf"server peak memory \(\d+ process(es)?\): RSS {NUMBER} MB, PSS {NUMBER} MB", out), out


def test_scheduler_prints_ms_per_instance_for_each_size() -> None:
    out = _run("scheduler.py", "--sizes", "20,40", "-n", "10", "--group-share", "0.3")
    for hosts in (20, 40):
        assert re.search(rf"scheduling\+claim at {hosts} hosts: {NUMBER} ms per instance\s+{NUMBER} instances/s",
                         out), out
    assert out.count("NoValidHost: 0") == 2, out


def test_startup_prints_first_answer_and_phases() -> None:
    out = _run("startup.py", "-k", "1", "--hosts", "2")
    assert re.search(rf"first answer after start: median {NUMBER} s\s+min {NUMBER} s\s+max {NUMBER} s", out), out
    assert re.search(rf"phase medians ms: imports {NUMBER}\s+schema {NUMBER}", out), out


def test_pipeline_prints_cpu_per_server_for_each_part() -> None:
    out = _run("pipeline.py", "-n", "20", "--hosts", "3", "--batch", "4")
    assert "servers: 20  hosts: 3  batch: 4  all ACTIVE" in out, out
    assert re.search(rf"CPU us per server: api {NUMBER}\s+schedule {NUMBER}\s+build {NUMBER}\s+total {NUMBER}",
                     out), out

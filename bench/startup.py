"""Start-up time: spawn ``novalite serve --fake-hosts H`` on a fresh data dir K times and time each
start until ``GET /compute/`` answers 200. Prints the median (and min/max) first-answer time and the
median of each start-up phase ``serve`` reports (NOVALITE_STARTUP_TIMES=1).

    .venv/bin/python bench/startup.py                  # K=5, 100 fake hosts, SQLite
    .venv/bin/python bench/startup.py -k 3 --hosts 10
    .venv/bin/python bench/startup.py --database-url postgresql+psycopg://postgres@127.0.0.1/empty_db
        (the database must be empty before every start: with --database-url, K is 1)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_PW, free_port  # noqa: E402

PHASE = re.compile(r"^startup phase (.+): ([0-9]+) ms$")


def one_start(hosts: int, database_url: str | None) -> tuple[float, float, dict[str, float]]:
    """(seconds from spawn until GET /compute/ answered 200, CPU seconds the server used until then,
    {phase: ms})."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="novalite-startup-"))
    env = dict(
        os.environ,
        NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
        NOVALITE_DEMO_PASSWORD=ADMIN_PW,
        NOVALITE_WRITE_CLOUDS_YAML="false",
        NOVALITE_LOG_LEVEL="warning",
        NOVALITE_STARTUP_TIMES="1",
    )
    cmd = [
        str(Path(sys.executable).parent / "novalite"),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--fake-hosts",
        str(hosts),
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    stderr = (data / "stderr.txt").open("w+")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}/compute/"
    try:
        while True:
            if proc.poll() is not None:
                stderr.seek(0)
                raise SystemExit(f"novalite serve exited with {proc.returncode}:\n{stderr.read()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
            if time.monotonic() - started > 120:
                raise SystemExit("novalite serve did not answer within 120 s")
        first_answer = time.monotonic() - started
        cpu = psutil.Process(proc.pid).cpu_times()
        cpu_s = cpu.user + cpu.system
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    stderr.seek(0)
    phases: dict[str, float] = {}
    for line in stderr.read().splitlines():
        m = PHASE.match(line.strip())
        if m:
            phases[m.group(1)] = float(m.group(2))
    stderr.close()
    shutil.rmtree(data, ignore_errors=True)
    return first_answer, cpu_s, phases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-k", type=int, default=5, help="starts (each on a fresh data dir)")
    p.add_argument("--hosts", type=int, default=100, help="simulated hypervisors")
    p.add_argument("--database-url", default=None, help="an EMPTY database (K is then 1)")
    args = p.parse_args()
    k = 1 if args.database_url else max(1, args.k)
    times: list[float] = []
    cpus: list[float] = []
    phases: dict[str, list[float]] = {}
    for _ in range(k):
        first, cpu, ph = one_start(args.hosts, args.database_url)
        times.append(first)
        cpus.append(cpu)
        for name, ms in ph.items():
            phases.setdefault(name, []).append(ms)
    print(f"starts: {k}  hosts: {args.hosts}  db: {args.database_url or 'sqlite'}")
    print(
        f"first answer after start: median {statistics.median(times):.2f} s  "
        f"min {min(times):.2f} s  max {max(times):.2f} s"
    )
    print(
        f"server CPU until the first answer: median {statistics.median(cpus):.2f} s (user+sys; compare this "
        "one "
        "on a shared machine)"
    )
    if phases:
        accounted = sum(statistics.median(v) for v in phases.values())
        print(
            "phase medians ms: "
            + "  ".join(f"{name} {statistics.median(v):.0f}" for name, v in phases.items())
            + f"  (interpreter, CLI and HTTP listener: {statistics.median(times) * 1000 - accounted:.0f})"
        )


if __name__ == "__main__":
    main()

"""CI smoke of the benchmark scripts (bench/): each runs as a subprocess with a small N and must
print its figure lines. No thresholds: the figures themselves are recorded in bench/README.md."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PW, RunningServer

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[2] / "bench"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def _run(script: str, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _admin(server: RunningServer) -> tuple[httpx.Client, str]:
    """A compute client with the admin's token (microversion 2.37) and the admin project's id. The
    tests below share the module's server: each starts from an empty admin project with the
    default quota (10 instances, 20 cores, 51200 MB)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PW}},
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body)
    r.raise_for_status()
    headers = {"X-Auth-Token": r.headers["X-Subject-Token"], "OpenStack-API-Version": "compute 2.37"}
    client = httpx.Client(base_url=f"{server.url}/compute/v2.1", headers=headers, timeout=30)
    project = str(r.json()["token"]["project"]["id"])
    assert _names(client) == [], "an earlier test left servers behind"
    default = {"instances": 10, "cores": 20, "ram": 51200}
    client.put(f"/os-quota-sets/{project}", json={"quota_set": default}).raise_for_status()
    return client, project


def _wait_for_a_bench_server(client: httpx.Client, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not any(n.startswith("bench-") for n in _names(client)):
        assert proc.poll() is None and time.monotonic() < deadline, "the run created no server"
        time.sleep(0.05)


def _names(client: httpx.Client) -> list[str]:
    return sorted(s["name"] for s in client.get("/servers").json()["servers"])


def _boot_at(server: RunningServer, *args: str) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "boot.py"),
        "--endpoint",
        f"{server.url}/identity",
        "--password",
        ADMIN_PW,
        *args,
    ]


def test_boot_prints_throughput_latencies_and_footprint() -> None:
    out = _run("boot.py", "-n", "6", "-c", "3", "--hosts", "2")
    assert re.search(rf"boot throughput: {NUMBER} servers/s", out), out
    assert re.search(rf"POST /servers latency ms: p50 {NUMBER}\s+p95 {NUMBER}\s+p99 {NUMBER}", out), out
    assert re.search(rf"time to ACTIVE ms: p50 {NUMBER}\s+p95 {NUMBER}", out), out
    assert re.search(rf"delete throughput: {NUMBER} servers/s", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out
    assert re.search(
        rf"server peak memory \(\d+ process(es)?\): RSS {NUMBER} MB, PSS {NUMBER} MB\s+"
        rf"first answer after start: {NUMBER} s",
        out,
    ), out


def test_boot_distributed_runs_the_split_topology_and_removes_it() -> None:
    """``--distributed`` on a small scale: api, a conductor and two compute processes over the
    machine's PostgreSQL and RabbitMQ (a fresh database and vhost, both gone afterwards)."""
    from tests.conftest import require_service

    require_service("127.0.0.1", 5432, "PostgreSQL")
    require_service("127.0.0.1", 5672, "RabbitMQ")
    before = subprocess.run(["rabbitmqctl", "list_vhosts"], capture_output=True, text=True, timeout=60).stdout
    out = _run("boot.py", "--distributed", "-n", "6", "-c", "3", "--api-workers", "1", "--conductors", "1",
               "--computes", "2", "--hosts-per-compute", "2")  # fmt: skip
    assert "distributed: api x1 workers, 1 conductors, 2 computes x 2 fake hosts" in out, out
    assert re.search(rf"boot throughput: {NUMBER} servers/s", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out
    after = subprocess.run(["rabbitmqctl", "list_vhosts"], capture_output=True, text=True, timeout=60).stdout
    made = {v for v in after.split() if v.startswith("novalite-bench-")} - set(before.split())
    assert made == set(), made  # the run's vhost was deleted again


def test_boot_with_paced_arrivals() -> None:
    out = _run("boot.py", "-n", "6", "-c", "3", "--hosts", "2", "--rate", "20")
    assert "arrivals paced at 20/s" in out, out
    assert re.search(rf"POST /servers latency ms: p50 {NUMBER}\s+p95 {NUMBER}\s+p99 {NUMBER}", out), out
    assert re.search(r"POSTs sent late \(C already in flight at their arrival time\): \d+", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out


def test_list_prints_page_and_filter_times() -> None:
    out = _run("list.py", "-n", "60", "--rounds", "1", "--page", "25")
    assert re.search(
        rf"GET /servers/detail\?limit=25 over 60 servers: 3 pages, ms per page p50 {NUMBER}", out
    ), out
    assert re.search(rf"filtered list \(name regex \+ status, 1 matches\): ms p50 {NUMBER}", out), out
    assert re.search(rf"server peak memory \(\d+ process(es)?\): RSS {NUMBER} MB, PSS {NUMBER} MB", out), out


def test_scheduler_prints_ms_per_instance_for_each_size() -> None:
    out = _run("scheduler.py", "--sizes", "20,40", "-n", "10", "--group-share", "0.3")
    for hosts in (20, 40):
        assert re.search(
            rf"scheduling\+claim at {hosts} hosts: {NUMBER} ms per instance\s+{NUMBER} instances/s", out
        ), out
    assert out.count("NoValidHost: 0") == 2, out


def test_startup_prints_first_answer_and_phases() -> None:
    out = _run("startup.py", "-k", "1", "--hosts", "2")
    assert re.search(
        rf"first answer after start: median {NUMBER} s\s+min {NUMBER} s\s+max {NUMBER} s", out
    ), out
    assert re.search(rf"phase medians ms: imports {NUMBER}\s+schema {NUMBER}", out), out


def test_pipeline_prints_cpu_per_server_for_each_part() -> None:
    out = _run("pipeline.py", "-n", "20", "--hosts", "3", "--batch", "4")
    assert "servers: 20  hosts: 3  batch: 4  all ACTIVE" in out, out
    assert re.search(
        rf"CPU us per server: api {NUMBER}\s+schedule {NUMBER}\s+build {NUMBER}\s+total {NUMBER}", out
    ), out


def test_boot_times_a_running_endpoint_and_leaves_no_server(server: RunningServer) -> None:
    client, _project = _admin(server)
    done = subprocess.run(_boot_at(server, "-n", "6", "-c", "3"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"endpoint: {server.url}/identity" in out, out
    assert re.search(rf"boot throughput: {NUMBER} servers/s", out), out
    assert re.search(rf"POST /servers latency ms: p50 {NUMBER}\s+p95 {NUMBER}\s+p99 {NUMBER}", out), out
    assert "ERROR: 0  still building at timeout: 0" in out, out
    assert "server peak memory" not in out  # not its process: nothing to measure
    assert _names(client) == []


def test_boot_stops_before_creating_when_the_quota_has_no_room(server: RunningServer) -> None:
    client, _project = _admin(server)
    done = subprocess.run(
        _boot_at(server, "-n", "12", "-c", "3"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert "the project's quota has room for 10 more servers of flavor '1'" in done.stderr, done.stderr
    assert "pass -n 10 or less, or --lift-quota" in done.stderr
    assert "Traceback" not in done.stderr
    assert _names(client) == []


def test_boot_lifts_the_quota_for_the_run_and_puts_it_back(server: RunningServer) -> None:
    client, project = _admin(server)
    done = subprocess.run(
        _boot_at(server, "-n", "12", "-c", "3", "--lift-quota"), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR: 0  still building at timeout: 0" in done.stdout, done.stdout
    quota = client.get(f"/os-quota-sets/{project}").json()["quota_set"]
    assert (quota["instances"], quota["cores"], quota["ram"]) == (10, 20, 51200)
    assert _names(client) == []


def test_boot_deletes_what_it_created_when_a_post_fails_midway(server: RunningServer) -> None:
    """Another client takes the rest of the quota while the (paced) run is under way: the run's
    next POST gets 403, it sends no more, deletes the servers it made and says so."""
    client, _project = _admin(server)
    proc = subprocess.Popen(
        _boot_at(server, "-n", "10", "-c", "1", "--rate", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    fillers: list[str] = []
    try:
        _wait_for_a_bench_server(client, proc)
        image = client.get("/servers/detail").json()["servers"][0]["image"]["id"]  # the one the run boots
        body: dict[str, Any] = {
            "server": {"name": "filler", "flavorRef": "1", "networks": "none", "imageRef": image}
        }
        absolute = client.get("/limits").json()["limits"]["absolute"]
        for _ in range(absolute["maxTotalInstances"] - absolute["totalInstancesUsed"]):  # the room left
            r = client.post("/servers", json=body)
            if r.status_code != 202:  # the run took the last place first
                assert r.status_code == 403, r.text
                break
            fillers.append(r.json()["server"]["id"])
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert "POST /servers answered 403" in err and "Quota exceeded for instances" in err, err
        assert re.search(r"the \d+ servers created before that were deleted again", err), err
        assert "Traceback" not in err, err
        assert _names(client) == ["filler"] * len(fillers)
    finally:
        if proc.poll() is None:
            proc.kill()
        for sid in fillers:
            client.delete(f"/servers/{sid}")
        deadline = time.monotonic() + 60
        while _names(client) and time.monotonic() < deadline:
            time.sleep(0.1)


def test_boot_interrupted_deletes_what_it_created(server: RunningServer) -> None:
    client, _project = _admin(server)
    proc = subprocess.Popen(
        _boot_at(server, "-n", "10", "-c", "1", "--rate", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # even if ours ignores it
    try:
        _wait_for_a_bench_server(client, proc)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert re.search(r"boot.py: interrupted; the \d+ servers created before that were deleted again", err), (
        err
    )
    assert "Traceback" not in err, err
    assert _names(client) == []

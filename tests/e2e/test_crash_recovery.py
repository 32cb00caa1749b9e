"""``kill -9`` during 100 builds, of the engine process or of the API process, on SQLite and on
PostgreSQL: nothing is claimed twice and nothing leaks (issue 16, items 4 and 6).

* the engine killed: the API keeps answering (2xx, or 503 with Retry-After; never 500), starts a
  new engine, whose recovery resumes the interrupted builds on the hosts that hold their claims;
* the API process killed: its engine stops; a new ``novalite serve`` on the same data directory
  (and database) recovers the same way.

Ten of the servers are deleted just before the kill (some on a host mid-build, some still being
scheduled): they stay deleted and hold nothing.

In the end every server is ACTIVE (or ERROR with a fault recovery wrote, never "No valid host"),
none is left in BUILD, each provider's usage is the sum of its live servers' flavors, no
allocation belongs to a server that is not live, and every port bound to a server belongs to a
live one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import (
    ADMIN_PW,
    DEMO_PW,
    RunningServer,
    drop_postgres,
    postgres_url,
    start_server,
    stop_server,
)

SERVERS = 100
BATCH = 25  # one POST /servers with min_count creates this many
DELETED = 10  # of them deleted just before the kill
BUILD_DELAY = "1"  # seconds each fake build takes: builds are in flight when the kill lands
RECOVERY_FAULTS = (
    "Instance build was interrupted by a restart of its compute service",  # compute.recovery
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Extra ``serve`` arguments: nothing (SQLite in the data directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield []
        return
    url = postgres_url()
    try:
        yield ["--database-url", url]
    finally:
        drop_postgres(url)


class Cloud:
    """Tokens for demo and admin and a few calls, over plain HTTP."""

    def __init__(self, url: str):
        self.client = httpx.Client(base_url=url, timeout=30)
        self.demo, self.demo_project = self._token("demo", DEMO_PW, "demo")
        self.admin, _ = self._token("admin", ADMIN_PW, "admin")

    def _token(self, user: str, password: str, project: str) -> tuple[str, str]:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
                },
                "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
            }
        }
        r = self.client.post("/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]

    def call(self, method: str, path: str, *, admin: bool = False, **kw: Any) -> httpx.Response:
        headers = {
            "X-Auth-Token": self.admin if admin else self.demo,
            "OpenStack-API-Version": "compute 2.47",
        }
        return self.client.request(method, path, headers=headers, **kw)

    def prepare(self) -> None:
        """Room for the servers: no compute quota, and a network with enough addresses."""
        body = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
        r = self.call("PUT", f"/compute/v2.1/os-quota-sets/{self.demo_project}", admin=True, json=body)
        assert r.status_code == 200, r.text
        r = self.call("POST", "/network/v2.0/networks", json={"network": {"name": "crash-net"}})
        assert r.status_code == 201, r.text
        self.network = r.json()["network"]["id"]
        subnet = {"network_id": self.network, "cidr": "10.99.0.0/22", "ip_version": 4}
        r = self.call("POST", "/network/v2.0/subnets", json={"subnet": subnet})
        assert r.status_code == 201, r.text

    def create(self, count: int, name: str) -> httpx.Response:
        server = {
            "name": name,
            "flavorRef": "1",
            "imageRef": self._image(),
            "networks": [{"uuid": self.network}],
            "min_count": count,
            "max_count": count,
        }
        return self.call("POST", "/compute/v2.1/servers", json={"server": server})

    def _image(self) -> str:
        if not hasattr(self, "_image_id"):
            r = self.call("GET", "/image/v2/images?name=novalite-tiny")
            self._image_id = r.json()["images"][0]["id"]
        return str(self._image_id)

    def servers(self) -> list[dict[str, Any]]:
        r = self.call("GET", "/compute/v2.1/servers/detail?all_tenants=1", admin=True)
        assert r.status_code == 200, r.text
        return list(r.json()["servers"])


def _engine(srv: RunningServer) -> psutil.Process:
    (engine,) = psutil.Process(srv.process.pid).children()
    return engine


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def _serve(tmp: Path, database: list[str]) -> RunningServer:
    return start_server(
        tmp, "--fake-hosts", "4", "--engine-process", "on", "--fake-build-delay", BUILD_DELAY, *database
    )


def _create_in_flight(cloud: Cloud) -> list[str]:
    """100 creates; once builds are spawning on hosts (the others claimed or waiting), DELETEs of
    ``DELETED`` of them. Returns the deleted servers' ids."""
    cloud.prepare()
    for i in range(SERVERS // BATCH):
        r = cloud.create(BATCH, f"crash-{i}")
        assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while True:
        servers = cloud.servers()
        spawning = [s["id"] for s in servers if s["OS-EXT-STS:task_state"] == "spawning"]
        if spawning:
            break
        assert time.monotonic() < deadline, "no build started"
        time.sleep(0.05)
    others = [s["id"] for s in servers if s["id"] not in spawning]
    deleted = (spawning[:2] + others)[:DELETED]  # deletes on a host, and of servers still scheduling
    for sid in deleted:
        r = cloud.call("DELETE", f"/compute/v2.1/servers/{sid}")
        assert r.status_code == 204, r.text
    return deleted


class GapProbe:
    """Requests during the engine's absence, in a thread: a list, a create; every answer kept."""

    def __init__(self, cloud: Cloud):
        self.cloud = cloud
        self.answers: list[httpx.Response] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GapProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(30)

    def _run(self) -> None:
        n = 0
        while not self._done.is_set():
            self.answers.append(self.cloud.call("GET", "/compute/v2.1/servers/detail"))
            if n < 3:  # a few creates in the gap: accepted (202) for the next engine, or 503
                self.answers.append(self.cloud.create(1, f"gap-{n}"))
                n += 1
            time.sleep(0.05)


def _settle(cloud: Cloud, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        servers = cloud.servers()
        if all(s["status"] in ("ACTIVE", "ERROR") for s in servers):
            return servers
        if time.monotonic() > deadline:
            stuck = sorted({s["status"] for s in servers if s["status"] not in ("ACTIVE", "ERROR")})
            raise AssertionError(f"servers still not settled after {timeout:.0f} s: {stuck}")
        time.sleep(0.5)


def _check_end_state(cloud: Cloud, expected: int, deleted: list[str]) -> None:
    servers = _settle(cloud)
    assert len(servers) == expected
    assert not {s["id"] for s in servers} & set(deleted), "a deleted server came back"
    errors = {s["id"]: (s.get("fault") or {}).get("message", "") for s in servers if s["status"] == "ERROR"}
    assert not [m for m in errors.values() if "No valid host" in m], errors
    assert all(m.startswith(RECOVERY_FAULTS) for m in errors.values()), errors
    live = {s["id"]: s for s in servers if s["status"] == "ACTIVE"}
    assert live, "no server became ACTIVE"
    # placement: each provider's usage is the sum of its live servers' flavors (m1.tiny: 1 VCPU,
    # 512 MB, 1 GB), and no allocation is held by a server that is not live
    by_host: dict[str, int] = {}
    for s in live.values():
        node = s["OS-EXT-SRV-ATTR:hypervisor_hostname"]
        by_host[node] = by_host.get(node, 0) + 1
    r = cloud.call("GET", "/placement/resource_providers", admin=True)
    for rp in r.json()["resource_providers"]:
        usages = cloud.call("GET", f"/placement/resource_providers/{rp['uuid']}/usages", admin=True).json()
        n = by_host.get(rp["name"], 0)
        assert usages["usages"] == {"VCPU": n, "MEMORY_MB": 512 * n, "DISK_GB": n}, rp["name"]
    for sid in [*errors, *deleted]:
        held = cloud.call("GET", f"/placement/allocations/{sid}", admin=True).json()["allocations"]
        assert held == {}, f"ERROR or deleted server {sid} still holds {held}"
    # quota usage counts the servers that exist (ERROR ones too, as in Nova), not the deleted ones
    used = cloud.call("GET", "/compute/v2.1/limits").json()["limits"]["absolute"]
    n = len(servers)
    assert (used["totalInstancesUsed"], used["totalCoresUsed"], used["totalRAMUsed"]) == (n, n, 512 * n)
    # ports: one per live server, none for a server that is not live
    r = cloud.call("GET", "/network/v2.0/ports", admin=True)
    bound = [p["device_id"] for p in r.json()["ports"] if p["device_owner"].startswith("compute:")]
    assert sorted(bound) == sorted(live), "ports leaked or missing"


def _assert_gap_answers(answers: list[httpx.Response]) -> int:
    """No 500; a 503 says when to retry; returns how many servers the gap's creates added."""
    assert answers, "no request was made while the engine was away"
    for r in answers:
        assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text[:300])
        if r.status_code == 503:
            assert int(r.headers["Retry-After"]) > 0
            assert "serviceUnavailable" in r.json()
    return sum(1 for r in answers if r.request.method == "POST" and r.status_code == 202)


def test_kill_9_of_the_engine_during_100_builds(tmp_path: Path, database: list[str]) -> None:
    srv = _serve(tmp_path, database)
    try:
        cloud = Cloud(srv.url)
        old = _engine(srv)
        deleted = _create_in_flight(cloud)
        with GapProbe(cloud) as probe:
            os.kill(old.pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while not [p for p in psutil.Process(srv.process.pid).children() if p.pid != old.pid]:
                assert time.monotonic() < deadline, "no new engine was started"
                assert srv.process.poll() is None, "the API process died with its engine"
                time.sleep(0.1)
            time.sleep(1.0)  # a few more requests while the new engine starts
        added = _assert_gap_answers(probe.answers)
        _check_end_state(cloud, SERVERS - DELETED + added, deleted)
        assert "starting a new one" in srv.log.read_text()
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]


def test_kill_9_of_the_api_process_during_100_builds(tmp_path: Path, database: list[str]) -> None:
    srv = _serve(tmp_path, database)
    try:
        cloud = Cloud(srv.url)
        engine = _engine(srv)
        deleted = _create_in_flight(cloud)
        srv.process.kill()
        srv.process.wait(timeout=10)
        assert _gone(engine.pid, 30), "the engine outlived its API process"
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    again = _serve(tmp_path, database)
    try:
        _check_end_state(Cloud(again.url), SERVERS - DELETED, deleted)
    finally:
        stop_server(again)
    assert again.process.returncode == 0, again.log.read_text()[-3000:]

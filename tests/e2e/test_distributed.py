"""One deployment as separate processes (issue 18), driven with the unmodified ``openstack`` CLI:
a fresh PostgreSQL database and RabbitMQ vhost, ``novalite api --workers 2``, two
``novalite conductor`` and three ``novalite compute --host cN``. Servers land on all three hosts;
a compute killed with SIGKILL is ``down`` within service_down_time and gets no new server; started
again it is ``up`` with the same hypervisor and provider (no duplicate). Everything (processes,
database, vhost) is removed afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ADMIN_PW,
    DEMO_PW,
    RunningServer,
    drop_postgres,
    free_port,
    postgres_url,
    require_service,
)
from tests.functional.test_service_life import _drop_vhost, _vhost

NOVALITE = str(Path(sys.executable).parent / "novalite")
DOWN_TIME = 6


@dataclass
class Deployment:
    tmp: Path
    env: dict[str, str]
    common: list[str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    cli: RunningServer | None = None

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [NOVALITE, *args, *self.common], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = proc
        return proc

    def stop_all(self) -> None:
        """SIGTERM every process started, then wait for each (20 s, then SIGKILL)."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.tmp.glob("*.log")))

    def openstack(self, *args: str) -> Any:
        assert self.cli is not None
        return json.loads(self.cli.openstack(*args, "-f", "json", cloud="novalite-admin").stdout)

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def compute_states(self) -> dict[str, str]:
        rows = self.openstack("compute", "service", "list", "--service", "nova-compute")
        return {r["Host"]: r["State"] for r in rows}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_service("127.0.0.1", 5672, "RabbitMQ")
    db_url = postgres_url()
    transport_url, vhost = _vhost()
    clouds = tmp_path / "clouds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NOVALITE_"))}
    env.update(
        NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
        NOVALITE_DEMO_PASSWORD=DEMO_PW,
        NOVALITE_CLOUDS_YAML_PATH=str(clouds),
        NOVALITE_REPORT_INTERVAL="1",
        NOVALITE_SERVICE_DOWN_TIME=str(DOWN_TIME),
        OS_CLIENT_CONFIG_FILE=str(clouds),
        HOME=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    common = [
        "--data-dir",
        str(tmp_path / "data"),
        "--database-url",
        db_url,
        "--transport-url",
        transport_url,
    ]
    dep = Deployment(tmp=tmp_path, env=env, common=common)
    try:
        subprocess.run(
            [NOVALITE, "db", "upgrade", *common[:4]], env=env, check=True, capture_output=True, timeout=120
        )
        yield dep
    finally:
        dep.stop_all()
        drop_postgres(db_url)
        _drop_vhost(vhost)


def _hosts_of_servers(dep: Deployment, prefix: str) -> list[str]:
    rows = dep.openstack("server", "list", "--long", "--name", f"^{prefix}")
    assert {r["Status"] for r in rows} == {"ACTIVE"}, rows
    return [r["Host"] for r in rows]


def test_api_conductors_and_computes_as_separate_processes(deployment: Deployment) -> None:
    dep = deployment
    port = free_port()
    api = dep.start("api", "api", "--workers", "2", "--port", str(port))
    for i in (1, 2):
        dep.start(f"conductor{i}", "conductor")
    for host in ("c1", "c2", "c3"):
        dep.start(host, "compute", "--host", host)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert api.poll() is None, dep.logs()
        try:
            return httpx.get(url + "/compute/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    dep.wait("the API", answers)
    dep.cli = RunningServer(url=url, env=dep.env, process=api, log=dep.tmp / "api.log", data_dir=dep.tmp)
    dep.wait(
        "three compute services up", lambda: dep.compute_states() == dict.fromkeys(["c1", "c2", "c3"], "up")
    )

    dep.openstack("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network",
                  "--min", "6", "--max", "6", "--wait", "first")  # fmt: skip
    assert set(_hosts_of_servers(dep, "first")) == {"c1", "c2", "c3"}
    one = dep.openstack("server", "show", "first-1", "-c", "OS-EXT-SRV-ATTR:host")
    assert one["OS-EXT-SRV-ATTR:host"] in {"c1", "c2", "c3"}

    dep.processes["c3"].send_signal(signal.SIGKILL)
    dep.processes["c3"].wait()
    dep.wait("c3 down", lambda: dep.compute_states().get("c3") == "down", timeout=DOWN_TIME * 5)
    assert dep.compute_states() == {"c1": "up", "c2": "up", "c3": "down"}
    dep.openstack("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network",
                  "--min", "4", "--max", "4", "--wait", "second")  # fmt: skip
    assert "c3" not in _hosts_of_servers(dep, "second")

    dep.start("c3", "compute", "--host", "c3")
    dep.wait("c3 up again", lambda: dep.compute_states().get("c3") == "up")
    hypervisors = dep.openstack("hypervisor", "list")
    assert sorted(h["Hypervisor Hostname"] for h in hypervisors) == ["c1", "c2", "c3"]
    providers = dep.openstack("resource", "provider", "list")
    assert sorted(p["name"] for p in providers) == ["c1", "c2", "c3"]
    on_c3 = [r["ID"] for r in dep.openstack("server", "list", "--long", "--host", "c3")]
    assert on_c3  # the first servers it had: the restarted agent deletes them
    dep.cli.openstack("server", "delete", "--wait", *on_c3, cloud="novalite-admin")
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"

"""One deployment over two "machines" (issue 18, How it is shown), driven with the unmodified
``openstack`` CLI: a compute agent runs in a network namespace of its own and reaches the
controller over a veth pair only -- it shares no loopback with it.

The test makes the namespace and the veth pair (a /30 of 198.18.0.0/15, the benchmarking range:
no private range in the host's namespace), and starts a PRIVATE PostgreSQL and RabbitMQ that
listen on the host end too (the machine's shared ones listen on loopback only). Then:

* servers land on all three hosts; the namespaced compute killed with SIGKILL is ``down`` and gets
  no new server; ``evacuate`` brings its servers ACTIVE elsewhere; started again (in its namespace)
  it cleans its stale guests: the evacuations are ``completed`` and its provider's usage is zero;
* a compute killed mid-build: once it is down, its builds end ACTIVE on other hosts (or ERROR with
  a fault), and it holds no allocation for them; restarted, its stale build messages build nothing;
* 200 parallel creates through ``novalite api --workers 2`` with two conductors: all ACTIVE, no
  "No valid host", and every provider's usage is the sum of its live servers' flavors.

Everything (processes, namespace, veth, database, broker) is removed afterwards. Skips loudly
without root, ``ip``, ``rabbitmq-server`` or ``initdb``; fails under NOVALITE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PW, DEMO_PW, RunningServer, free_port
from tests.e2e.test_distributed import NOVALITE, Deployment
from tests.e2e.test_engine_faults import (
    RABBIT_BIN,
    PrivatePostgres,
    PrivateRabbit,
    _client,
    _image,
    _missing,
    _servers,
)

DOWN_TIME = 6
ADMIN = "novalite-admin"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60, check=check)


class ReachablePostgres(PrivatePostgres):
    """The private cluster, listening on loopback and on ``address`` (trusting its /30)."""

    def __init__(self, home: Path, bindir: Path, address: str, network: str):
        super().__init__(home, bindir)
        self.address, self.network = address, network

    def pg_ctl(self, *args: str) -> None:
        opts = (  # every novalite process may pool 80 connections (docs/deploy.md)
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1,{self.address} "
            "-c max_connections=800"
        )
        self.run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.home / "pg.log"), "-w", *args)

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.home, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.network} trust\n")
        self.pg_ctl("start")

    def create_database(self) -> str:
        import psycopg

        name = "novalite_" + uuid.uuid4().hex[:12]
        dsn = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@{self.address}:{self.port}/{name}"


@dataclass
class Site:
    """The controller's address on the veth pair, the compute namespace and the engines."""

    ns: str
    controller: str  # host end of the veth pair
    pg: ReachablePostgres
    rabbit: PrivateRabbit

    def vhost(self) -> tuple[str, str]:
        name = "novalite-" + uuid.uuid4().hex[:8]
        self.rabbit.ctl("add_vhost", name)
        self.rabbit.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@{self.controller}:{self.rabbit.port}/{name}", name


def _require_root_and_ip() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        msg = "a compute in its own network namespace needs root and iproute2"
        if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
            pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
        pytest.skip("SKIPPED LOUDLY: " + msg)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    _require_root_and_ip()
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        _missing("RabbitMQ (rabbitmq-server)")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _missing("PostgreSQL (initdb)")
    tag = uuid.uuid4().hex[:6]
    ns, veth_host, veth_ns = f"nlmh-{tag}", f"vmh{tag}h", f"vmh{tag}n"
    third = random.randint(200, 250)  # 198.19.<third>.0/30: the benchmarking range
    controller, compute, network = f"198.19.{third}.1", f"198.19.{third}.2", f"198.19.{third}.0/30"
    home = Path(tempfile.mkdtemp(prefix="novalite-mh-"))
    os.chmod(home, 0o755)
    (home / "pg").mkdir()
    (home / "rabbit").mkdir()
    pg = ReachablePostgres(home / "pg", Path(bins[-1]).parent, controller, network)
    rabbit = PrivateRabbit(home / "rabbit")
    (home / "rabbit" / "rabbitmq.conf").write_text("loopback_users = none\n")  # guest from the veth
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
        _ip("link", "set", veth_ns, "netns", ns)
        _ip("addr", "add", f"{controller}/30", "dev", veth_host)
        _ip("link", "set", veth_host, "up")
        _ip("-n", ns, "addr", "add", f"{compute}/30", "dev", veth_ns)
        _ip("-n", ns, "link", "set", veth_ns, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        pg.init()
        rabbit.start()
        yield Site(ns=ns, controller=controller, pg=pg, rabbit=rabbit)
    finally:
        rabbit.stop()
        try:
            pg.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        _ip("link", "del", veth_host, check=False)
        _ip("netns", "del", ns, check=False)
        shutil.rmtree(home, ignore_errors=True)
    assert ns not in _ip("netns", "list").stdout
    assert veth_host not in _ip("-o", "link", "show").stdout


class HostsDeployment(Deployment):
    ns: str = ""

    def start_in_ns(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A process in the compute namespace: its only way out is the veth pair."""
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, NOVALITE, *args, *self.common],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.processes[name]
        proc.send_signal(signal.SIGKILL)  # `ip netns exec` execs novalite: this is the agent
        proc.wait()

    def up(self, api: subprocess.Popen[bytes], url: str) -> None:
        def answers() -> bool:
            assert api.poll() is None, self.logs()
            try:
                return httpx.get(url + "/compute/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait("the API", answers, timeout=120)
        self.cli = RunningServer(
            url=url, env=self.env, process=api, log=self.tmp / "api.log", data_dir=self.tmp
        )

    def run(self, *args: str) -> None:
        """An ``openstack`` command as the admin that prints nothing worth reading."""
        assert self.cli is not None
        self.cli.openstack(*args, cloud=ADMIN)

    def server_rows(self, prefix: str) -> list[dict[str, Any]]:
        return list(self.openstack("server", "list", "--long", "--name", f"^{prefix}"))

    def provider_usage(self, name: str) -> dict[str, int]:
        [rp] = [p for p in self.openstack("resource", "provider", "list") if p["name"] == name]
        rows = self.openstack("resource", "provider", "usage", "show", rp["uuid"])
        return {r["resource_class"]: int(r["usage"]) for r in rows}


@pytest.fixture
def deployment(site: Site, tmp_path: Path) -> Iterator[HostsDeployment]:
    db_url = site.pg.create_database()
    transport_url, vhost = site.vhost()
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
    dep = HostsDeployment(tmp=tmp_path, env=env, common=common)
    dep.ns = site.ns
    try:
        subprocess.run(
            [NOVALITE, "db", "upgrade", *common[:4]], env=env, check=True, capture_output=True, timeout=120
        )
        yield dep
    finally:
        dep.stop_all()
        site.rabbit.ctl("delete_vhost", vhost)


def _usage(n: int) -> dict[str, int]:
    """What ``n`` m1.tiny servers use."""
    return {"VCPU": n, "MEMORY_MB": 512 * n, "DISK_GB": n}


def _create(dep: HostsDeployment, prefix: str, count: int, *extra: str) -> None:
    dep.openstack("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network",
                  "--min", str(count), "--max", str(count), *extra, prefix)  # fmt: skip


def _settled(dep: HostsDeployment, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def done() -> bool:
        rows[:] = dep.server_rows(prefix)
        return bool(rows) and all(r["Status"] in ("ACTIVE", "ERROR") for r in rows)

    dep.wait(f"servers {prefix}* to settle", done, timeout=240)
    return rows


@pytest.mark.timeout(1200)  # a loaded machine; many CLI calls and three service_down_time waits
def test_a_namespaced_compute_dies_is_evacuated_comes_back_and_a_build_host_dies(
    site: Site, deployment: HostsDeployment
) -> None:
    dep = deployment
    port = free_port()
    url = f"http://{site.controller}:{port}"
    api = dep.start("api", "api", "--workers", "2", "--host", site.controller, "--port", str(port))
    for i in (1, 2):
        dep.start(f"conductor{i}", "conductor")
    dep.start("c1", "compute", "--host", "c1")
    dep.start("c2", "compute", "--host", "c2")
    dep.start_in_ns("c3", "compute", "--host", "c3")
    dep.up(api, url)
    hosts = ["c1", "c2", "c3"]
    dep.wait("three compute services up", lambda: dep.compute_states() == dict.fromkeys(hosts, "up"))

    _create(dep, "first", 6, "--wait")
    first = dep.server_rows("first")
    assert {r["Status"] for r in first} == {"ACTIVE"}
    assert {r["Host"] for r in first} == set(hosts)  # c3 builds, from behind its veth pair
    on_c3 = [r["ID"] for r in first if r["Host"] == "c3"]

    dep.kill("c3")
    dep.wait("c3 down", lambda: dep.compute_states().get("c3") == "down", timeout=DOWN_TIME * 5)
    _create(dep, "second", 3, "--wait")
    assert "c3" not in {r["Host"] for r in dep.server_rows("second")}

    for sid in on_c3:
        dep.run("--os-compute-api-version", "2.29", "server", "evacuate", sid)

    def evacuated() -> bool:
        shown = [dep.openstack("server", "show", sid) for sid in on_c3]
        return all(s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] in ("c1", "c2") for s in shown)

    dep.wait("the evacuated servers ACTIVE on c1/c2", evacuated, timeout=120)

    def migrations(sid: str) -> list[tuple[str, str]]:
        listing = ("--os-compute-api-version", "2.23", "server", "migration", "list", "--server", sid)
        return [(r["Type"], r["Status"]) for r in dep.openstack(*listing)]

    assert all(migrations(sid) == [("evacuation", "done")] for sid in on_c3)
    assert dep.provider_usage("c3") == _usage(len(on_c3))  # the evacuations hold c3's share

    dep.start_in_ns("c3", "compute", "--host", "c3")  # back: it destroys its stale copies
    dep.wait("c3 up again", lambda: dep.compute_states().get("c3") == "up")
    dep.wait(
        "the evacuations completed",
        lambda: all(migrations(sid) == [("evacuation", "completed")] for sid in on_c3),
    )
    assert dep.provider_usage("c3") == _usage(0)
    assert sorted(p["name"] for p in dep.openstack("resource", "provider", "list")) == hosts

    dep.run("server", "delete", "--wait", *(r["ID"] for r in dep.server_rows("second")))  # quota room

    # a compute killed mid-build (each build takes 60 s): once it is down, its builds go elsewhere
    _create(dep, "slow", 3, "--property", "novalite:build_delay=60")
    rows: list[dict[str, Any]] = []

    def placed() -> bool:
        rows[:] = dep.server_rows("slow")
        return all(r["Host"] for r in rows)

    dep.wait("the slow builds accepted", placed)
    victim = rows[0]["Host"]
    dep.kill(victim)
    building_there = [r["ID"] for r in rows if r["Host"] == victim and r["Status"] == "BUILD"]
    assert building_there, rows
    slow = _settled(dep, "slow")
    for r in slow:
        if r["ID"] in building_there:
            assert r["Host"] != victim, r
        if r["Status"] == "ERROR":
            assert dep.openstack("server", "show", r["ID"])["fault"]["message"], r
    states = Counter(r["Status"] for r in slow)
    assert states["ACTIVE"] + states["ERROR"] == 3
    live_on_victim = [r for r in dep.openstack("server", "list", "--long") if r["Host"] == victim]
    n = len(live_on_victim)
    assert dep.provider_usage(victim) == _usage(n)

    # the victim comes back: its queued (stale) build messages build nothing there
    if victim == "c3":
        dep.start_in_ns(victim, "compute", "--host", victim)
    else:
        dep.start(victim, "compute", "--host", victim)
    dep.wait(f"{victim} up again", lambda: dep.compute_states().get(victim) == "up")
    again = dep.server_rows("slow")
    assert [(r["ID"], r["Host"], r["Status"]) for r in again] == [
        (r["ID"], r["Host"], r["Status"]) for r in slow
    ]
    assert dep.provider_usage(victim) == _usage(n)
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"


@pytest.mark.timeout(1200)
def test_200_parallel_creates_with_two_conductors_book_every_host_right(
    site: Site, deployment: HostsDeployment
) -> None:
    dep = deployment
    port = free_port()
    url = f"http://{site.controller}:{port}"
    api_proc = dep.start("api", "api", "--workers", "2", "--host", site.controller, "--port", str(port))
    for i in (1, 2):
        dep.start(f"conductor{i}", "conductor")
    dep.start("ca", "compute", "--host", "ca", "--fake-hosts", "5")
    dep.start_in_ns("cb", "compute", "--host", "cb", "--fake-hosts", "5")
    dep.up(api_proc, url)
    dep.wait("ten compute services up", lambda: list(dep.compute_states().values()) == ["up"] * 10)
    api = _client(url, unlimited=True)
    body = {"server": {"flavorRef": "1", "imageRef": _image(api), "networks": "none"}}

    def create(i: int) -> int:
        one = {"server": {**body["server"], "name": f"par{i:03d}"}}
        return api.post("/compute/v2.1/servers", json=one).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(create, range(200)))
    assert Counter(codes) == {202: 200}

    def settled() -> bool:
        return all(s["status"] != "BUILD" for s in _servers(api))

    dep.wait("200 builds to finish", settled, timeout=400)
    servers = _servers(api)
    assert len(servers) == 200
    errors = [s.get("fault", {}).get("message") for s in servers if s["status"] == "ERROR"]
    assert errors == [], errors  # capacity remained for all: not one "No valid host"
    per_host = Counter(s["OS-EXT-SRV-ATTR:host"] for s in servers)
    for rp in dep.openstack("resource", "provider", "list"):
        usages = api.get(
            f"/placement/resource_providers/{rp['uuid']}/usages",
            headers={"OpenStack-API-Version": "placement 1.9"},
        ).json()["usages"]
        n = per_host[rp["name"]]
        assert usages == _usage(n), (rp["name"], usages)
    total = dep.openstack("resource", "usage", "show", dep.openstack("project", "show", "admin")["id"])
    assert {r["resource_class"]: int(r["usage"]) for r in total} == _usage(200)
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"

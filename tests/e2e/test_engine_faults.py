"""Faults of the engines novalite runs on (issue 18, item 4), each on a PRIVATE instance that the test
starts, restarts and removes (the machine's shared PostgreSQL and RabbitMQ are never touched):

* RabbitMQ restarted while 100 builds run through ``novalite api`` + two ``conductor`` + ``compute``:
  every server ends ACTIVE (or ERROR with a fault), none stays in BUILD, none is built twice (one
  allocation on one host, one build event in its create action);
* PostgreSQL restarted under ``novalite serve``: requests during the outage get a 503 with
  Retry-After in the service's envelope (never a 500), and afterwards servers are created again
  without restarting novalite.

The tests skip loudly without ``rabbitmq-server`` / ``initdb`` and fail under
NOVALITE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import MessagingUnavailable, Transport
from tests.conftest import (
    ADMIN_PW,
    DEMO_PW,
    RunningServer,
    drop_postgres,
    free_port,
    postgres_url,
    start_server,
)
from tests.e2e.test_distributed import NOVALITE, Deployment

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def _missing(what: str) -> None:
    msg = f"{what} is not installed; install it to run this test"
    if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
    pytest.skip("SKIPPED LOUDLY: " + msg)


def _wait(what: str, check: Callable[[], bool], timeout: float, logs: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


class PrivateRabbit:
    """A RabbitMQ node of its own (own node name, ports, data and Erlang cookie under ``home``)."""

    def __init__(self, home: Path):
        self.home, self.port = home, free_port()
        self.node = f"novalite-test-{self.port}@localhost"
        (home / "enabled_plugins").write_text("[].\n")
        self.env = dict(
            os.environ,
            HOME=str(home),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_MNESIA_BASE=str(home / "mnesia"),
            RABBITMQ_LOG_BASE=str(home / "log"),
            RABBITMQ_CONFIG_FILE=str(home / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(home / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(home / "pid"),
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        log = (self.home / "server.out").open("ab")
        self.process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:  # await_startup fails at once while the Erlang node is not up yet
            try:
                self.ctl("await_startup", timeout=60)
                return
            except subprocess.CalledProcessError:
                assert self.process.poll() is None, (self.home / "server.out").read_text()[-3000:]
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.ctl("stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.process.kill()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def rabbit() -> Iterator[PrivateRabbit]:
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        _missing("RabbitMQ (rabbitmq-server)")
    home = Path(tempfile.mkdtemp(prefix="novalite-rabbit-"))
    node = PrivateRabbit(home)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (``initdb`` in a temporary directory, its own port), run as
    the ``postgres`` user when the test runs as root (PostgreSQL refuses root)."""

    def __init__(self, home: Path, bindir: Path):
        self.home, self.bindir, self.port = home, bindir, free_port()
        self.data = home / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def run(self, tool: str, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args], check=True, capture_output=True, timeout=timeout
        )

    def pg_ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.home / "pg.log"), "-w", *args)

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.home, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        self.pg_ctl("start")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _missing("PostgreSQL (initdb)")
    home = Path(tempfile.mkdtemp(prefix="novalite-pg-"))
    os.chmod(home, 0o755)
    pg = PrivatePostgres(home, Path(bins[-1]).parent)
    try:
        pg.init()
        yield pg
    finally:
        try:
            pg.pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(home, ignore_errors=True)


def _token(url: str) -> tuple[str, str]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PW}},
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    r = httpx.post(url + "/identity/v3/auth/tokens", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]


def _client(url: str, *, unlimited: bool = False) -> httpx.Client:
    """An admin's client; ``unlimited``: the admin project's instance, core and RAM quotas lifted."""
    token, project = _token(url)
    api = httpx.Client(
        base_url=url, headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.90"}, timeout=60
    )
    if unlimited:
        quota = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
        r = api.put(f"/compute/v2.1/os-quota-sets/{project}", json=quota)
        assert r.status_code == 200, r.text
    return api


def _create(api: httpx.Client, name: str, count: int) -> None:
    server = {"name": name, "flavorRef": "1", "imageRef": _image(api), "networks": "none"}
    body = {"server": {**server, "min_count": count, "max_count": count}}
    r = api.post("/compute/v2.1/servers", json=body)
    assert r.status_code == 202, r.text


def _image(api: httpx.Client) -> str:
    images = api.get("/image/v2/images", params={"name": "novalite-tiny"}).json()["images"]
    return str(images[0]["id"])


def _servers(api: httpx.Client) -> list[dict[str, Any]]:
    r = api.get("/compute/v2.1/servers/detail", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["servers"])


@dataclasses.dataclass(frozen=True)
class Slow(Message):
    METHOD: ClassVar[str] = "slow"
    VERSION: ClassVar[str] = "1.0"


def test_a_broker_outage_is_a_503_for_calls_and_publishes_and_then_passes(rabbit: PrivateRabbit) -> None:
    server = Transport(rabbit.url, namespace="outage.", patience=1.0)
    client = Transport(rabbit.url, namespace="outage.", patience=1.0)
    handling, release = threading.Event(), threading.Event()

    def handler(_topic: str, _msg: Message) -> str:
        handling.set()
        release.wait(30)
        return "done"

    failures: list[BaseException] = []

    def call() -> None:
        try:
            client.call("slow", Slow(), timeout=60)
        except BaseException as exc:  # noqa: BLE001 - what the caller meets is the result
            failures.append(exc)

    try:
        server.serve(["slow"], handler, registry_of([Slow]))
        caller = threading.Thread(target=call)
        caller.start()
        assert handling.wait(30)
        rabbit.stop()  # the call's connection drops while it waits for the answer
        caller.join(60)
        assert len(failures) == 1 and isinstance(failures[0], MessagingUnavailable), failures
        assert failures[0].status == 503 and int(failures[0].headers["Retry-After"]) > 0
        with pytest.raises(MessagingUnavailable):  # no broker within the publish's patience
            client.cast("slow", Slow())
        release.set()
        rabbit.start()
        assert client.call("slow", Slow(), timeout=60) == "done"  # both ends reconnected
    finally:
        release.set()
        client.stop()
        server.stop()


def test_rabbitmq_restarted_during_100_builds_loses_none_and_builds_none_twice(
    rabbit: PrivateRabbit, tmp_path: Path
) -> None:
    db_url = postgres_url()
    clouds = tmp_path / "clouds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NOVALITE_"))}
    env.update(
        NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
        NOVALITE_DEMO_PASSWORD=DEMO_PW,
        NOVALITE_CLOUDS_YAML_PATH=str(clouds),
        NOVALITE_REPORT_INTERVAL="1",
        NOVALITE_SERVICE_DOWN_TIME="60",  # the broker's restart must not look like a dead host
        NOVALITE_MAX_CONCURRENT_BUILDS="4",  # 100 builds of 1 s take long enough to restart in between
        OS_CLIENT_CONFIG_FILE=str(clouds),
        HOME=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    common = ["--data-dir", str(tmp_path / "data"), "--database-url", db_url, "--transport-url", rabbit.url]
    dep = Deployment(tmp=tmp_path, env=env, common=common)
    try:
        subprocess.run(
            [NOVALITE, "db", "upgrade", *common[:4]], env=env, check=True, capture_output=True, timeout=120
        )
        port = free_port()
        api_proc = dep.start("api", "api", "--port", str(port))
        for i in (1, 2):  # two conductors share the work queue: a redelivery may reach either
            dep.start(f"conductor{i}", "conductor")
        dep.start("compute", "compute", "--host", "fc", "--fake-hosts", "2", "--fake-build-delay", "1")
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert api_proc.poll() is None, dep.logs()
            try:
                return httpx.get(url + "/compute/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("the API", answers, 60, dep.logs)
        api = _client(url, unlimited=True)
        dep.cli = RunningServer(
            url=url, env=env, process=api_proc, log=tmp_path / "api.log", data_dir=tmp_path
        )
        _wait("two compute services up", lambda: list(dep.compute_states().values()) == ["up", "up"], 60)
        for i in range(10):
            _create(api, f"load{i}", 10)

        def some_active() -> bool:
            states = Counter(s["status"] for s in _servers(api))
            return states["ACTIVE"] >= 10

        _wait("the first builds", some_active, 120, dep.logs)
        rabbit.stop()  # with builds running, queued in the broker and in the consumers' hands
        time.sleep(2)
        rabbit.start()

        def settled() -> bool:
            return all(s["status"] != "BUILD" for s in _servers(api))

        _wait("every build to finish", settled, 240, dep.logs)
        servers = _servers(api)
        assert len(servers) == 100
        states = Counter(s["status"] for s in servers)
        assert set(states) <= {"ACTIVE", "ERROR"}, states
        for s in servers:
            if s["status"] == "ERROR":
                assert s.get("fault", {}).get("message"), s
                continue
            allocations = api.get(
                f"/placement/allocations/{s['id']}", headers={"OpenStack-API-Version": "placement 1.28"}
            ).json()["allocations"]
            assert len(allocations) == 1, (s["id"], allocations)  # one host, claimed once
            assert s["OS-EXT-SRV-ATTR:host"] in {"fc-1", "fc-2"}
            actions = api.get(f"/compute/v2.1/servers/{s['id']}/os-instance-actions").json()
            create = [a for a in actions["instanceActions"] if a["action"] == "create"]
            assert len(create) == 1, actions
            detail = api.get(f"/compute/v2.1/servers/{s['id']}/os-instance-actions/{create[0]['request_id']}")
            events = [e["event"] for e in detail.json()["instanceAction"]["events"]]
            assert events.count("compute__do_build_and_run_instance") == 1, events
        # the deployment goes on working, as the CLI shows
        dep.openstack("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network",
                      "--wait", "after-restart")  # fmt: skip
        shown = dep.openstack("server", "show", "after-restart", "-c", "status")
        assert shown["status"] == "ACTIVE"
        for name, proc in dep.processes.items():
            assert proc.poll() is None, f"{name} exited\n{dep.logs()}"
    finally:
        dep.stop_all()
        drop_postgres(db_url)


def test_postgresql_restarted_gives_503_then_recovers(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    pg = private_postgres
    srv = start_server(
        tmp_path, "--fake-hosts", "2", "--database-url", pg.url, env_extra={"NOVALITE_REPORT_INTERVAL": "1"}
    )
    try:
        api = _client(srv.url)
        image = _image(api)
        _create(api, "before", 1)
        _wait("the first server", lambda: _servers(api)[0]["status"] == "ACTIVE", 60)
        pg.pg_ctl("stop", "-m", "fast")
        for path in ("/compute/v2.1/servers", "/compute/v2.1/flavors/detail", "/network/v2.0/networks"):
            r = api.get(path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert int(r.headers["Retry-After"]) > 0
            if path.startswith("/compute"):
                assert r.json()["serviceUnavailable"]["code"] == 503, r.text
            else:
                assert r.json()["NeutronError"]["type"] == "DatabaseUnavailable", r.text
        server = {"name": "during", "flavorRef": "1", "imageRef": image, "networks": "none"}
        r = api.post("/compute/v2.1/servers", json={"server": server})
        assert r.status_code == 503 and "Retry-After" in r.headers, r.text
        time.sleep(3)  # heartbeats and periodic tasks meet the outage too, and carry on
        pg.pg_ctl("start")
        listed = srv.openstack("server", "list", "-f", "value", "-c", "Name", cloud="novalite-admin")
        assert listed.stdout.split() == ["before"]
        services = srv.openstack("compute", "service", "list", "--service", "nova-compute", "-f", "value",
                                 "-c", "State", cloud="novalite-admin")  # fmt: skip
        assert services.stdout.split() == ["up", "up"]
        srv.openstack("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny", "--no-network",
                      "--wait", "after", cloud="novalite-admin")  # fmt: skip
        assert srv.process.poll() is None, srv.log.read_text()[-3000:]
    finally:
        srv.process.terminate()
        try:
            srv.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.process.kill()
            srv.process.wait()

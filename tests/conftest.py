"""Shared fixtures.

* ``stack``: an in-process deployment (fresh SQLite in a temp dir, migrated, bootstrapped,
  background services running) with an ``httpx``-style client and tokens for admin and demo.
* ``server``: a real ``novalite serve`` subprocess on a free port (end-to-end tests), with
  the environment the ``openstack`` CLI and openstacksdk need.
* PostgreSQL / RabbitMQ availability: tests that need them skip loudly, unless
  NOVALITE_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
* Running in parallel (pytest-xdist): tests that cannot share the machine with others (QEMU
  guests, the data plane's namespaces, Tempest, benchmarks; by path, ``SERIAL_PATHS``) are
  marked ``serial``; ``--phase=parallel`` collects only the others and ``--phase=serial`` only
  those (scripts/test.sh runs the first with ``-n 3 --dist loadfile``, so that a module's
  module-scoped ``novalite serve`` is started once, and the second without ``-n``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from novalite.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PW = "admin-secret"
DEMO_PW = "demo-secret"


def require_service(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        msg = f"{what} is not reachable at {host}:{port} ({exc}); start it to run this test"
        if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
            pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
        pytest.skip("SKIPPED LOUDLY: " + msg)


def poll_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Whether ``predicate()`` became true within ``timeout`` seconds (asked every ``interval``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def postgres_url() -> str:
    """A fresh PostgreSQL database for one test; dropped by the caller via drop_postgres()."""
    require_service("127.0.0.1", 5432, "PostgreSQL")
    import psycopg

    name = "novalite_test_" + uuid.uuid4().hex[:12]
    user = os.environ.get("NOVALITE_PG_USER", "postgres")
    with psycopg.connect(f"host=127.0.0.1 user={user} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    _CREATED_DATABASES.add(url)
    return url


# databases postgres_url made that no test dropped: dropped when the session ends
_CREATED_DATABASES: set[str] = set()


# paths (from the repository root) of the tests that need the machine to themselves
SERIAL_PATHS = (
    "tests/guest/",  # QEMU guests under TCG: CPU bound
    "tests/netns/",  # namespaces, bridges, dnsmasq; some compare the whole host's state
    "tests/e2e/test_qemu_",
    "tests/e2e/test_tempest.py",  # one long test: its own timeouts
    "tests/e2e/test_bench_",  # benchmarks
    "tests/e2e/test_distributed_hosts.py",  # a namespace, veth pair, private PostgreSQL and RabbitMQ
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--phase",
        choices=("all", "parallel", "serial"),
        default="all",
        help="all tests (default); only those that may share the machine; only the 'serial' ones",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "serial: needs the machine to itself (by path: SERIAL_PATHS)")


def _is_serial_path(path: Path) -> bool:
    path = path.resolve()
    return path.is_relative_to(ROOT) and path.relative_to(ROOT).as_posix().startswith(SERIAL_PATHS)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A phase does not even import the other phase's test files (collection costs minutes)."""
    phase = config.getoption("--phase")
    if phase == "all" or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if (phase == "serial") != _is_serial_path(collection_path) else None


def pytest_itemcollected(item: pytest.Item) -> None:
    if _is_serial_path(item.path):
        item.add_marker(pytest.mark.serial)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    phase = config.getoption("--phase")
    if phase == "all":
        return
    keep = [item for item in items if (phase == "serial") == _is_serial_path(item.path)]
    if len(keep) < len(items):
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for url in list(_CREATED_DATABASES):
        try:
            drop_postgres(url)
        except Exception as exc:  # the server went away: nothing more to do
            print(f"could not drop the test database {url}: {exc}")


def drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[-1]
    user = url.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(f"host=127.0.0.1 user={user} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _CREATED_DATABASES.discard(url)


@dataclass
class Api:
    """A thin client: ``api.get('/compute/v2.1/flavors', token=..., version='2.61')``."""

    client: Any
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        as_: str = "demo",
        version: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        h = {"X-Auth-Token": self.tokens[as_]} if as_ else {}
        if version:
            h["OpenStack-API-Version"] = f"compute {version}"
            h["X-OpenStack-Nova-API-Version"] = version
        h.update(headers or {})
        return self.client.request(method, path, json=json, headers=h, **kw)  # type: ignore[no-any-return]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def token_for(self, user: str, password: str, project: str) -> str:
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
        return str(r.headers["X-Subject-Token"])

    def wait_for(
        self,
        path: str,
        predicate: Any,
        *,
        as_: str = "demo",
        version: str | None = None,
        timeout: float = 30.0,
    ) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(path, as_=as_, version=version)
            if predicate(r):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {path}: {r.status_code} {r.text[:500]}")
            time.sleep(0.05)


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    s = Settings(
        data_dir=tmp,
        admin_password=ADMIN_PW,
        demo_password=DEMO_PW,
        write_clouds_yaml=False,
        port=8774,
        public_url="http://testserver",
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    return s


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Any]:
    """Build in-process stacks with custom settings: ``stack_factory(fake_hosts=3)``."""
    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade

    opened: list[tuple[TestClient, Any, str | None]] = []

    def build(**overrides: Any) -> Api:
        pg = overrides.pop("postgres", False)
        settings = make_settings(tmp_path / f"stack{len(opened)}", **overrides)
        url = postgres_url() if pg else None
        if url:
            settings.database_url = url
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.effective_database_url)
        rt = build_runtime(settings)
        report = bootstrap(rt)
        client = TestClient(create_app(rt), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, rt, url))
        api = Api(client=client, ids=dict(report.ids))
        api.tokens["admin"] = api.token_for("admin", ADMIN_PW, "admin")
        api.tokens["demo"] = api.token_for("demo", DEMO_PW, "demo")
        api.runtime = rt  # type: ignore[attr-defined]
        return api

    yield build
    for client, rt, url in opened:
        client.__exit__(None, None, None)
        rt.db.dispose()
        if url:
            drop_postgres(url)


@pytest.fixture
def stack(stack_factory: Any) -> Api:
    return stack_factory()  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def openstack(
        self, *args: str, cloud: str = "novalite", check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, OS_CLOUD=cloud)
        exe = str(Path(sys.executable).parent / "openstack")
        proc = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"openstack {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sdk(self, cloud: str = "novalite") -> Any:
        import openstack
        from openstack.config import loader

        # load_envvars=False makes openstack ignore OS_CLIENT_CONFIG_FILE: name the file directly
        config = loader.OpenStackConfig(config_files=[self.env["OS_CLIENT_CONFIG_FILE"]], load_envvars=False)
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))


def start_server(tmp: Path, *extra: str, env_extra: dict[str, str] | None = None) -> RunningServer:
    port = free_port()
    data_dir = tmp / "data"
    clouds = tmp / "clouds.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        {
            "NOVALITE_ADMIN_PASSWORD": ADMIN_PW,
            "NOVALITE_DEMO_PASSWORD": DEMO_PW,
            "NOVALITE_CLOUDS_YAML_PATH": str(clouds),
            "OS_CLIENT_CONFIG_FILE": str(clouds),
            "HOME": str(tmp),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(env_extra or {})
    log = tmp / "server.log"
    exe = str(Path(sys.executable).parent / "novalite")
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    # a bound, not a target: on 2 busy cores (tests in parallel) the imports alone may take a minute
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"novalite serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/compute/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(f"novalite serve did not answer:\n{log.read_text()}")
    return RunningServer(url=url, env=env, process=proc, log=log, data_dir=data_dir)


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("serve"), "--fake-hosts", "3")
    yield srv
    stop_server(srv)
    assert srv.process.returncode == 0, f"unclean shutdown:\n{srv.log.read_text()[-3000:]}"

"""``bench/boot.py --distributed``: the many-machines topology on this machine, as separate
processes joined by PostgreSQL and RabbitMQ (issue 18):

    novalite api --workers W  +  C x novalite conductor  +  K x novalite compute --fake-hosts H

Without ``--database-url`` the run starts a PostgreSQL cluster of its own (``initdb`` in a
temporary directory, ``max_connections`` = 80 per process, see docs/deploy.md); without
``--transport-url`` it makes a fresh vhost on the local RabbitMQ (127.0.0.1:5672, ``rabbitmqctl``).
Both are removed afterwards, with the run's data directory and every process it started.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import ADMIN_PW, BenchError, Server, authenticate, free_port

NOVALITE = str(Path(sys.executable).parent / "novalite")


@dataclass
class Distributed(Server):
    """The api process is ``process``; every process of the run is in ``members``."""

    members: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    undo: list[Callable[[], None]] = field(default_factory=list)  # run in reverse by stop()
    topology: str = ""

    def _tree(self) -> list[Any]:
        import psutil

        out: list[Any] = []
        for proc in self.members.values():
            try:
                p = psutil.Process(proc.pid)
                out += [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
        return out

    def logs(self) -> str:
        assert self.data_dir is not None
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.data_dir.glob("*.log"))
        )

    def stop(self) -> None:
        self._stop.set()
        for proc in self.members.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.members.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for step in reversed(self.undo):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - say what was left, then go on cleaning
                print(f"boot.py --distributed: cleaning up: {type(exc).__name__}: {exc}", file=sys.stderr)


def _private_postgres(run: Distributed, processes: int) -> str:
    """A PostgreSQL cluster of the run's own (initdb in a temporary directory, its own port), with
    room for every process's pool (80 connections each, docs/deploy.md): a machine's shared server
    usually allows 100, which the topology's pools would exhaust for everyone on the machine."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise BenchError("no PostgreSQL (initdb) for --distributed: install it or give --database-url")
    bindir, port = Path(found[-1]).parent, free_port()
    home = Path(tempfile.mkdtemp(prefix="novalite-bench-pg-"))
    run.undo.append(lambda: shutil.rmtree(home, ignore_errors=True))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    if as_user:
        shutil.chown(home, "postgres", "postgres")

    def pg(tool: str, *args: str) -> None:
        subprocess.run([*as_user, str(bindir / tool), *args], check=True, capture_output=True, timeout=300)

    pg("initdb", "-D", str(home / "data"), "-A", "trust", "-U", user, "--no-sync")
    opts = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c max_connections={80 * processes + 20}"
    ctl = ["-D", str(home / "data"), "-o", opts, "-l", str(home / "pg.log"), "-w"]
    pg("pg_ctl", *ctl, "start")
    run.undo.append(lambda: pg("pg_ctl", *ctl, "stop", "-m", "fast"))
    return f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"


def _fresh_vhost(run: Distributed) -> str:
    if shutil.which("rabbitmqctl") is None:
        raise BenchError("rabbitmqctl not found: give --transport-url amqp://USER:PW@HOST:5672/VHOST")
    name = "novalite-bench-" + uuid.uuid4().hex[:8]

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)

    try:
        ctl("add_vhost", name)
    except subprocess.CalledProcessError as exc:
        raise BenchError(
            f"rabbitmqctl add_vhost failed: {exc.stderr.decode(errors='replace')[-300:]}"
        ) from exc
    run.undo.append(lambda: ctl("delete_vhost", name))
    ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"amqp://guest:guest@127.0.0.1:5672/{name}"


def start(
    *,
    api_workers: int,
    conductors: int,
    computes: int,
    hosts_per_compute: int,
    database_url: str | None,
    transport_url: str | None,
) -> Distributed:
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated run still stops what it started
    tmp = Path(tempfile.mkdtemp(prefix="novalite-bench-dist-"))
    port = free_port()
    run = Distributed(url=f"http://127.0.0.1:{port}", process=None, data_dir=tmp, started_at=time.monotonic())
    run.undo.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    run.topology = (
        f"distributed: api x{api_workers} workers, {conductors} conductors, {computes} computes x "
        f"{hosts_per_compute} fake hosts, PostgreSQL + RabbitMQ"
    )
    try:
        processes = api_workers + 1 + conductors + computes  # the api's parent opens a pool too
        db_url = database_url or _private_postgres(run, processes)
        broker = transport_url or _fresh_vhost(run)
        env = dict(
            os.environ,
            NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
            NOVALITE_DEMO_PASSWORD=ADMIN_PW,
            NOVALITE_WRITE_CLOUDS_YAML="false",
            NOVALITE_LOG_LEVEL="warning",
        )
        common = ["--data-dir", str(tmp), "--database-url", db_url, "--transport-url", broker]
        subprocess.run(
            [NOVALITE, "db", "upgrade", *common[:4]], env=env, check=True, capture_output=True, timeout=300
        )

        def launch(name: str, *args: str) -> subprocess.Popen[bytes]:
            log = (tmp / f"{name}.log").open("ab")
            proc = subprocess.Popen([NOVALITE, *args, *common], env=env, stdout=log, stderr=subprocess.STDOUT)
            run.members[name] = proc
            return proc

        run.process = launch("api", "api", "--workers", str(api_workers), "--port", str(port))
        for i in range(1, conductors + 1):
            launch(f"conductor{i}", "conductor")
        for i in range(1, computes + 1):
            launch(f"compute{i}", "compute", "--host", f"bench{i}", "--fake-hosts", str(hosts_per_compute))
        _await(run, lambda: httpx.get(run.url + "/compute/", timeout=2).status_code == 200, "the API")
        run.first_answer_s = time.monotonic() - run.started_at
        auth = authenticate(f"{run.url}/identity", "admin", ADMIN_PW, "admin")
        placement = auth.endpoint("placement")
        want = computes * max(1, hosts_per_compute)

        def registered() -> bool:
            r = httpx.get(f"{placement}/resource_providers", headers={"X-Auth-Token": auth.token}, timeout=30)
            return r.status_code == 200 and len(r.json()["resource_providers"]) >= want

        _await(run, registered, f"{want} compute hosts registered")
        run.sample_rss()
        return run
    except BaseException:
        run.stop()
        raise


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _await(run: Distributed, check: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in run.members.items():
            if proc.poll() is not None:
                raise BenchError(
                    f"{name} exited with {proc.returncode} while waiting for {what}\n{run.logs()}"
                )
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise BenchError(f"timed out waiting for {what}\n{run.logs()}")

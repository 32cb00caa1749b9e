"""The API process outlives its engine (issue 16, item 6): while the engine is away a create is
still accepted and a delete still counts (the next engine's recovery carries them out), a request
the next engine could not carry out gets 503 with Retry-After, never 500; a new link replaces the
dead one; restarts back off.

The in-process tests stand the API side of a two-process serve in front of a dead link (its
engine's socket closed), as ``novalite serve`` is between an engine's death and the next start;
the last test kills the engine of a real ``novalite serve``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from novalite.compute import recovery
from novalite.compute.api import ComputeAPI
from novalite.compute.rpcapi import ComputeClient
from novalite.conductor.rpcapi import ConductorClient
from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import PeerUnavailable, Transport
from novalite.services.engine_process import restart_delays
from tests.conftest import Api, start_server, stop_server

SERVERS = "/compute/v2.1/servers"


@pytest.fixture
def engine_away(stack_factory: Any) -> Iterator[tuple[Api, Any]]:
    """A stack whose API side sends to an engine that is gone; ``back()`` brings the engine back
    (the stack's own) and runs its recovery, as a restarted engine does on start."""
    api = stack_factory(fake_hosts=1)
    rt = api.runtime  # type: ignore[attr-defined]
    services = rt.services
    engine = (services.conductor, services.compute_api)
    a, b = socket.socketpair()
    b.close()  # the engine's end: its process died
    dead = Transport("memory://")
    dead.attach_peer(a, name="api")
    services.conductor = ConductorClient(dead)
    services.compute_api = ComputeAPI(rt.db, ComputeClient(dead))

    def back() -> recovery.Report:
        services.conductor, services.compute_api = engine
        report = recovery.rewind(rt.db, ["fake-host-1"])
        return recovery.hand_over(
            rt.db,
            services.require_conductor(),
            services.require_compute_api().compute,
            hosts=["fake-host-1"],
            messages_lost=True,
            report=report,
        )

    try:
        yield api, back
    finally:
        services.conductor, services.compute_api = engine
        dead.stop()


def _create(api: Api, version: str = "2.47", **extra: Any) -> Any:
    image = api.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    body = {"server": {"name": "gap", "flavorRef": "1", "imageRef": image, "networks": "none", **extra}}
    if version < "2.37":
        body["server"].pop("networks")
    return api.post(SERVERS, json=body, version=version)


def _status(api: Api, sid: str) -> tuple[int, str]:
    r = api.get(f"{SERVERS}/{sid}", version="2.47")
    return r.status_code, r.json()["server"]["status"] if r.status_code == 200 else ""


def _wait(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_create_while_the_engine_is_away_is_accepted_and_the_next_engine_builds_it(
    engine_away: tuple[Api, Any],
) -> None:
    api, back = engine_away
    r = _create(api)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert _status(api, sid) == (200, "BUILD")
    report = back()
    assert report.rescheduled == [sid]
    _wait(lambda: _status(api, sid) == (200, "ACTIVE"), "the next engine did not build it")


def test_a_create_with_files_to_inject_while_the_engine_is_away_is_503_with_retry_after(
    engine_away: tuple[Api, Any],
) -> None:
    """Recovery reads only the database, which does not keep the files: refused, nothing stored."""
    api, _back = engine_away
    personality = [{"path": "/etc/motd", "contents": base64.b64encode(b"hello").decode()}]
    r = _create(api, version="2.1", personality=personality)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["serviceUnavailable"]["code"] == 503
    assert api.get(SERVERS).json()["servers"] == []


def test_a_delete_while_the_engine_is_away_is_finished_by_the_next_engine(
    engine_away: tuple[Api, Any],
) -> None:
    api, back = engine_away
    rt = api.runtime  # type: ignore[attr-defined]
    r = _create(api)
    sid = r.json()["server"]["id"]
    back()  # built by the engine ...
    _wait(lambda: _status(api, sid) == (200, "ACTIVE"), "not built")
    services = rt.services
    engine = (services.conductor, services.compute_api)
    a, b = socket.socketpair()
    b.close()
    dead = Transport("memory://")
    dead.attach_peer(a, name="api")
    services.compute_api = ComputeAPI(rt.db, ComputeClient(dead))
    try:  # ... deleted while the engine is away again
        assert api.delete(f"{SERVERS}/{sid}").status_code == 204
        assert (
            api.get(f"{SERVERS}/{sid}", version="2.47").json()["server"]["OS-EXT-STS:task_state"]
            == "deleting"
        )
    finally:
        services.conductor, services.compute_api = engine
        dead.stop()
    report = back()
    assert report.deletes == [sid]
    _wait(lambda: _status(api, sid)[0] == 404, "the next engine did not finish the delete")


def test_a_send_to_a_dead_engine_is_a_503_and_a_connection_error() -> None:
    a, b = socket.socketpair()
    b.close()
    api = Transport("memory://")
    api.attach_peer(a, name="api")
    try:
        with pytest.raises(PeerUnavailable) as caught:
            api.cast("conductor", Echo(text="x"))
        assert caught.value.status == 503
        assert caught.value.headers["Retry-After"]
        assert isinstance(caught.value, ConnectionError)
    finally:
        api.stop()


@dataclasses.dataclass(frozen=True)
class Echo(Message):
    METHOD: ClassVar[str] = "echo"
    VERSION: ClassVar[str] = "1.0"
    text: str = ""


def test_a_new_link_replaces_the_dead_one() -> None:
    topic = f"t.{uuid.uuid4().hex[:8]}"
    a, b = socket.socketpair()
    api, first = Transport("memory://"), Transport("memory://")
    api.attach_peer(a, name="api")
    first.attach_peer(b, name="engine")
    first.stop()  # the first engine dies
    got: list[str] = []
    arrived = threading.Event()

    def handler(_topic: str, msg: Message) -> str:
        assert isinstance(msg, Echo)
        got.append(msg.text)
        arrived.set()
        return msg.text.upper()

    c, d = socket.socketpair()
    second = Transport("memory://")
    try:
        second.attach_peer(d, name="engine")
        second.serve([topic], handler, registry_of([Echo]))
        api.attach_peer(c, name="api")  # what the API process does for the restarted engine
        api.cast(topic, Echo(text="again"))
        assert arrived.wait(10)
        assert got == ["again"]
        assert api.call(topic, Echo(text="call"), timeout=10) == "CALL"
    finally:
        api.stop()
        second.stop()


def test_restarts_back_off_and_the_wait_is_capped() -> None:
    next_delay = restart_delays()
    assert [next_delay() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def _replacement(api_pid: int, dead_pid: int) -> psutil.Process:
    deadline = time.monotonic() + 30
    while True:
        others = [p for p in psutil.Process(api_pid).children() if p.pid != dead_pid]
        if others:
            return others[0]
        assert time.monotonic() < deadline, "no new engine was started"
        time.sleep(0.05)


def test_a_killed_engine_is_replaced_and_the_api_keeps_serving(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "on")
    try:
        (old,) = psutil.Process(srv.process.pid).children()
        for round_ in range(2):  # and the replacement can be replaced in turn
            os.kill(old.pid, signal.SIGKILL)
            old = _replacement(srv.process.pid, old.pid)
            assert srv.process.poll() is None
            out = srv.openstack(
                "server",
                "create",
                "--flavor",
                "m1.tiny",
                "--image",
                "novalite-tiny",
                "--no-network",
                "--wait",
                f"after-restart-{round_}",
                "-f",
                "value",
                "-c",
                "status",
            )
            assert out.stdout.strip() == "ACTIVE"
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    assert not psutil.pid_exists(old.pid) or psutil.Process(old.pid).status() == psutil.STATUS_ZOMBIE


def test_a_restarted_engine_stops_with_a_killed_api_process_and_holds_the_data_dir_until_then(
    tmp_path: Path,
) -> None:
    """The replacement is no fork: it learns of the API process's death through the pipe passed to
    it, and holds the data directory's lock as the forked engine does."""
    srv = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "on")
    try:
        (first,) = psutil.Process(srv.process.pid).children()
        os.kill(first.pid, signal.SIGKILL)
        second = _replacement(srv.process.pid, first.pid)
        assert "novalite.services.engine_child" in second.cmdline()
        lock = tmp_path / "data" / "novalite.pid"
        assert any(f.path == str(lock) for f in second.open_files())
        srv.process.kill()
        srv.process.wait(timeout=10)
        _wait(
            lambda: not psutil.pid_exists(second.pid) or second.status() == psutil.STATUS_ZOMBIE,
            "the restarted engine outlived a killed API process",
        )
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    again = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "on")
    stop_server(again)
    assert again.process.returncode == 0, again.log.read_text()[-3000:]

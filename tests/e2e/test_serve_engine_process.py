"""`novalite serve` with the engine (conductor, scheduler, compute agents) in a second process,
and with everything in one process: both build servers for the real CLI, both stop cleanly, a
dead engine is replaced while the API keeps answering, and the engine does not outlive a dead API
process."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil

from tests.conftest import RunningServer, start_server, stop_server


def _engine_children(srv: RunningServer) -> list[psutil.Process]:
    return psutil.Process(srv.process.pid).children(recursive=True)


def _boot_one(srv: RunningServer, name: str) -> dict[str, str]:
    out = srv.openstack(
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "novalite-tiny",
        "--no-network",
        "--wait",
        name,
        "-f",
        "json",
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_engine_in_its_own_process_builds_answers_calls_and_stops_with_the_api(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--fake-hosts", "2", "--engine-process", "on")
    try:
        children = _engine_children(srv)
        assert len(children) == 1, children
        engine = children[0]
        server = _boot_one(srv, "two-proc")
        assert server["status"] == "ACTIVE"
        host = srv.openstack(
            "server",
            "show",
            server["id"],
            "-f",
            "value",
            "-c",
            "OS-EXT-SRV-ATTR:host",
            cloud="novalite-admin",
        ).stdout.strip()
        assert host.startswith("fake-host-"), host
        # a call that needs an answer from the compute agent crosses to the engine and back
        console = srv.openstack("console", "log", "show", "two-proc").stdout
        assert "two-proc" in console
        srv.openstack("server", "stop", "two-proc")
        deadline = time.monotonic() + 30
        while (
            srv.openstack("server", "show", "two-proc", "-f", "value", "-c", "status").stdout.strip()
            != "SHUTOFF"
        ):
            assert time.monotonic() < deadline, "server did not stop"
            time.sleep(0.2)
        srv.openstack("server", "delete", "--wait", "two-proc")
        assert srv.openstack("server", "list", "-f", "value").stdout.strip() == ""
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    assert _gone(engine.pid, 10), "the engine process outlived the API process"


def test_a_dead_engine_is_replaced_and_the_api_keeps_answering(tmp_path: Path) -> None:
    """Issue 16, item 6: the API process no longer dies with its engine; it starts a new one
    (tests/e2e/test_engine_restart.py and test_crash_recovery.py go further)."""
    srv = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "on")
    try:
        (engine,) = _engine_children(srv)
        os.kill(engine.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not [p for p in _engine_children(srv) if p.pid != engine.pid]:
            assert time.monotonic() < deadline, "no new engine was started"
            time.sleep(0.05)
        assert srv.process.poll() is None
        assert _boot_one(srv, "after-restart")["status"] == "ACTIVE"
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    assert "exited with status -9; starting a new one" in srv.log.read_text()


def test_a_dead_api_process_stops_the_engine(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "on")
    (engine,) = _engine_children(srv)
    srv.process.kill()
    srv.process.wait(timeout=10)
    assert _gone(engine.pid, 15), "the engine process outlived a killed API process"


def test_single_process_serve_builds_too(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--fake-hosts", "1", "--engine-process", "off")
    try:
        assert _engine_children(srv) == []
        assert _boot_one(srv, "one-proc")["status"] == "ACTIVE"
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]

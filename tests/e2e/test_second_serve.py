"""A second `novalite serve` on a live data directory (or database) refuses to start before it
touches anything: it exits 1 with a message naming what is taken and by which pid, and the
running service's in-flight builds all end ACTIVE (its start-up recovery used to mark them ERROR)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, drop_postgres, free_port, postgres_url, start_server, stop_server

BUILD_DELAY = 6  # seconds each build stays in BUILD: longer than the second serve takes to give up


def _second_serve(srv: RunningServer, data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "novalite")
    return subprocess.run(
        [exe, "serve", "--port", str(free_port()), "--data-dir", str(data_dir), *extra],
        env=srv.env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _create_in_flight(srv: RunningServer, count: int) -> tuple[Any, list[str]]:
    conn = srv.sdk()
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    image = conn.image.find_image("novalite-tiny", ignore_missing=False)
    ids = [
        conn.compute.create_server(
            name=f"inflight-{i}",
            flavor_id=flavor.id,
            image_id=image.id,
            networks="none",
            metadata={"novalite:build_delay": str(BUILD_DELAY)},
        ).id
        for i in range(count)
    ]
    return conn, ids


def _statuses(conn: Any, ids: list[str]) -> dict[str, str]:
    return {sid: conn.compute.get_server(sid).status for sid in ids}


def _assert_refused(proc: subprocess.CompletedProcess[str], holder_pid: int, what: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"another novalite serve (pid {holder_pid}" in proc.stderr, out
    assert what in proc.stderr, out
    assert "stop it first" in proc.stderr, out
    assert "Traceback" not in out, out
    assert "listening" not in out, out


def test_second_serve_on_a_live_data_dir_refuses_and_the_builds_finish(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--fake-hosts", "2", "--engine-process", "on")
    try:
        conn, ids = _create_in_flight(srv, 4)
        started = time.monotonic()
        second = _second_serve(srv, srv.data_dir)
        assert time.monotonic() - started < 10, "the second serve took too long to give up"
        _assert_refused(second, srv.process.pid, str(srv.data_dir))
        assert (srv.data_dir / "novalite.pid").read_text().strip() == str(srv.process.pid)
        # the refusal came while the builds were still in flight (so a recovery would have hit them)
        assert set(_statuses(conn, ids).values()) == {"BUILD"}
        deadline = time.monotonic() + 60
        while True:
            statuses = _statuses(conn, ids)
            if set(statuses.values()) <= {"ACTIVE", "ERROR"} or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(statuses.values()) == {"ACTIVE"}, statuses
    finally:
        stop_server(srv)
    assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    # once the first serve (API and engine process) is gone, the data directory is free again
    again = start_server(tmp_path, "--fake-hosts", "2", "--engine-process", "on")
    stop_server(again)
    assert again.process.returncode == 0, again.log.read_text()[-3000:]


def test_second_serve_on_the_same_postgres_database_refuses(tmp_path: Path) -> None:
    url = postgres_url()
    (tmp_path / "a").mkdir()
    try:
        srv = start_server(tmp_path / "a", "--fake-hosts", "1", "--database-url", url)
        try:
            second = _second_serve(srv, tmp_path / "b" / "data", "--database-url", url)
            _assert_refused(second, srv.process.pid, "the database postgresql+psycopg://")
            assert url.rsplit("/", 1)[-1] in second.stderr
            # nothing of the second serve's ran: its data directory holds only its pid file
            assert sorted(p.name for p in (tmp_path / "b" / "data").iterdir()) == ["novalite.pid"]
            conn, ids = _create_in_flight(srv, 1)
            deadline = time.monotonic() + 60
            while _statuses(conn, ids)[ids[0]] == "BUILD" and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _statuses(conn, ids)[ids[0]] == "ACTIVE"
        finally:
            stop_server(srv)
        assert srv.process.returncode == 0, srv.log.read_text()[-3000:]
    finally:
        drop_postgres(url)

"""Issue 18: after a boot-and-delete churn ``novalite serve`` kept its peak memory. Nothing in
Python outlived its server; what stayed were the pooled SQLite connections, each with a page
cache that grows with the database file (and the file with every server ever created), and the
free heap glibc kept. ``memory.IdleRelease`` closes the idle connections once a burst of work is
over (bench/README.md, round 14b). These tests check that by behaviour, never by a size."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any, ClassVar

import pytest
from sqlalchemy import event

from novalite import memory
from novalite.messaging import local
from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import CallTimeout, Transport
from tests.conftest import Api, poll_until

SERVERS = "/compute/v2.1/servers"


@dataclasses.dataclass(frozen=True)
class Slow(Message):
    METHOD: ClassVar[str] = "slow"
    VERSION: ClassVar[str] = "1.0"
    wait: float = 0.0


@pytest.mark.timeout(300)
def test_after_a_churn_and_a_quiet_moment_no_connection_of_the_burst_stays_open(stack_factory: Any) -> None:
    api: Api = stack_factory(fake_hosts=2)
    db = api.runtime.db  # type: ignore[attr-defined]
    # the pool's own events (the connections themselves are not the test's to use: they belong to
    # other threads; they are only kept referenced, so that no id is reused)
    opened: list[Any] = []
    closed: set[int] = set()
    lock = threading.Lock()

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        with lock:
            opened.append(dbapi_conn)

    def on_close(dbapi_conn: Any, _record: Any) -> None:
        with lock:
            closed.add(id(dbapi_conn))

    event.listen(db.engine, "connect", on_connect)
    event.listen(db.engine, "close", on_close)
    # here every quiet moment after any work releases (the service waits for 100 units), so that
    # a connection a unit of work held during one release is closed by the next
    stop = memory.start(db, idle=0.5, min_units=1, poll=0.05)
    try:
        image = api.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
        ids = []
        for i in range(6):
            body = {"server": {"name": f"churn-{i}", "imageRef": image, "flavorRef": "1", "networks": "none"}}
            r = api.post(SERVERS, version="2.37", json=body)
            assert r.status_code == 202, r.text
            ids.append(r.json()["server"]["id"])
        for sid in ids:
            api.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ACTIVE", as_="admin")
        for sid in ids:
            assert api.delete(f"{SERVERS}/{sid}").status_code == 204
        for sid in ids:
            api.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404, as_="admin")
        with lock:
            burst = {id(c) for c in opened}
        assert burst, "the churn opened no database connection"
        # quiet now: every connection the churn used is closed (the ones a unit of work held
        # while the release ran are closed by a later one)
        assert poll_until(lambda: closed.issuperset(burst)), (len(burst), len(closed.intersection(burst)))
        # and the service goes on with fresh connections
        r = api.get(f"{SERVERS}/detail", as_="admin")
        assert r.status_code == 200 and r.json()["servers"] == []
    finally:
        stop()
        event.remove(db.engine, "connect", on_connect)
        event.remove(db.engine, "close", on_close)


def test_a_release_runs_once_per_burst_and_only_after_one() -> None:
    units = [0]
    released: list[int] = []
    watcher = memory.IdleRelease(
        lambda: units[0], lambda: released.append(units[0]), idle=0.2, min_units=10, poll=0.02
    )
    stop = watcher.start()
    try:
        units[0] += 3  # a heartbeat or two: not a burst
        time.sleep(0.6)
        assert released == []
        units[0] += 50  # a burst, then quiet
        assert poll_until(lambda: released == [53], timeout=10)
        time.sleep(0.6)
        assert released == [53]  # quiet goes on: nothing more to release
        units[0] += 40  # the next burst
        assert poll_until(lambda: released == [53, 93], timeout=10)
    finally:
        stop()


def test_a_periodic_task_ticking_through_the_quiet_does_not_hold_the_release_back() -> None:
    units = [0]
    released: list[int] = []
    stop = memory.IdleRelease(
        lambda: units[0], lambda: released.append(units[0]), idle=0.4, min_units=10, poll=0.02
    ).start()
    try:
        units[0] += 50
        deadline = time.monotonic() + 10
        while not released and time.monotonic() < deadline:
            units[0] += 1  # one unit every 0.2 s: at most 2 (plus one) in any 0.4 s
            time.sleep(0.2)
        assert released and released[0] >= 50
    finally:
        stop()


def test_a_failing_release_does_not_stop_the_watcher() -> None:
    units = [0]
    calls: list[int] = []

    def release() -> None:
        calls.append(units[0])
        if len(calls) == 1:
            raise RuntimeError("boom")

    stop = memory.IdleRelease(lambda: units[0], release, idle=0.1, min_units=1, poll=0.02).start()
    try:
        units[0] += 5
        assert poll_until(lambda: len(calls) == 1, timeout=10)
        units[0] += 5
        assert poll_until(lambda: len(calls) == 2, timeout=10)
    finally:
        stop()


def test_an_in_memory_database_keeps_its_connections(tmp_path: Any) -> None:
    """An in-memory SQLite database lives in its connections: releasing them would lose it."""
    from sqlalchemy import text

    from novalite.db.base import Database

    db = Database("sqlite:///:memory:")
    try:
        with db.session() as s:
            s.execute(text("CREATE TABLE t (x INTEGER)"))
            s.execute(text("INSERT INTO t VALUES (1)"))
        db.release_idle_connections()
        with db.reader() as s:
            assert s.execute(text("SELECT x FROM t")).scalar() == 1
    finally:
        db.dispose()


def test_trim_heap_is_harmless_to_call() -> None:
    assert memory.trim_heap() in (True, False)


def test_calls_that_time_out_or_fail_leave_no_reply_queue_behind() -> None:
    """memory://, caller and handler in one process: a reply that comes after the caller gave up
    used to create the reply queue again, and a call whose publish failed kept it (one queue per
    such call, for the life of the process)."""
    transport = Transport("memory://")
    topic = f"t.{uuid.uuid4().hex[:8]}"
    answered = threading.Event()

    def handler(_topic: str, msg: Any) -> str:
        time.sleep(msg.wait)
        answered.set()
        return "done"

    def reply_queues() -> list[str]:
        return [n for n in list(local._queues) if n.startswith(transport.prefix + "reply.")]

    try:
        transport.serve([topic], handler, registry_of([Slow]))
        with pytest.raises(CallTimeout):
            transport.call(topic, Slow(wait=1.0), timeout=0.1)
        assert answered.wait(10)
        time.sleep(0.2)  # the late reply has been handled by now
        assert reply_queues() == []
        assert transport.call(topic, Slow(), timeout=10) == "done"
        assert reply_queues() == []

        def refuse(*_args: Any, **_kwargs: Any) -> None:
            raise ConnectionError("the engine is restarting")

        transport._publish = refuse  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            transport.call(topic, Slow(), timeout=10)
        assert reply_queues() == []
    finally:
        transport.stop()

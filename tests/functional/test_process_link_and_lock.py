"""What joins the two processes of ``novalite serve``: the peer link between two ``memory://``
transports (``messaging.peer``) and the SQLite writers' lock across processes (``db.write_lock``)."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import ClassVar

import pytest

from novalite.db.write_lock import WriteLock
from novalite.messaging import local
from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import CallTimeout, RemoteError, Transport


@dataclasses.dataclass(frozen=True)
class Echo(Message):
    METHOD: ClassVar[str] = "echo"
    VERSION: ClassVar[str] = "1.0"
    text: str = ""
    wait: float = 0.0


def _pair() -> tuple[Transport, Transport, socket.socket, socket.socket]:
    a, b = socket.socketpair()
    api, engine = Transport("memory://"), Transport("memory://")
    api.attach_peer(a, name="api")
    engine.attach_peer(b, name="engine")
    return api, engine, a, b


def test_casts_and_calls_cross_the_link_and_replies_come_back() -> None:
    api, engine, _a, _b = _pair()
    topic = f"t.{uuid.uuid4().hex[:8]}"
    got: list[str] = []
    three = threading.Event()
    release = threading.Event()

    def handler(_topic: str, msg: Message) -> str:
        assert isinstance(msg, Echo)
        if msg.text == "boom":
            raise ValueError("the handler refused")
        if msg.wait:
            release.wait(msg.wait)
        got.append(msg.text)
        if len(got) == 3:
            three.set()
        return msg.text.upper()

    try:
        engine.serve([topic], handler, registry_of([Echo]))
        for word in ("a", "b", "c"):
            api.cast(topic, Echo(text=word))  # nobody serves the topic in "api": it crosses
        assert three.wait(10)
        assert sorted(got) == ["a", "b", "c"]
        assert api.call(topic, Echo(text="hello"), timeout=10) == "HELLO"
        with pytest.raises(RemoteError, match="the handler refused"):
            api.call(topic, Echo(text="boom"), timeout=10)
        # the engine's own calls to its own topics stay in its process
        assert engine.call(topic, Echo(text="local"), timeout=10) == "LOCAL"
        # a reply that comes after the caller gave up is dropped, not queued for nobody
        with pytest.raises(CallTimeout):
            api.call(topic, Echo(text="late", wait=5), timeout=0.2)
        release.set()
        assert api.call(topic, Echo(text="after"), timeout=10) == "AFTER"
        assert not [n for n in list(local._queues) if n.startswith(api.prefix + "reply.")]
    finally:
        release.set()
        api.stop()
        engine.stop()


def test_a_closed_link_is_reported_once_and_refuses_sends() -> None:
    a, b = socket.socketpair()
    api, engine = Transport("memory://"), Transport("memory://")
    closed = threading.Event()
    api.attach_peer(a, on_closed=closed.set, name="api")
    engine.attach_peer(b, name="engine")
    engine.stop()  # the engine process goes away
    assert closed.wait(10)
    with pytest.raises(ConnectionError):
        api.cast("conductor", Echo(text="x"))
    api.stop()


_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from novalite.db.write_lock import WriteLock
    lock = WriteLock()
    lock.share_with_processes(Path(sys.argv[1]))
    with lock:
        print("held", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
""")


def test_the_write_lock_excludes_writers_of_another_process(tmp_path: Path) -> None:
    db_file = tmp_path / "novalite.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        lock = WriteLock()
        lock.share_with_processes(db_file)
        acquired = threading.Event()

        def take() -> None:
            with lock:
                with lock:  # re-entrant inside one thread, as nested units of work need
                    acquired.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not acquired.wait(0.5), "took the lock while another process held it"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert acquired.wait(10)
        taker.join(10)
        assert holder.stdout.readline().strip() == "released"
        # and once free, this process can take and give it back at will
        with lock:
            pass
        assert (tmp_path / "novalite.db.writelock").exists()
    finally:
        holder.kill()
        holder.wait()


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from novalite.db.write_lock import WriteLock
    lock = WriteLock()
    lock.share_with_processes(Path(sys.argv[1]), priority=sys.argv[2] == "priority")
    print("waiting", flush=True)
    with lock:
        print("held", flush=True)
        sys.stdin.readline()
""")


def _wait_until_gate_closed(gate: Path) -> None:
    import fcntl
    import os
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if gate.exists():
            fd = os.open(gate, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                return
            finally:
                os.close(fd)
        time.sleep(0.005)
    raise AssertionError("the priority writer never closed the gate")


def test_a_priority_writer_goes_before_writers_that_queued_later(tmp_path: Path) -> None:
    """The API process's writers (priority) wait for at most the write in progress: a background
    writer that arrives while one waits does not get in first, though flock itself has no order."""
    db_file = tmp_path / "novalite.db"

    def writer(kind: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db_file), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    procs: list[subprocess.Popen[str]] = []
    try:
        holder = writer("background")
        procs.append(holder)
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "waiting"
        assert holder.stdout.readline().strip() == "held"
        urgent = WriteLock()
        urgent.share_with_processes(db_file, priority=True)
        order: list[str] = []
        done = threading.Event()

        def take() -> None:
            with urgent:
                order.append("priority")
            done.set()

        taker = threading.Thread(target=take)
        taker.start()
        _wait_until_gate_closed(tmp_path / "novalite.db.writegate")  # the priority writer is queued
        late = writer("background")
        procs.append(late)
        assert late.stdout is not None and late.stdin is not None
        assert late.stdout.readline().strip() == "waiting"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert done.wait(10)
        order.append("background")  # the late writer may only get in now
        assert late.stdout.readline().strip() == "held"
        assert order == ["priority", "background"]
        late.stdin.write("go\n")
        late.stdin.flush()
        taker.join(10)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_serve_forks_only_without_other_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork with another thread running could copy a held lock into the engine: with ``auto``
    serve stays in one process then, with ``on`` it refuses to start; ``off`` never forks."""
    from types import SimpleNamespace

    from novalite.db.base import Database
    from novalite.services import engine_process

    monkeypatch.setattr(engine_process, "THREAD_WAIT", 0.05)
    db = Database(f"sqlite:///{tmp_path / 'novalite.db'}")
    release = threading.Event()
    busy = threading.Thread(target=release.wait, name="still-busy")
    busy.start()
    try:

        def runtime(choice: str) -> SimpleNamespace:
            return SimpleNamespace(
                settings=SimpleNamespace(engine_process=choice), db=db, role="all", peer=None
            )

        auto = runtime("auto")
        assert engine_process.start(auto) is None
        assert auto.role == "all"
        with pytest.raises(engine_process.ThreadsRunning, match="still-busy"):
            engine_process.start(runtime("on"))
        assert engine_process.start(runtime("off")) is None
        with pytest.raises(ValueError, match="auto, on or off"):
            engine_process.start(runtime("sometimes"))
        memory = SimpleNamespace(
            settings=SimpleNamespace(engine_process="on"), db=Database("sqlite://"), role="all", peer=None
        )
        with pytest.raises(ValueError, match="in-memory"):
            engine_process.start(memory)
    finally:
        release.set()
        busy.join()
        db.dispose()

"""Issue 18 (memory after a churn): under ``novalite serve`` the builds the compute agents could not
start yet waited in their executor's queue as decoded messages, futures and locks, thousands of
them at the peak of a burst; their small objects left Python's arenas fragmented once the burst was
over. A memory:// consumer now hands its executor at most ``LOCAL_IN_FLIGHT`` casts; the rest wait
as JSON text (bench/README.md, round 15). These tests check the behaviour: the bound, that nothing
is lost or reordered, that a call is answered at once however many casts wait, that a message that
cannot be decoded does not end the consumer, and that the link between the two processes of
``serve`` carries bodies undecoded."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from novalite.messaging import local
from novalite.messaging import transport as transport_mod
from novalite.messaging.messages import Message, registry_of
from novalite.messaging.peer import PeerLink
from novalite.messaging.transport import Transport
from tests.conftest import poll_until


@dataclasses.dataclass(frozen=True)
class Work(Message):
    METHOD: ClassVar[str] = "work"
    VERSION: ClassVar[str] = "1.0"
    n: int = 0
    hold: bool = False


def test_a_backlog_waits_encoded_on_the_queue_and_every_message_is_handled_in_order() -> None:
    transport = Transport("memory://")
    topic = f"t.{uuid.uuid4().hex[:8]}"
    gate = threading.Event()
    handled: list[int] = []
    lock = threading.Lock()
    executor = ThreadPoolExecutor(max_workers=1)
    total = transport_mod.LOCAL_IN_FLIGHT * 4

    def handler(_topic: str, msg: Any) -> None:
        gate.wait(30)
        with lock:
            handled.append(msg.n)

    try:
        server = transport.serve([topic], handler, registry_of([Work]), executor=executor)
        for n in range(total):
            transport.cast(topic, Work(n=n))
        waiting = total - transport_mod.LOCAL_IN_FLIGHT
        # the executor gets its slots' worth; the rest wait, encoded, for a slot
        assert poll_until(lambda: len(server._parked) == waiting)
        time.sleep(0.3)
        assert len(server._parked) == waiting
        assert executor._work_queue.qsize() < transport_mod.LOCAL_IN_FLIGHT
        parked = list(server._parked)
        assert all(isinstance(e.data, str | bytes) for e in parked)  # JSON text, not decoded trees
        assert parked[0].body["args"]["n"] == transport_mod.LOCAL_IN_FLIGHT
        gate.set()
        assert poll_until(lambda: len(handled) == total)
        assert handled == list(range(total))  # one worker: the order they were sent in
        assert not server._parked and server._local_in_flight == 0
    finally:
        gate.set()
        transport.stop()
        executor.shutdown(wait=True)


def test_a_call_is_answered_at_once_however_many_castspoll_until(monkeypatch: Any) -> None:
    """Calls are answered on the consumer's thread: a full set of slots and a backlog of casts
    behind them must not hold a call up (under ``serve`` one consumer serves every host, and the
    API's calls, such as a console's output, time out after 30 s), nor must handlers that wait
    for a call this same consumer answers."""
    monkeypatch.setattr(transport_mod, "LOCAL_IN_FLIGHT", 2)
    transport = Transport("memory://")
    topic = f"t.{uuid.uuid4().hex[:8]}"
    executor = ThreadPoolExecutor(max_workers=2)
    gate = threading.Event()
    answers: list[Any] = []
    handled: list[int] = []

    def handler(_topic: str, msg: Any) -> Any:
        if msg.hold:  # a cast that waits for a call on its own topic
            answers.append(transport.call(topic, Work(n=msg.n + 100), timeout=10))
            gate.wait(30)
        handled.append(msg.n)
        return msg.n

    try:
        server = transport.serve([topic], handler, registry_of([Work]), executor=executor)
        transport.cast(topic, Work(n=1, hold=True))
        transport.cast(topic, Work(n=2, hold=True))
        for n in range(3, 13):
            transport.cast(topic, Work(n=n))
        assert poll_until(lambda: len(answers) == 2)  # their calls were answered with every slot taken
        assert sorted(answers) == [101, 102]
        assert poll_until(lambda: len(server._parked) == 10)
        assert transport.call(topic, Work(n=7), timeout=10) == 7  # ahead of the ten waiting casts
        gate.set()
        assert poll_until(lambda: sorted(n for n in handled if n < 100) == sorted([*range(1, 13), 7]))
    finally:
        gate.set()
        transport.stop()
        executor.shutdown(wait=True)


def test_a_message_that_cannot_be_decoded_is_dropped_and_the_consumer_goes_on() -> None:
    transport = Transport("memory://")
    topic = f"t.{uuid.uuid4().hex[:8]}"
    executor = ThreadPoolExecutor(max_workers=1)
    handled: list[int] = []
    try:
        transport.serve(
            [topic], lambda _t, msg: handled.append(msg.n), registry_of([Work]), executor=executor
        )
        local.deliver(transport.prefix + topic, b"\xff not json", {})  # as a broken frame's body
        local.deliver(transport.prefix + topic, b"[1, 2]", {})  # JSON, but no message
        transport.cast(topic, Work(n=5))
        assert poll_until(lambda: handled == [5])
    finally:
        transport.stop()
        executor.shutdown(wait=True)


def test_the_link_between_the_two_processes_hands_bodies_on_undecoded() -> None:
    a, b = socket.socketpair()
    got: list[tuple[str, bytes, dict[str, Any]]] = []
    arrived = threading.Event()

    def deliver(name: str, data: bytes, props: dict[str, Any]) -> None:
        got.append((name, data, props))
        arrived.set()

    sender = PeerLink(a, lambda *_: None, name="a")
    receiver = PeerLink(b, deliver, name="b")
    receiver.start()
    try:
        body = {"method": "work", "args": {"n": 7, "text": "é" * 3000}}
        sender.send("conductor", body, {"reply_to": "reply.x"})
        assert arrived.wait(10)
        name, data, props = got[0]
        assert (name, props) == ("conductor", {"reply_to": "reply.x"})
        assert isinstance(data, bytes)
        assert local.Envelope(name, data, props).body == body
    finally:
        sender.close()
        receiver.close()

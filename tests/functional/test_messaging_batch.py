"""``Transport.batch``: casts published together in one confirm window, over a real RabbitMQ."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Any, ClassVar

import pytest

from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import Transport
from tests.conftest import require_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclasses.dataclass(frozen=True)
class Note(Message):
    METHOD: ClassVar[str] = "note"
    VERSION: ClassVar[str] = "1.0"
    n: int = 0


class Collector:
    def __init__(self, want: int):
        self.seen: list[int] = []
        self.want = want
        self.done = threading.Event()

    def __call__(self, _topic: str, msg: Message) -> Any:
        assert isinstance(msg, Note)
        if msg.n < 0:
            return -msg.n
        self.seen.append(msg.n)
        if len(self.seen) >= self.want:
            self.done.set()
        return None


def test_casts_of_a_batch_all_arrive_and_wait_for_a_late_consumer() -> None:
    require_service("127.0.0.1", 5672, "RabbitMQ")
    namespace = f"batchtest{uuid.uuid4().hex[:8]}."
    sender = Transport(AMQP_URL, namespace=namespace)
    receiver = Transport(AMQP_URL, namespace=namespace)
    topic = "notes"
    try:
        with sender.batch():
            for i in range(50):
                sender.cast(topic, Note(n=i))
            with sender.batch():  # nested: part of the outer window
                sender.cast(topic, Note(n=50))
        # the window was confirmed before batch() returned: the messages wait in the durable queue
        # (declared by the publish)
        collector = Collector(51)
        receiver.serve([topic], collector, registry_of([Note]))
        assert collector.done.wait(30)
        assert sorted(collector.seen) == list(range(51))
    finally:
        sender.stop()
        receiver.stop()


def test_a_call_inside_a_batch_is_answered_and_a_failing_block_still_publishes() -> None:
    require_service("127.0.0.1", 5672, "RabbitMQ")
    transport = Transport(AMQP_URL, namespace=f"batchtest{uuid.uuid4().hex[:8]}.")
    topic = "notes"
    collector = Collector(3)
    try:
        transport.serve([topic], collector, registry_of([Note]))
        with pytest.raises(RuntimeError, match="stop here"), transport.batch():
            transport.cast(topic, Note(n=1))
            assert transport.call(topic, Note(n=-7), timeout=20) == 7  # not held back by the batch
            transport.cast(topic, Note(n=2))
            transport.cast(topic, Note(n=3))
            raise RuntimeError("stop here")
        assert collector.done.wait(30)
        assert sorted(collector.seen) == [1, 2, 3]
    finally:
        transport.stop()


def test_batch_in_memory_publishes_at_once() -> None:
    transport = Transport("memory://")
    collector = Collector(2)
    try:
        transport.serve(["notes"], collector, registry_of([Note]))
        with transport.batch():
            transport.cast("notes", Note(n=1))
            transport.cast("notes", Note(n=2))
            assert collector.done.wait(30)  # memory:// does not wait for the block's end
        assert sorted(collector.seen) == [1, 2]
    finally:
        transport.stop()

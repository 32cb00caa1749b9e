"""The messaging layer over a real RabbitMQ (and the same contract over memory://)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any, ClassVar

import pytest

from novalite.messaging.messages import Message, registry_of
from novalite.messaging.transport import RemoteError, Transport
from tests.conftest import require_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclasses.dataclass(frozen=True)
class Add(Message):
    METHOD: ClassVar[str] = "add"
    VERSION: ClassVar[str] = "1.1"
    a: int = 0
    b: int = 0


@dataclasses.dataclass(frozen=True)
class AddV2(Message):
    METHOD: ClassVar[str] = "add"
    VERSION: ClassVar[str] = "2.0"
    a: int = 0


def _exercise(transport: Transport) -> None:
    topic = f"test.{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    done = threading.Event()

    def handler(_topic: str, msg: Message) -> int:
        assert isinstance(msg, Add)
        if msg.b < 0:
            raise ValueError("negative")
        seen.append(msg.a + msg.b)
        if len(seen) == 3:
            done.set()
        return msg.a + msg.b

    transport.serve([topic], handler, registry_of([Add]))
    for i in range(3):
        transport.cast(topic, Add(a=i, b=10))
    assert done.wait(20)
    assert sorted(seen) == [10, 11, 12]
    assert transport.call(topic, Add(a=2, b=3), timeout=20) == 5
    with pytest.raises(RemoteError, match="negative"):
        transport.call(topic, Add(a=1, b=-1), timeout=20)
    with pytest.raises(RemoteError, match="not supported"):
        transport.call(topic, AddV2(a=1), timeout=20)  # newer major version: refused, not misread


def test_cast_and_call_over_rabbitmq() -> None:
    require_service("127.0.0.1", 5672, "RabbitMQ")
    transport = Transport(AMQP_URL)
    try:
        _exercise(transport)
    finally:
        transport.stop()
    transport.stop()  # safe twice


def test_cast_and_call_in_memory() -> None:
    transport = Transport("memory://")
    try:
        _exercise(transport)
    finally:
        transport.stop()


def test_builds_and_deletes_over_rabbitmq(stack_factory: Any) -> None:
    from tests.functional import build_helpers as h

    require_service("127.0.0.1", 5672, "RabbitMQ")
    api = stack_factory(fake_hosts=2, transport_url=AMQP_URL)
    uuids = h.create_instances(api, count=2)
    rows = [h.wait_for(api, u, h.settled) for u in uuids]
    assert {r.vm_state for r in rows} == {"active"}
    for u in uuids:
        api.runtime.services.require_compute_api().delete_instance(h.demo_ctx(api), u)
    for u in uuids:
        h.wait_for(api, u, lambda r: r.deleted)
    h.usage_matches_live_servers(api)


def test_casts_finished_out_of_order_are_all_acknowledged_once() -> None:
    """Casts handled on an executor finish out of order (the first one last): every one is
    acknowledged (runs of them together), none twice (a double acknowledgement closes the
    channel), and a consumer started afterwards on the same queue receives nothing again."""
    from concurrent.futures import ThreadPoolExecutor

    require_service("127.0.0.1", 5672, "RabbitMQ")
    topic = f"test.{uuid.uuid4().hex[:8]}"
    count = 40
    release_first = threading.Event()
    seen: list[int] = []
    done = threading.Event()

    def handler(_topic: str, msg: Message) -> None:
        assert isinstance(msg, Add)
        if msg.a == 0:
            release_first.wait(20)
        seen.append(msg.a)
        if len(seen) == count:
            done.set()
        if len(seen) == count - 1:
            release_first.set()

    executor = ThreadPoolExecutor(4)
    transport = Transport(AMQP_URL)
    try:
        transport.serve([topic], handler, registry_of([Add]), executor=executor)
        for i in range(count):
            transport.cast(topic, Add(a=i, b=0))
        assert done.wait(30)
        assert sorted(seen) == list(range(count))
        time.sleep(0.5)  # the consumer's next passes send the acknowledgements
    finally:
        transport.stop()
        executor.shutdown()
    again: list[int] = []
    second = Transport(AMQP_URL)
    try:
        second.serve([topic], lambda _t, m: again.append(m.a), registry_of([Add]))  # type: ignore[attr-defined]
        time.sleep(1.0)
        assert again == []
    finally:
        second.stop()
        with second.connection() as conn:
            second.queue(topic)(conn.default_channel).delete()

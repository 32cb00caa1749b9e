"""``memory://`` without kombu: named queues inside this process.

A published message is put on a ``queue.Queue`` and the consumer thread blocked on it wakes at
once (kombu's memory transport polls every ``polling_interval``). Bodies are kept as their JSON
text until a consumer takes them, as on a broker: the handler gets its own copy, a payload that
would not survive ``amqp://`` (tuples, datetimes, objects) does not pass unnoticed here either,
and a backlog of thousands of messages is thousands of strings, not thousands of object trees
(freed strings go back to the C allocator, which can return them to the system; the small objects
of a decoded body stay in Python's arenas, scattered, long after the backlog is gone). Several consumers
of one queue compete for its messages, as on a broker. Queue names carry the transport's private
prefix, so deployments never meet.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_queues: dict[str, queue.Queue[Envelope]] = {}


@dataclass(frozen=True)
class Envelope:
    """One message: the queue name it was sent to, its body as JSON text and its properties
    (``reply_to``)."""

    routing_key: str
    data: str | bytes
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, Any]:
        """The body, decoded (a fresh copy on each access)."""
        body: dict[str, Any] = json.loads(self.data)
        return body


def _encode(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def named(name: str) -> queue.Queue[Envelope]:
    """The queue called ``name`` (created on first use)."""
    with _lock:
        q = _queues.get(name)
        if q is None:
            q = _queues[name] = queue.Queue()
        return q


def publish(name: str, body: dict[str, Any], properties: dict[str, Any]) -> None:
    named(name).put(Envelope(name, _encode(body), dict(properties)))


def publish_if_waited(name: str, body: dict[str, Any], properties: dict[str, Any]) -> bool:
    """``publish`` to a queue that exists (a call's reply queue while its caller waits); False,
    and nothing kept, once the caller gave up and dropped it."""
    envelope = Envelope(name, _encode(body), dict(properties))
    with _lock:
        q = _queues.get(name)
        if q is None:
            return False
        q.put(envelope)  # unbounded: never blocks while the lock is held
    return True


def deliver(name: str, data: bytes, properties: dict[str, Any]) -> None:
    """Like ``publish`` for a body already encoded (as it came from a peer)."""
    named(name).put(Envelope(name, data, dict(properties)))


def exists(name: str) -> bool:
    with _lock:
        return name in _queues


def get(name: str, timeout: float) -> Envelope | None:
    """The next message on ``name``, or None after ``timeout`` seconds."""
    try:
        return named(name).get(timeout=timeout)
    except queue.Empty:
        return None


def drop(prefix: str) -> None:
    """Forget every queue whose name starts with ``prefix`` (a stopped transport's)."""
    with _lock:
        for name in [n for n in _queues if n.startswith(prefix)]:
            del _queues[name]

"""The messaging layer: a small wrapper around kombu.

* ``memory://`` -- queues inside this process (threads only, ``messaging.local``: a message wakes
  the consumer at once, no kombu); each ``Transport`` gets its own queue-name prefix so several
  deployments in one process (tests) never share queues.
* ``amqp://user:pw@host:port/VHOST`` -- RabbitMQ; queue names are shared across processes. They
  live under the URL's vhost and start with the transport's ``namespace`` (``Settings.messaging_prefix``),
  so two deployments on one broker never consume each other's messages. Messages of a host-routed
  topic (``compute``) that name a ``host`` are published as ``compute.<host>``: a separate compute
  process (``novalite compute --host NAME``) consumes only its hosts' queues, while a consumer of the
  plain topic (the all-in-one engine) receives every host's (a topic exchange binding ``compute.#``).

``cast(topic, msg)`` publishes and returns at once. ``call(topic, msg)`` waits for the reply
(on a private reply queue). ``serve(topics, handler, registry)`` starts a consumer thread;
with an ``executor`` casts are handed to it so a slow handler does not block the queue.
``stop()`` stops every consumer thread and closes the connections; it is safe to call twice.

``attach_peer(sock)`` (``memory://`` only) joins this process's queues to another process's
(``messaging.peer``): what no consumer here serves goes there, replies find their way back.
While that process is gone (the engine is being restarted), sending to it raises
``PeerUnavailable`` (a 503 with Retry-After when it reaches the API); ``attach_peer`` with the new
process's socket replaces the dead link.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import kombu

from novalite.errors import EngineNotRunning
from novalite.messaging import local
from novalite.messaging.messages import IncompatibleMessage, Message, decode, encode
from novalite.messaging.peer import PeerLink

LOG = logging.getLogger(__name__)
Handler = Callable[[str, Message], Any]
QUEUE_EXPIRES = 3600.0
# topics whose messages go to ``<topic>.<msg.host>`` on a broker (one queue per compute host)
HOST_ROUTED = frozenset({"compute"})


class RemoteError(RuntimeError):
    """The server side of a ``call`` raised; the message names the exception."""


class CallTimeout(TimeoutError):
    pass


class PeerUnavailable(EngineNotRunning, ConnectionError):
    """The process at the other end of the peer link is gone (being restarted): nothing was sent.
    A 503 with Retry-After when it reaches the API; a ``ConnectionError`` to other callers."""


class Transport:
    def __init__(self, url: str = "memory://", *, namespace: str | None = None):
        self.url = url
        self.is_memory = url.startswith("memory")
        self.prefix = (
            namespace if namespace is not None else (uuid.uuid4().hex[:8] + "." if self.is_memory else "")
        )
        if any(c in self.prefix for c in "*# "):
            raise ValueError(f"messaging prefix {self.prefix!r} must not contain '*', '#' or spaces")
        self._options = {"polling_interval": 0.005} if self.is_memory else {}
        self._lock = threading.Lock()
        self._producer_conn: kombu.Connection | None = None
        self._servers: list[Server] = []
        self._stopped = False
        self._peer: PeerLink | None = None
        self._served: set[str] = set()  # topics a consumer of this process serves
        self._remote_replies: set[str] = set()  # reply queues of calls that came over the peer link

    @functools.cached_property
    def exchange(self) -> kombu.Exchange:
        """Made on first use: only a broker needs it (memory:// never does), and making the first one
        loads much of kombu (a noticeable part of the start-up's CPU)."""
        return kombu.Exchange(self.prefix + "novalite-rpc", type="topic", durable=False)

    def connection(self) -> kombu.Connection:
        return kombu.Connection(self.url, transport_options=dict(self._options), heartbeat=0)

    def queue(self, topic: str, *, auto_delete: bool = False) -> kombu.Queue:
        """On a broker, a queue nobody uses for ``QUEUE_EXPIRES`` seconds is removed (test runs,
        retired deployments); while a deployment runs its consumers keep it alive."""
        name = self.prefix + topic
        expires = None if self.is_memory else QUEUE_EXPIRES
        key = name + ".#" if topic in HOST_ROUTED else name  # "compute.#" matches "compute" too
        return kombu.Queue(
            name, self.exchange, routing_key=key, durable=False, auto_delete=auto_delete, expires=expires
        )

    def route(self, topic: str, msg: Message) -> str:
        """The topic ``msg`` is published to: ``compute.<host>`` for a host-routed topic on a broker."""
        host = getattr(msg, "host", None)
        if self.is_memory or topic not in HOST_ROUTED or not isinstance(host, str) or not host:
            return topic
        return f"{topic}.{host}"

    def attach_peer(
        self, sock: socket.socket, *, on_closed: Callable[[], None] | None = None, name: str = "peer"
    ) -> None:
        """``memory://``: messages for topics no consumer of this process serves go to the process
        at the other end of ``sock``, and the messages it sends arrive on this process's queues."""
        if not self.is_memory:
            raise ValueError("a peer link joins memory:// transports only")
        link = PeerLink(sock, self._from_peer, on_closed=on_closed, name=name)
        with self._lock:
            old, self._peer = self._peer, link
            self._remote_replies.clear()  # calls that came over the old link died with its process
        link.start()
        if old is not None:
            old.close()

    def _from_peer(self, name: str, body: dict[str, Any], props: dict[str, Any]) -> None:
        reply_to = props.get("reply_to")
        if reply_to:
            with self._lock:
                self._remote_replies.add(str(reply_to))
        elif name.startswith("reply.") and not local.exists(self.prefix + name):
            return  # the caller gave up waiting: nobody will read this reply
        local.deliver(self.prefix + name, body, props)

    def _publish(self, topic: str, body: dict[str, Any], **props: Any) -> None:
        if self.is_memory:
            peer = self._peer
            if peer is not None and topic not in self._served:
                try:
                    peer.send(topic, body, props)
                except OSError as exc:  # the other process died (ConnectionError, EPIPE)
                    LOG.info("cannot send %s to the other novalite process: %s", topic, exc)
                    raise PeerUnavailable("The compute engine is restarting; retry shortly.") from exc
                return
            local.publish(self.prefix + topic, body, props)
            return
        with self._lock:
            if self._producer_conn is None:
                self._producer_conn = self.connection()
            producer = self._producer_conn.Producer(serializer="json")
            # a host's queue is declared by its compute process (messages wait there while it is
            # down); declaring it here would fill queues nobody reads under the all-in-one engine
            routed = "." in topic and topic.split(".", 1)[0] in HOST_ROUTED
            producer.publish(
                body,
                exchange=self.exchange,
                routing_key=self.prefix + topic,
                declare=[self.exchange] if routed else [self.queue(topic)],
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.1},
                **props,
            )

    def cast(self, topic: str, msg: Message) -> None:
        """Fire and forget."""
        self._publish(self.route(topic, msg), encode(msg))

    def call(self, topic: str, msg: Message, *, timeout: float = 30.0) -> Any:
        """Send and wait for the handler's return value (JSON); raises ``RemoteError``/``CallTimeout``."""
        reply_topic = f"reply.{uuid.uuid4().hex}"
        topic = self.route(topic, msg)
        if self.is_memory:
            return self._call_local(topic, msg, reply_topic, timeout)
        reply_queue = self.queue(reply_topic, auto_delete=True)
        result: dict[str, Any] = {}
        with self.connection() as conn:
            reply_queue(conn.default_channel).declare()
            with conn.Consumer(
                [reply_queue], accept=["json"], callbacks=[lambda b, m: (result.update(b), m.ack())]
            ):
                self._publish(topic, encode(msg), reply_to=reply_topic)
                self._wait(conn, result, timeout)
            reply_queue(conn.default_channel).delete()
        if "error" in result:
            raise RemoteError(result["error"])
        return result.get("result")

    def _call_local(self, topic: str, msg: Message, reply_topic: str, timeout: float) -> Any:
        name = self.prefix + reply_topic
        local.named(name)
        self._publish(topic, encode(msg), reply_to=reply_topic)
        envelope = local.get(name, timeout)
        local.drop(name)
        if envelope is None:
            raise CallTimeout(f"no reply within {timeout:.1f}s")
        if "error" in envelope.body:
            raise RemoteError(envelope.body["error"])
        return envelope.body.get("result")

    @staticmethod
    def _wait(conn: kombu.Connection, result: dict[str, Any], timeout: float) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not result:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(f"no reply within {timeout:.1f}s")
            try:
                conn.drain_events(timeout=min(left, 0.5))
            except TimeoutError:
                continue

    def reply(self, reply_to: str, body: dict[str, Any]) -> None:
        if self.is_memory:
            peer = self._peer
            if peer is not None:
                with self._lock:
                    remote = reply_to in self._remote_replies
                    self._remote_replies.discard(reply_to)
                if remote:
                    try:
                        peer.send(reply_to, body, {})
                    except OSError:  # the caller's process is gone: nobody waits for this reply
                        LOG.info("dropping a reply: the other novalite process is gone")
                    return
            local.publish(self.prefix + reply_to, body, {})
            return
        with self._lock:
            if self._producer_conn is None:
                self._producer_conn = self.connection()
            self._producer_conn.Producer(serializer="json").publish(
                body, exchange=self.exchange, routing_key=self.prefix + reply_to, retry=True
            )

    def serve(
        self,
        topics: Sequence[str],
        handler: Handler,
        registry: Mapping[str, type[Message]],
        *,
        executor: Executor | None = None,
        name: str = "",
    ) -> Server:
        """Start a consumer thread for ``topics``; ``handler(topic, payload)`` runs each message."""
        server = Server(
            self, list(topics), handler, registry, executor=executor, name=name or ",".join(topics)
        )
        self._served.update(topics)
        self._servers.append(server)
        server.start()
        return server

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for server in self._servers:
            server.stop()
        self._servers.clear()
        if self._peer is not None:
            self._peer.close()
        if self.is_memory:
            local.drop(self.prefix)
        with self._lock:
            if self._producer_conn is not None:
                self._producer_conn.release()
                self._producer_conn = None


class Server:
    """One consumer thread. Calls (messages with ``reply_to``) run inline and are answered."""

    def __init__(
        self,
        transport: Transport,
        topics: list[str],
        handler: Handler,
        registry: Mapping[str, type[Message]],
        *,
        executor: Executor | None,
        name: str,
    ):
        self.transport, self.topics, self.handler, self.registry = transport, topics, handler, registry
        self.executor = executor
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rpc-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        if self.transport.is_memory:
            self._run_local()
            return
        while not self._stop.is_set():
            try:
                with self.transport.connection() as conn:
                    queues = [self.transport.queue(t) for t in self.topics]
                    with conn.Consumer(
                        queues, accept=["json"], callbacks=[self._on_message], prefetch_count=64
                    ):
                        self._ready.set()
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=0.2)
                            except TimeoutError:
                                continue
            except Exception:  # connection lost: retry until stopped
                if self._stop.is_set():
                    break
                LOG.exception("consumer %s lost its connection; reconnecting", self.topics)
                self._stop.wait(1.0)

    def _run_local(self) -> None:
        """memory://: block on the in-process queue(s); a message is handled the moment it arrives."""
        names = [self.transport.prefix + t for t in self.topics]
        wait = 0.2 if len(names) == 1 else 0.02
        self._ready.set()
        while not self._stop.is_set():
            for name in names:
                envelope = local.get(name, wait)
                if envelope is not None:
                    self._dispatch(envelope.routing_key, envelope.body, envelope.properties.get("reply_to"))

    def _on_message(self, body: dict[str, Any], message: Any) -> None:
        message.ack()
        self._dispatch(
            str(message.delivery_info.get("routing_key", "")), body, message.properties.get("reply_to")
        )

    def _dispatch(self, routing_key: str, body: dict[str, Any], reply_to: str | None) -> None:
        topic = routing_key[len(self.transport.prefix) :]
        try:
            payload = decode(body, self.registry)
        except IncompatibleMessage as exc:
            LOG.error("dropping message on %s: %s", topic, exc)
            if reply_to:
                self.transport.reply(reply_to, {"error": str(exc)})
            return
        if reply_to:
            self._answer(topic, payload, reply_to)
        elif self.executor is not None:
            self.executor.submit(self._run_cast, topic, payload)
        else:
            self._run_cast(topic, payload)

    def _answer(self, topic: str, payload: Message, reply_to: str) -> None:
        try:
            result = self.handler(topic, payload)
            self.transport.reply(reply_to, {"result": result})
        except Exception as exc:
            self.transport.reply(reply_to, {"error": f"{type(exc).__name__}: {exc}"})

    def _run_cast(self, topic: str, payload: Message) -> None:
        try:
            self.handler(topic, payload)
        except Exception:
            LOG.exception("handler for %s on %s failed", payload.METHOD, topic)

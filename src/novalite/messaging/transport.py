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
``with transport.batch():`` holds this thread's casts to a broker until the block ends, then
publishes them in one publisher-confirm window (one wait for all the confirms).

``attach_peer(sock)`` (``memory://`` only) joins this process's queues to another process's
(``messaging.peer``): what no consumer here serves goes there, replies find their way back.
While that process is gone (the engine is being restarted), sending to it raises
``PeerUnavailable`` (a 503 with Retry-After when it reaches the API); ``attach_peer`` with the new
process's socket replaces the dead link.

Broker faults (``amqp://``; docs/deploy.md, "Faults"): the exchange and the work queues are durable
and work messages persistent, published with publisher confirms (a publish returns once the broker
holds the message). A publish that meets a dead connection reconnects with back-off for up to
``patience`` seconds (the API's short, the conductor's and compute agents' long: their casts carry
builds already claimed) and then raises ``MessagingUnavailable`` (a 503 with Retry-After at the
API). A ``call`` whose connection drops while it waits raises the same. Consumers acknowledge a
message after its handler ran (at least once: a message being handled when the connection dropped
is delivered again, and the handlers do nothing for work already done) and reconnect with back-off.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import amqp.exceptions
import kombu
import kombu.exceptions

from novalite.errors import EngineNotRunning
from novalite.messaging import local
from novalite.messaging.messages import IncompatibleMessage, Message, decode, encode
from novalite.messaging.peer import PeerLink

LOG = logging.getLogger(__name__)
Handler = Callable[[str, Message], Any]
QUEUE_EXPIRES = 3600.0
# topics whose messages go to ``<topic>.<msg.host>`` on a broker (one queue per compute host)
HOST_ROUTED = frozenset({"compute"})
# the topic exchange every queue is bound to; durable (a broker restart keeps it and its bindings).
# Not "novalite-rpc", the name of the non-durable exchange of earlier versions: RabbitMQ refuses to
# redeclare an exchange with another durability, so both can live on one broker during an upgrade
EXCHANGE = "novalite-rpc-durable"
# reconnect back-off (seconds): the first wait, then doubled up to the last
RETRY_FIRST, RETRY_MAX = 0.2, 5.0
# how long a publish keeps reconnecting before it gives up (MessagingUnavailable)
PUBLISH_PATIENCE = 15.0
REPLY_PATIENCE = 2.0
CONNECT_TIMEOUT = 2.0
# messages a consumer holds unacknowledged (handled ones are acknowledged at least every ACK_EVERY s)
PREFETCH = 256
ACK_EVERY = 0.05
# memory://: casts a consumer hands its executor at once (the rest wait, encoded, for a slot)
LOCAL_IN_FLIGHT = 64
# handled messages a consumer may hold back behind one still running before it acknowledges them
# one by one (a contiguous run of handled messages goes out as one ``multiple`` acknowledgement)
ACK_HELD_MAX = 64
# what a broker restart or a dropped connection raises (OSError covers refused and reset sockets)
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.ChannelError,
    amqp.exceptions.MessageNacked,
)


def backoff(first: float = RETRY_FIRST, last: float = RETRY_MAX) -> Iterator[float]:
    """The waits between reconnection attempts: ``first``, doubled each time, at most ``last``."""
    wait = first
    while True:
        yield wait
        wait = min(last, wait * 2)


class RemoteError(RuntimeError):
    """The server side of a ``call`` raised; the message names the exception."""


class CallTimeout(TimeoutError):
    pass


class PeerUnavailable(EngineNotRunning, ConnectionError):
    """The process at the other end of the peer link is gone (being restarted): nothing was sent.
    A 503 with Retry-After when it reaches the API; a ``ConnectionError`` to other callers."""


class MessagingUnavailable(EngineNotRunning, ConnectionError):
    """The message broker cannot be reached (restarting, network down) and did not come back within
    the publish's patience, or the connection of a ``call`` dropped while it waited for the reply.
    A 503 with Retry-After when it reaches the API."""


class Transport:
    def __init__(
        self, url: str = "memory://", *, namespace: str | None = None, patience: float = PUBLISH_PATIENCE
    ):
        self.url = url
        self.patience = patience
        self.is_memory = url.startswith("memory")
        self.prefix = (
            namespace if namespace is not None else (uuid.uuid4().hex[:8] + "." if self.is_memory else "")
        )
        if any(c in self.prefix for c in "*# "):
            raise ValueError(f"messaging prefix {self.prefix!r} must not contain '*', '#' or spaces")
        # a broker: publisher confirms; one connection attempt per call (the back-off is ours)
        self._options: dict[str, Any] = (
            {"polling_interval": 0.005} if self.is_memory else {"confirm_publish": True, "max_retries": 1}
        )
        self._lock = threading.Lock()
        self._producer_conn: kombu.Connection | None = None
        # casts collected by ``batch()`` (per thread); the channel their confirm windows use
        self._batches = threading.local()
        self._window: Any = None
        self._window_seq = 0
        self._servers: list[Server] = []
        self._stopped = False
        self._peer: PeerLink | None = None
        self._served: set[str] = set()  # topics a consumer of this process serves
        self._remote_replies: set[str] = set()  # reply queues of calls that came over the peer link

    @functools.cached_property
    def exchange(self) -> kombu.Exchange:
        """Made on first use: only a broker needs it (memory:// never does), and making the first one
        loads much of kombu (a noticeable part of the start-up's CPU)."""
        return kombu.Exchange(self.prefix + EXCHANGE, type="topic", durable=not self.is_memory)

    def connection(self) -> kombu.Connection:
        return kombu.Connection(
            self.url, transport_options=dict(self._options), heartbeat=0, connect_timeout=CONNECT_TIMEOUT
        )

    def queue(self, topic: str, *, auto_delete: bool = False) -> kombu.Queue:
        """On a broker, a queue nobody uses for ``QUEUE_EXPIRES`` seconds is removed (test runs,
        retired deployments); while a deployment runs its consumers keep it alive. Work queues are
        durable (they survive a broker restart); a call's reply queue is not."""
        name = self.prefix + topic
        expires = None if self.is_memory else QUEUE_EXPIRES
        key = name + ".#" if topic in HOST_ROUTED else name  # "compute.#" matches "compute" too
        return kombu.Queue(
            name,
            self.exchange,
            routing_key=key,
            durable=not (self.is_memory or auto_delete),
            auto_delete=auto_delete,
            expires=expires,
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

    def _from_peer(self, name: str, body: bytes, props: dict[str, Any]) -> None:
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
        # a host's queue is declared by its compute process (messages wait there while it is
        # down); declaring it here would fill queues nobody reads under the all-in-one engine
        routed = "." in topic and topic.split(".", 1)[0] in HOST_ROUTED
        declare = [self.exchange] if routed else [self.queue(topic)]
        pending: list[tuple[dict[str, Any], dict[str, Any]]] | None = getattr(self._batches, "items", None)
        if pending is not None and not props:
            pending.append((body, {"routing_key": self.prefix + topic, "declare": declare}))
            return
        self._publish_to_broker(
            body, routing_key=self.prefix + topic, declare=declare, delivery_mode=2, **props
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Casts this thread makes inside the block are published together when it ends (also when
        it raises): persistent and confirmed as ever, but in one confirm window, so the broker's
        confirms of all of them cost one wait instead of a round trip each. ``memory://``, calls
        and nested blocks publish as without it. Raises ``MessagingUnavailable`` as ``cast`` does."""
        if self.is_memory or getattr(self._batches, "items", None) is not None:
            yield
            return
        self._batches.items = []
        try:
            yield
        finally:
            items, self._batches.items = self._batches.items, None
            if items:
                self._publish_window(items)

    def _publish_window(self, items: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Publish ``items`` on the window channel, then wait until the broker confirmed every one
        (a nack or a broker error publishes them all again after a back-off, within ``patience``:
        at least once, as a single publish that lost its confirm)."""
        deadline = time.monotonic() + self.patience
        waits = backoff()
        while True:
            try:
                with self._lock:
                    self._publish_window_locked(items)
                return
            except BROKER_ERRORS as exc:
                self._drop_producer()
                wait = next(waits)
                if self._stopped or time.monotonic() + wait > deadline:
                    LOG.error("cannot publish to the message broker: %s", exc)
                    raise MessagingUnavailable("The message broker is unavailable; retry shortly.") from exc
                LOG.warning("publish to the message broker failed (%s); retrying in %.1fs", exc, wait)
                time.sleep(wait)

    def _publish_window_locked(self, items: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        if self._producer_conn is None:
            self._producer_conn = self.connection()
        if self._window is None:
            self._window = _Window(self._producer_conn.channel())
        window = self._window
        producer = kombu.Producer(
            window.channel, exchange=self.exchange, serializer="json", auto_declare=False
        )
        for body, kwargs in items:
            window.expect()
            producer.publish(body, exchange=self.exchange, delivery_mode=2, **kwargs)
        window.wait(self.patience)

    def _publish_to_broker(
        self, body: dict[str, Any], *, patience: float | None = None, **kwargs: Any
    ) -> None:
        """Publish on the shared producer connection (confirmed by the broker); on a broker error
        reconnect with back-off for up to ``patience`` seconds, then raise ``MessagingUnavailable``."""
        deadline = time.monotonic() + (self.patience if patience is None else patience)
        waits = backoff()
        while True:
            try:
                with self._lock:
                    if self._producer_conn is None:
                        self._producer_conn = self.connection()
                    producer = self._producer_conn.Producer(serializer="json")
                    producer.publish(body, exchange=self.exchange, **kwargs)
                return
            except BROKER_ERRORS as exc:
                self._drop_producer()
                wait = next(waits)
                if self._stopped or time.monotonic() + wait > deadline:
                    LOG.error("cannot publish to the message broker: %s", exc)
                    raise MessagingUnavailable("The message broker is unavailable; retry shortly.") from exc
                LOG.warning("publish to the message broker failed (%s); retrying in %.1fs", exc, wait)
                time.sleep(wait)

    def _drop_producer(self) -> None:
        with self._lock:
            conn, self._producer_conn = self._producer_conn, None
            self._window = None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: S110 - the connection is dead already
                pass

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
        try:
            with self.connection() as conn:
                reply_queue(conn.default_channel).declare()
                with conn.Consumer(
                    [reply_queue], accept=["json"], callbacks=[lambda b, m: (result.update(b), m.ack())]
                ):
                    self._publish(topic, encode(msg), reply_to=reply_topic)
                    self._wait(conn, result, timeout)
                reply_queue(conn.default_channel).delete()
        except BROKER_ERRORS as exc:  # the broker went away before the answer came
            LOG.warning("call %s on %s lost its broker connection: %s", msg.METHOD, topic, exc)
            raise MessagingUnavailable("The message broker is unavailable; retry shortly.") from exc
        if "error" in result:
            raise RemoteError(result["error"])
        return result.get("result")

    def _call_local(self, topic: str, msg: Message, reply_topic: str, timeout: float) -> Any:
        name = self.prefix + reply_topic
        local.named(name)
        try:
            self._publish(topic, encode(msg), reply_to=reply_topic)
            envelope = local.get(name, timeout)
        finally:  # also when the publish failed (the engine is restarting): nobody will answer
            local.drop(name)
        if envelope is None:
            raise CallTimeout(f"no reply within {timeout:.1f}s")
        body = envelope.body
        if "error" in body:
            raise RemoteError(body["error"])
        return body.get("result")

    @staticmethod
    def _wait(conn: kombu.Connection, result: dict[str, Any], timeout: float) -> None:
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
            local.publish_if_waited(self.prefix + reply_to, body, {})  # the caller may have given up
            return
        # a caller cut off from the broker has given up (its reply queue went with its connection)
        self._publish_to_broker(body, routing_key=self.prefix + reply_to, patience=REPLY_PATIENCE)

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
            self._window = None


class _Window:
    """A producer channel of its own for ``Transport.batch``: it publishes without waiting for each
    confirm, and records the broker's confirms whenever their frames arrive (also while another
    wait on the connection reads them: a declare, a single publish's confirm), so ``wait`` returns
    once every message published on it so far is confirmed."""

    def __init__(self, channel: Any):
        channel.confirm_select()
        channel.basic_publish = channel._basic_publish  # the confirms are awaited in ``wait``
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)
        self.channel = channel
        self.seq = 0  # the last delivery tag used (tags count the channel's publishes from 1)
        self.unconfirmed: set[int] = set()
        self.nacked = False

    def expect(self) -> None:
        self.seq += 1
        self.unconfirmed.add(self.seq)

    def _ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.unconfirmed.difference_update([t for t in self.unconfirmed if t <= tag])
        else:
            self.unconfirmed.discard(tag)

    def _nack(self, tag: int, multiple: bool) -> None:
        self._ack(tag, multiple)
        self.nacked = True

    def wait(self, timeout: float) -> None:
        while self.unconfirmed and not self.nacked:
            self.channel.connection.drain_events(timeout=timeout)
        if self.nacked:
            raise amqp.exceptions.MessageNacked()


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
        self._generation = 0  # counts the consumer's connections (delivery tags are per channel)
        self._done: collections.deque[tuple[int, Any]] = collections.deque()  # handled, to ack
        # the consumer thread's own bookkeeping of the current connection's delivery tags
        self._unacked: collections.deque[int] = collections.deque()  # delivered, in order
        self._handled: dict[int, Any] = {}  # handled, not acknowledged yet: tag -> message
        self._acked_alone: set[int] = set()  # acknowledged one by one, still in _unacked
        self._stop = threading.Event()
        self._ready = threading.Event()
        # memory://: casts handed to the executor, and those waiting for a slot (``_run_local``)
        self._local_lock = threading.Lock()
        self._local_in_flight = 0
        self._parked: collections.deque[local.Envelope] = collections.deque()
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
        waits = backoff()
        while not self._stop.is_set():
            try:
                with self.transport.connection() as conn:
                    queues = [self.transport.queue(t) for t in self.topics]
                    with conn.Consumer(
                        queues, accept=["json"], callbacks=[self._on_message], prefetch_count=PREFETCH
                    ):
                        if self._ready.is_set():
                            LOG.info("consumer %s reconnected to the message broker", self.topics)
                        self._ready.set()
                        waits = backoff()
                        self._generation += 1
                        generation = self._generation
                        self._unacked.clear()
                        self._handled.clear()
                        self._acked_alone.clear()
                        idle = False
                        while not self._stop.is_set():
                            self._ack_done(generation, idle=idle)
                            try:
                                conn.drain_events(timeout=ACK_EVERY)
                                idle = False
                            except TimeoutError:
                                idle = True
            except Exception as exc:  # connection lost: reconnect with back-off until stopped
                if self._stop.is_set():
                    break
                wait = next(waits)
                LOG.warning(
                    "consumer %s lost its broker connection (%s: %s); reconnecting in %.1fs",
                    self.topics,
                    type(exc).__name__,
                    exc,
                    wait,
                )
                self._stop.wait(wait)

    def _ack_done(self, generation: int, *, idle: bool = False) -> None:
        """Acknowledge the messages whose handlers finished (on this thread: a channel is not
        thread-safe). Those received on an earlier connection are redelivered by the broker.

        The longest run of handled messages from the oldest one delivered goes out as one
        acknowledgement with ``multiple`` (it covers every tag up to the last of the run).
        Handled messages behind one still running wait for it, unless the consumer is idle or
        ``ACK_HELD_MAX`` of them wait: then they are acknowledged one by one, so a long handler
        neither holds the prefetch window nor leaves finished work to be delivered again."""
        while self._done:
            gen, message = self._done.popleft()
            if gen == generation:
                self._handled[message.delivery_tag] = message
        last = None
        unacked = self._unacked
        while unacked:
            tag = unacked[0]
            if tag in self._acked_alone:
                self._acked_alone.discard(tag)
            elif tag in self._handled:
                last = self._handled.pop(tag)
            else:
                break
            unacked.popleft()
        if last is not None:
            last.ack(multiple=True)
        if self._handled and (idle or len(self._handled) >= ACK_HELD_MAX):
            for tag, message in self._handled.items():
                message.ack()
                self._acked_alone.add(tag)
            self._handled.clear()

    def _run_local(self) -> None:
        """memory://: block on the in-process queue(s); a message is handled the moment it arrives.

        Calls are answered on this thread at once. With an executor, at most ``LOCAL_IN_FLIGHT``
        casts are handed to it at once (the in-process counterpart of the broker's prefetch); the
        others are parked, still encoded, and each cast that ends hands the next parked one over
        (``_local_slot_done``). So a backlog waits as JSON text rather than as decoded messages
        and futures in the executor's queue, and this thread never waits for a slot: a call is
        never held up behind a backlog of casts, even one whose handlers wait for that call."""
        names = [self.transport.prefix + t for t in self.topics]
        wait = 0.2 if len(names) == 1 else 0.02
        self._ready.set()
        while not self._stop.is_set():
            for name in names:
                envelope = local.get(name, wait)
                if envelope is None:
                    continue
                if self.executor is None or envelope.properties.get("reply_to"):
                    self._handle_local(envelope)
                    continue
                with self._local_lock:
                    if self._local_in_flight >= LOCAL_IN_FLIGHT:
                        self._parked.append(envelope)
                        continue
                    self._local_in_flight += 1
                if not self._handle_local(envelope):
                    self._local_slot_done()  # not handed to the executor: its slot is free again

    def _handle_local(self, envelope: local.Envelope) -> bool:
        """Decode and dispatch one in-process message; True when it went to the executor (its
        end calls ``_local_slot_done``). A message that cannot be decoded or dispatched is logged
        and dropped: it must not end the consumer."""
        try:
            return self._dispatch(
                envelope.routing_key,
                envelope.body,
                envelope.properties.get("reply_to"),
                on_done=self._local_slot_done,
            )
        except Exception:
            LOG.exception("dropping a message on %s", envelope.routing_key)
            return False

    def _local_slot_done(self) -> None:
        """A cast handed to the executor ended: the next parked one takes its slot."""
        while True:
            with self._local_lock:
                if not self._parked:
                    self._local_in_flight -= 1
                    return
                envelope = self._parked.popleft()
            if self._handle_local(envelope):
                return

    def _on_message(self, body: dict[str, Any], message: Any) -> None:
        """A broker's message is acknowledged once handled: a cast run by the executor is queued
        for ``_ack_done``; a call, a cast run inline and a message that cannot be decoded at once."""
        generation = self._generation
        self._unacked.append(message.delivery_tag)
        submitted = self._dispatch(
            str(message.delivery_info.get("routing_key", "")),
            body,
            message.properties.get("reply_to"),
            on_done=lambda: self._done.append((generation, message)),
        )
        if not submitted:  # handled here: acknowledged with its neighbours by the next _ack_done
            self._handled[message.delivery_tag] = message

    def _dispatch(
        self,
        routing_key: str,
        body: dict[str, Any],
        reply_to: str | None,
        on_done: Callable[[], None] | None = None,
    ) -> bool:
        """Handle one message; True when it went to the executor (``on_done`` runs when it ends)."""
        topic = routing_key[len(self.transport.prefix) :]
        try:
            payload = decode(body, self.registry)
        except IncompatibleMessage as exc:
            LOG.error("dropping message on %s: %s", topic, exc)
            if reply_to:
                self.transport.reply(reply_to, {"error": str(exc)})
            return False
        if reply_to:
            self._answer(topic, payload, reply_to)
        elif self.executor is not None:
            future = self.executor.submit(self._run_cast, topic, payload)
            if on_done is not None:
                future.add_done_callback(lambda _f: on_done())
            return True
        else:
            self._run_cast(topic, payload)
        return False

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

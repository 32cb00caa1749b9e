"""A message link between the two processes of ``novalite serve`` on one machine.

With ``memory://`` and the engine in its own process (``services.engine_process``), the API
process and the engine process each keep their in-process queues (``messaging.local``) and are
joined by a connected socket pair made before the fork. A message for a topic that no consumer of
this process serves crosses the link, and so does the reply to a call that came over it. The
receiving side puts what arrives on its own queue of that name, so consumers and callers see no
difference from ``memory://`` in one process.

Frames: a 4-byte big-endian length of the rest, a 4-byte big-endian length of the head, the head
(the JSON of ``{"n": queue name, "p": properties}``), then the body's JSON. The body is handed on
undecoded: it waits on the receiving queue as text until a consumer takes it. Names carry no
transport prefix: each side adds its own. A reader thread per link
delivers the frames; when the other process goes away (end of stream), ``on_closed`` is called.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
_HEADER = struct.Struct(">I")
Deliver = Callable[[str, bytes, dict[str, Any]], None]


class PeerLink:
    def __init__(
        self,
        sock: socket.socket,
        deliver: Deliver,
        *,
        on_closed: Callable[[], None] | None = None,
        name: str = "peer",
    ):
        self._sock = sock
        self._deliver = deliver
        self._on_closed = on_closed
        self._send_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, name=f"link-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, name: str, body: dict[str, Any], properties: dict[str, Any]) -> None:
        head = json.dumps({"n": name, "p": properties}, separators=(",", ":")).encode()
        data = json.dumps(body, separators=(",", ":")).encode()
        frame = b"".join(
            (_HEADER.pack(_HEADER.size + len(head) + len(data)), _HEADER.pack(len(head)), head, data)
        )
        with self._send_lock:
            if self._closed:
                raise ConnectionError("the link to the other novalite process is closed")
            self._sock.sendall(frame)

    def close(self) -> None:
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)

    def _read_exactly(self, n: int) -> bytes | None:
        chunks: list[bytes] = []
        while n:
            try:
                chunk = self._sock.recv(min(n, 1 << 20))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_loop(self) -> None:
        while True:
            header = self._read_exactly(_HEADER.size)
            if header is None:
                break
            data = self._read_exactly(_HEADER.unpack(header)[0])
            if data is None:
                break
            try:
                size = _HEADER.unpack_from(data)[0]
                head = json.loads(data[_HEADER.size : _HEADER.size + size])
                self._deliver(str(head["n"]), data[_HEADER.size + size :], head.get("p") or {})
            except Exception:  # one bad frame must not cut the link
                LOG.exception("dropping a frame from the other novalite process")
        was_closed = self._closed
        self._closed = True
        if not was_closed and self._on_closed is not None:
            self._on_closed()

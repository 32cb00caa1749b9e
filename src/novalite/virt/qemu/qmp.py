"""A small synchronous QMP client (QEMU Machine Protocol over a unix socket).

One connection is one session: greeting, ``qmp_capabilities``, then ``execute`` calls that
return the command's ``return`` value or raise :class:`QMPError` with QEMU's error class
and description. Asynchronous events (``STOP``, ``RESUME``, ``SHUTDOWN``, ``POWERDOWN``,
...) that arrive meanwhile are kept in ``events``. Every read is bounded by the timeout
and by ``MAX_LINE`` bytes, so a wedged or hostile QEMU cannot hang or exhaust the caller.

QEMU serves one client at a time on a ``server=on,wait=off`` socket: a second client gets
no greeting until the first leaves, so callers keep sessions short (``with QMPClient(...)``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

MAX_LINE = 4 * 1024 * 1024
MAX_EVENTS = 256
SUN_PATH_MAX = 100


class QMPError(RuntimeError):
    """QEMU answered a command with an error, or the session failed."""

    def __init__(self, message: str, *, error_class: str = "", desc: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class
        self.desc = desc


class QMPClient:
    def __init__(self, path: Path | str, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> QMPClient:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, read the greeting and leave capabilities negotiation mode."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        dir_fd = -1
        try:
            target = self.path
            if len(target.encode()) > SUN_PATH_MAX:
                # sun_path holds ~107 bytes: reach a deep socket through its directory's fd
                dir_fd = os.open(os.path.dirname(target) or ".", os.O_PATH | os.O_DIRECTORY)
                target = f"/proc/self/fd/{dir_fd}/{os.path.basename(target)}"
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise QMPError(f"cannot connect to QMP socket {self.path}: {exc}") from exc
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)
        self._sock = sock
        try:
            greeting = self._read_message()
            if "QMP" not in greeting:
                raise QMPError(f"unexpected QMP greeting: {str(greeting)[:200]}")
            self.greeting = greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    def execute(self, command: str, fds: Sequence[int] = (), **arguments: Any) -> Any:
        """Run ``command``; return its ``return`` value. ``fds`` are passed with SCM_RIGHTS
        (for ``getfd``/``add-fd``)."""
        if self._sock is None:
            raise QMPError("QMP session is not connected")
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        data = json.dumps(message).encode() + b"\n"
        try:
            if fds:
                socket.send_fds(self._sock, [data], list(fds))
            else:
                self._sock.sendall(data)
        except OSError as exc:
            raise QMPError(f"QMP {command}: cannot send: {exc}") from exc
        while True:
            answer = self._read_message()
            if "event" in answer:
                self._keep_event(answer)
                continue
            if "error" in answer:
                error = answer["error"] if isinstance(answer["error"], dict) else {}
                cls, desc = str(error.get("class", "")), str(error.get("desc", ""))
                raise QMPError(f"QMP {command} failed: {cls}: {desc}", error_class=cls, desc=desc)
            if "return" in answer:
                return answer["return"]

    def wait_event(self, names: Sequence[str], timeout: float) -> dict[str, Any] | None:
        """The first kept or arriving event named in ``names`` (removed from ``events``), or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("event") in names:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0 or self._sock is None:
                return None
            self._sock.settimeout(min(left, self.timeout))
            try:
                message = self._read_message()
            except QMPError:
                return None
            finally:
                if self._sock is not None:
                    self._sock.settimeout(self.timeout)
            if "event" in message:
                self._keep_event(message)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buffer = b""

    def _keep_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        del self.events[:-MAX_EVENTS]

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise QMPError("QMP message too long")
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise QMPError(f"QMP socket {self.path}: no answer within {self.timeout:.0f}s") from exc
            except OSError as exc:
                raise QMPError(f"QMP socket {self.path}: {exc}") from exc
            if not chunk:
                raise QMPError(f"QMP socket {self.path} closed by QEMU")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise QMPError(f"QMP sent something that is not JSON: {line[:200]!r}") from exc
        if not isinstance(message, dict):
            raise QMPError(f"QMP sent a non-object: {line[:200]!r}")
        return message

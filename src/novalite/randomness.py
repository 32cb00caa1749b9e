"""Secure random bytes, ids and characters, read from the OS in chunks.

``os.urandom`` lets go of the GIL for its system call. In a busy process the calling thread then
waits for the GIL to come back, up to the switch interval (5 ms) and longer when many threads
want it: one ``uuid.uuid4()`` per request id on the event loop meant one such wait per request
under load, and ``secrets.choice`` one per character (figures: bench/README.md, "Costs behind
the code's choices"). Here the OS's generator is
read 4 KiB at a time and handed out under a lock: the bytes are the same kind (``os.urandom``,
fit for passwords and tokens), only the reads are fewer. A forked child starts with an empty
buffer, so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading
import uuid

_CHUNK = 4096
_lock = threading.Lock()
_buf = b""
_pos = 0


def _reset() -> None:
    global _buf, _pos
    _buf, _pos = b"", 0


os.register_at_fork(after_in_child=_reset)


def token_bytes(count: int) -> bytes:
    """``count`` bytes from the OS's secure generator."""
    global _buf, _pos
    if count > _CHUNK // 4:
        return os.urandom(count)
    with _lock:
        if _pos + count > len(_buf):
            _buf, _pos = os.urandom(_CHUNK), 0
        out = _buf[_pos : _pos + count]
        _pos += count
    return out


def uuid4() -> str:
    """A random (version 4) UUID as text, like ``str(uuid.uuid4())``."""
    return str(uuid.UUID(bytes=token_bytes(16), version=4))


class SecureChoices:
    """Characters and small integers drawn uniformly from secure bytes."""

    def __init__(self, size: int = 32) -> None:
        self._size, self._buf, self._pos = size, token_bytes(size), 0

    def _next(self) -> int:
        if self._pos == len(self._buf):
            self._buf, self._pos = token_bytes(self._size), 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def below(self, n: int) -> int:
        """An integer in [0, n) for 1 <= n <= 256, each equally likely: a byte is used only below the
        largest multiple of ``n``."""
        cutoff = 256 - 256 % n
        while (b := self._next()) >= cutoff:
            pass
        return b % n

    def choice(self, alphabet: str) -> str:
        return alphabet[self.below(len(alphabet))]


def random_chars(alphabet: str, count: int) -> str:
    """``count`` characters drawn uniformly from ``alphabet``."""
    source = SecureChoices(count + 8)
    return "".join(source.choice(alphabet) for _ in range(count))

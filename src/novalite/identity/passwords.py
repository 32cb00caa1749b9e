"""Password hashing with scrypt (stdlib)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` (the one ``prehash`` started, if it did)."""
    tag = _pending_tag(password)
    with _pending_lock:
        futures = _pending.get(tag)
        pending = futures.pop() if futures else None
        if futures is not None and not futures:
            del _pending[tag]
    if pending is not None:
        return pending.result()
    return _hash(password)


def _hash(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${salt_b64}${digest_b64}"


# Hashes started ahead of time by ``prehash``: HMAC tag of the password -> future hash. Each one is
# used once, by the next ``hash_password`` of that password (a fresh salt for every stored hash).
_PENDING_KEY = os.urandom(32)
_pending: dict[bytes, list[Future[str]]] = {}
_pending_lock = threading.Lock()


def _pending_tag(password: str) -> bytes:
    return hmac.new(_PENDING_KEY, password.encode(), hashlib.sha256).digest()


def prehash(passwords: list[str]) -> None:
    """Start hashing each of ``passwords`` on a thread now, for the next ``hash_password`` calls.

    scrypt releases the GIL, so at start-up the hashes (tens of milliseconds of CPU each: the
    figure is in bench/README.md, "Costs behind the code's choices") run on other cores while
    this one goes on; each result is exactly what ``hash_password`` would have computed then
    (same parameters, its own random salt). A password listed n times gets n hashes; hashes already
    started for it count (calling this twice with the same list starts nothing the second time).
    """
    wanted: dict[bytes, tuple[str, int]] = {}
    for password in passwords:
        tag = _pending_tag(password)
        wanted[tag] = (password, wanted.get(tag, (password, 0))[1] + 1)
    with _pending_lock:
        for tag, (password, count) in wanted.items():
            futures = _pending.setdefault(tag, [])
            while len(futures) < count:
                futures.append(_start(password))


def _start(password: str) -> Future[str]:
    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(_hash(password))
        except BaseException as exc:  # pragma: no cover - scrypt does not fail for a str
            future.set_exception(exc)

    threading.Thread(target=run, name="prehash", daemon=True).start()
    return future


# Recently verified (stored hash, password) pairs, as HMACs under a per-process random key, so
# that a client authenticating again and again (Tempest asks for ~400 tokens per run) does not
# pay scrypt every time. A changed password has a new stored hash, so it never hits old entries.
_VERIFIED_KEY = os.urandom(32)
_VERIFIED_MAX = 1024
_verified: OrderedDict[bytes, None] = OrderedDict()
_verified_lock = threading.Lock()


def _verified_tag(password: str, stored: str) -> bytes:
    return hmac.new(_VERIFIED_KEY, stored.encode() + b"\0" + password.encode(), hashlib.sha256).digest()


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; successful checks are remembered (bounded LRU)."""
    tag = _verified_tag(password, stored)
    with _verified_lock:
        if tag in _verified:
            _verified.move_to_end(tag)
            return True
    if not _verify_scrypt(password, stored):
        return False
    with _verified_lock:
        _verified[tag] = None
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(digest_b64)
    got = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(got, expected)

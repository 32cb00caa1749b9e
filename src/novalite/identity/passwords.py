"""Password hashing with scrypt (stdlib)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_N}${_R}${_P}${salt_b64}${digest_b64}"


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

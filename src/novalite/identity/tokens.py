"""Fernet tokens: the token itself carries who, which project, roles and expiry.

Any process that holds the deployment's keys (the key repository, ``identity.keys``) validates a
token without a database lookup, which is what lets every service check tokens itself. Tokens are
signed with the primary key and accepted with any key of the repository (``MultiFernet``).

A rotation (``novalite keys rotate``) reaches running processes without a restart: the keys are
re-read when the repository directory's mtime changed (looked at no more than once a second, so
the hot path costs one clock read) or when a token does not validate with the keys in memory.

A token that decrypts and has not expired may still be revoked: ``validate`` checks it against the
process's revocation list (``identity.revocation``, a few dict lookups) on every call, after the
decoded-token cache, since a revocation can come at any time after the token was first seen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from novalite.errors import NotFound, Unauthorized
from novalite.identity.keys import KeyRepository, KeyRepositoryError

if TYPE_CHECKING:
    from novalite.identity.revocation import RevocationList

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenData:
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[tuple[str, str], ...]  # (role id, role name)
    methods: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_id: str

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.roles)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DECODED_MAX = 4096
RECHECK_INTERVAL = 1.0  # seconds between looks at the key repository's mtime


class TokenProvider:
    def __init__(self, keys: KeyRepository | bytes, ttl: int):
        """``keys``: the key repository (re-read after rotations) or one fixed key."""
        self._repo = keys if isinstance(keys, KeyRepository) else None
        self._keys: tuple[bytes, ...] = ()
        self._fernet = MultiFernet([Fernet(keys)]) if isinstance(keys, bytes) else self._read_keys()
        self.ttl = ttl
        # token -> its decoded data: a token is immutable, so it is decrypted once (expiry is still
        # checked on every use); bounded, emptied when full and when the keys change (a token whose
        # key was rotated out must stop validating)
        self._decoded: dict[str, TokenData] = {}
        self._reload_lock = threading.Lock()
        self._checked_at = time.monotonic()
        # the revocation events (identity.revocation); set by the Runtime, which has the database
        self.revocations: RevocationList | None = None

    def _read_keys(self) -> MultiFernet:
        assert self._repo is not None
        self._mtime_ns = self._repo.mtime_ns()
        self._loaded_at = time.monotonic()
        self._keys = tuple(self._repo.load())
        return MultiFernet([Fernet(k) for k in self._keys])

    def _reload(self) -> bool:
        """Re-read the repository; False when that failed or the keys are the same as before (the
        keys in memory, and the tokens decoded with them, stay)."""
        with self._reload_lock:
            before = self._keys
            try:
                fernet = self._read_keys()
            except (OSError, KeyRepositoryError) as exc:
                LOG.warning("could not re-read the token keys: %s", exc)
                return False
            if self._keys == before:
                return False
            self._fernet = fernet
            self._decoded = {}
            LOG.info("token keys re-read: %d keys", len(self._keys))
            return True

    def _maybe_reload(self) -> None:
        """At most once a second: re-read the keys if the repository directory changed."""
        if self._repo is None:
            return
        now = time.monotonic()
        if now - self._checked_at < RECHECK_INTERVAL:
            return
        self._checked_at = now
        if self._repo.mtime_ns() != self._mtime_ns:
            self._reload()

    def _reload_after_miss(self) -> bool:
        """A token did not validate: re-read if the repository changed (one stat), or anyway when the
        keys were last read over a second ago (an mtime too coarse to show a rotation). A flood of
        bad tokens thus costs one stat each and a read of the keys at most once a second."""
        if self._repo is None:
            return False
        if self._repo.mtime_ns() != self._mtime_ns or time.monotonic() - self._loaded_at >= RECHECK_INTERVAL:
            return self._reload()
        return False

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def issue(
        self,
        *,
        user: tuple[str, str],
        project: tuple[str, str],
        roles: list[tuple[str, str]],
        methods: tuple[str, ...] = ("password",),
        expires_at: dt.datetime | None = None,
    ) -> tuple[str, TokenData]:
        self._maybe_reload()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        expires = expires_at or now + dt.timedelta(seconds=self.ttl)
        data = TokenData(
            user_id=user[0],
            user_name=user[1],
            project_id=project[0],
            project_name=project[1],
            roles=tuple(roles),
            methods=methods,
            issued_at=now,
            expires_at=expires,
            audit_id=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="),
        )
        payload = {
            "u": [data.user_id, data.user_name],
            "p": [data.project_id, data.project_name],
            "r": [list(r) for r in data.roles],
            "m": list(methods),
            "i": _iso(now),
            "e": _iso(expires),
            "a": data.audit_id,
        }
        token = self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()
        return token, data

    def validate(self, token: str, *, for_lookup: bool = False) -> TokenData:
        """Decode, check expiry and revocation. ``for_lookup`` raises 404 instead of 401 (the
        subject token of GET /auth/tokens, the parent token of a re-scope)."""
        err = NotFound if for_lookup else Unauthorized
        self._maybe_reload()
        data = self._decoded.get(token)
        if data is None:
            try:
                data = self._decode(token, err)
            except (NotFound, Unauthorized):
                if not self._reload_after_miss():
                    raise
                data = self._decode(token, err)
            if len(self._decoded) >= _DECODED_MAX:
                self._decoded.clear()
            self._decoded[token] = data
        if data.expires_at <= dt.datetime.now(dt.UTC).replace(tzinfo=None):
            raise err("The request you have made requires authentication.")
        if self.revocations is not None and self.revocations.is_revoked(data):
            raise (
                NotFound("Failed to validate token")
                if for_lookup
                else Unauthorized("The request you have made requires authentication.")
            )
        return data

    def _decode(self, token: str, err: type[NotFound] | type[Unauthorized]) -> TokenData:
        try:
            payload = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise err("The request you have made requires authentication.") from None
        parse = lambda s: dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
        data = TokenData(
            user_id=payload["u"][0],
            user_name=payload["u"][1],
            project_id=payload["p"][0],
            project_name=payload["p"][1],
            roles=tuple((r[0], r[1]) for r in payload["r"]),
            methods=tuple(payload["m"]),
            issued_at=parse(payload["i"]),
            expires_at=parse(payload["e"]),
            audit_id=payload["a"],
        )
        return data


def iso_z(t: dt.datetime) -> str:
    return _iso(t)

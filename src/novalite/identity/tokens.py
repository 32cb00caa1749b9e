"""Fernet tokens: the token itself carries who, which project, roles and expiry.

Any process that knows the deployment's key (stored in ``service_keys``) validates a
token without a database lookup, which is what lets every service check tokens itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from novalite.errors import NotFound, Unauthorized


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


class TokenProvider:
    def __init__(self, key: bytes, ttl: int):
        self._fernet = Fernet(key)
        self.ttl = ttl
        # token -> its decoded data: a token is immutable, so it is decrypted once (expiry is still
        # checked on every use); bounded, emptied when full
        self._decoded: dict[str, TokenData] = {}

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
        """Decode and check expiry. ``for_lookup`` raises 404 instead of 401 (GET /auth/tokens)."""
        err = NotFound if for_lookup else Unauthorized
        data = self._decoded.get(token)
        if data is None:
            data = self._decode(token, err)
            if len(self._decoded) >= _DECODED_MAX:
                self._decoded.clear()
            self._decoded[token] = data
        if data.expires_at <= dt.datetime.now(dt.UTC).replace(tzinfo=None):
            raise err("The request you have made requires authentication.")
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

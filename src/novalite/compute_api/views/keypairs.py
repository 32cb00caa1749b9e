"""The key pair representation and status codes per microversion (§6.6). Every version gate for
key pairs' output is here."""

from __future__ import annotations

from typing import Any

from novalite.api.microversion import V, Version
from novalite.db.models.catalog import KeyPair


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def created_view(version: Version, keypair: KeyPair, private_key: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
        "user_id": keypair.user_id,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    if private_key is not None:
        body["private_key"] = private_key
    return body


def list_item_view(version: Version, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    return {"keypair": body}


def show_view(version: Version, keypair: KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
        "user_id": keypair.user_id,
        "id": keypair.id,
        "created_at": _iso(keypair.created_at),
        "updated_at": _iso(keypair.updated_at),
        "deleted": False,
        "deleted_at": None,
    }
    if version >= V(2, 2):  # 2.2: type
        body["type"] = keypair.type
    return body


def created_status(version: Version) -> int:
    return 201 if version >= V(2, 2) else 200  # 2.2: created is 201 (before: 200)


def deleted_status(version: Version) -> int:
    return 204 if version >= V(2, 2) else 202  # 2.2: deleted is 204 (before: 202)

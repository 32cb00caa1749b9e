"""Key pairs: import (validated) or server-side generation, MD5/SHA1 fingerprints, per-user storage.

``key_material(...)`` does the slow part (RSA generation, parsing) and needs no database, so
callers run it before taking the quota lock. ``create_keypair`` then checks the ``key_pairs``
quota, refuses duplicates (409), inserts, and rechecks the quota (a concurrent create for the
same user can slip past the first check): on failure the new row is removed and 403 returned.
Callers hold ``runtime.db.serialized(f"quota:{project_id}")`` around ``create_keypair``.

Contract used elsewhere: ``get_keypair(s, user_id, name) -> KeyPair | None``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from novalite.db.models.catalog import KeyPair
from novalite.errors import BadRequest, Conflict, NotFound, OverQuota
from novalite.services import quotas


@dataclass(frozen=True)
class KeyMaterial:
    public_key: str
    fingerprint: str
    private_key: str | None = None  # only when generated here; shown once


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    """MD5 of the key blob, colon hex; 400 ``InvalidKeypair`` when the key does not parse."""
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.strip().split()[1], validate=True)
    except (ValueError, IndexError, UnicodeError, binascii.Error, TypeError):
        raise BadRequest(
            "Keypair data is invalid: failed to generate fingerprint", kind="InvalidKeypair"
        ) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm for unknown key types
        raise BadRequest(
            "Keypair data is invalid: failed to generate fingerprint", kind="InvalidKeypair"
        ) from None
    return _colon_hex(hashlib.md5(blob, usedforsecurity=False).digest())


def x509_fingerprint(pem: str) -> str:
    """SHA1 of the certificate's DER encoding, colon hex; 400 when it is not a PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, UnicodeError, TypeError) as exc:
        raise BadRequest(
            f"Keypair data is invalid: failed to generate X509 fingerprint. Error message: {exc}",
            kind="InvalidKeypair",
        ) from None
    der = cert.public_bytes(serialization.Encoding.DER)
    return _colon_hex(hashlib.sha1(der, usedforsecurity=False).digest())


def _new_rsa() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key, private


def _generate_ssh() -> KeyMaterial:
    key, private = _new_rsa()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public_key = public.decode() + " Generated-by-Nova"
    return KeyMaterial(public_key=public_key, fingerprint=ssh_fingerprint(public_key), private_key=private)


def _generate_x509(user_id: str) -> KeyMaterial:
    key, private = _new_rsa()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "novalite")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return KeyMaterial(public_key=pem, fingerprint=x509_fingerprint(pem), private_key=private)


def key_material(*, key_type: str, public_key: str | None, user_id: str) -> KeyMaterial:
    """Validate an imported key or generate a new one (``key_type`` ssh | x509)."""
    if public_key is None:
        return _generate_x509(user_id) if key_type == "x509" else _generate_ssh()
    if key_type == "x509":
        return KeyMaterial(public_key=public_key, fingerprint=x509_fingerprint(public_key))
    return KeyMaterial(public_key=public_key, fingerprint=ssh_fingerprint(public_key))


def get_keypair(s: Session, user_id: str, name: str) -> KeyPair | None:
    return s.scalars(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name)).first()


def keypair_not_found(user_id: str, name: str) -> NotFound:
    return NotFound(f"Keypair {name} not found for user {user_id}", kind="KeypairNotFound")


def _over_quota(s: Session, project_id: str, user_id: str, delta: int) -> bool:
    limit = quotas.effective_limits(s, project_id, user_id)["key_pairs"]
    return limit >= 0 and quotas.count_resource(s, "key_pairs", project_id, user_id) + delta > limit


def create_keypair(
    s: Session, *, project_id: str, user_id: str, name: str, key_type: str, material: KeyMaterial
) -> KeyPair:
    """Quota check, duplicate check, insert, recheck (see the module docstring)."""
    if _over_quota(s, project_id, user_id, 1):
        raise OverQuota("Quota exceeded, too many key pairs.", kind="KeypairLimitExceeded")
    if get_keypair(s, user_id, name) is not None:
        raise Conflict(f"Key pair '{name}' already exists.", kind="KeyPairExists")
    keypair = KeyPair(
        user_id=user_id,
        name=name,
        type=key_type,
        public_key=material.public_key,
        fingerprint=material.fingerprint,
    )
    s.add(keypair)
    try:
        s.flush()
    except IntegrityError:  # the same user created it concurrently from another project
        raise Conflict(f"Key pair '{name}' already exists.", kind="KeyPairExists") from None
    if _over_quota(s, project_id, user_id, 0):
        s.delete(keypair)
        s.flush()
        raise OverQuota("Quota exceeded, too many key pairs.", kind="KeypairLimitExceeded")
    s.refresh(keypair)
    return keypair


def list_keypairs(
    s: Session, user_id: str, *, limit: int | None = None, marker: str | None = None
) -> list[KeyPair]:
    """The user's key pairs by name; ``marker`` is a name (unknown -> 400)."""
    stmt = select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name)
    if marker is not None:
        if get_keypair(s, user_id, marker) is None:
            raise BadRequest(f"Marker {marker} could not be found.", kind="MarkerNotFound")
        stmt = stmt.where(KeyPair.name > marker)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(s.scalars(stmt))


def delete_keypair(s: Session, user_id: str, name: str) -> None:
    keypair = get_keypair(s, user_id, name)
    if keypair is None:
        raise keypair_not_found(user_id, name)
    s.delete(keypair)
    s.flush()

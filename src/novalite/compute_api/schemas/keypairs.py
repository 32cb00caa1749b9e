"""Request schemas and gates for /os-keypairs, one per microversion range (§6.6).

``create_schema(version)`` picks the POST body schema; ``user_id_query`` and ``paged`` say which
query parameters a version honours. Every gate carries its microversion in a comment; nothing
outside this module and ``views.keypairs`` compares versions for key pairs.
"""

from __future__ import annotations

from typing import Any

from novalite.api.microversion import V, Version

_NAME_20 = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9 _-]+$"}
_NAME_292 = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9 @._-]+$"}


def create_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"name": _NAME_20, "public_key": {"type": "string"}}
    required = ["name"]
    if version >= V(2, 2):  # 2.2: type
        props["type"] = {"type": "string", "enum": ["ssh", "x509"]}
    if version >= V(2, 10):  # 2.10: user_id
        props["user_id"] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\x00]*$"}
    if version >= V(2, 92):  # 2.92: @ and . in names; import only
        props["name"] = _NAME_292
        required.append("public_key")
    keypair = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {"keypair": keypair},
        "required": ["keypair"],
        "additionalProperties": False,
    }


def user_id_query(version: Version) -> bool:
    """2.10: ``?user_id=`` names whose key pairs (an admin's, or oneself)."""
    return version >= V(2, 10)


def paged(version: Version) -> bool:
    """2.35: GET /os-keypairs pages by name (``limit``/``marker``)."""
    return version >= V(2, 35)

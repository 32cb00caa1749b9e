"""Request schemas of the Keystone v3 subset, after Keystone's own (keystone/*/schema.py): what a
body must look like before anything reads it, so a string or list where an object belongs is a
400, not a 500. Extra properties are allowed, as Keystone allows them."""

from __future__ import annotations

from typing import Any

_STRING: dict[str, Any] = {"type": "string"}
_BOOLEAN: dict[str, Any] = {"type": "boolean"}  # Keystone's parameter_types.boolean: no "false"
_DOMAIN_REF: dict[str, Any] = {"type": "object", "properties": {"id": _STRING, "name": _STRING}}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


# keystone/auth/schema.py token_issue
AUTH_TOKENS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "auth": {
            "type": "object",
            "properties": {
                "identity": {
                    "type": "object",
                    "properties": {
                        "methods": {"type": "array", "items": _STRING},
                        "password": {
                            "type": "object",
                            "properties": {
                                "user": {
                                    "type": "object",
                                    "properties": {
                                        "id": _STRING,
                                        "name": _STRING,
                                        "password": _STRING,
                                        "domain": _DOMAIN_REF,
                                    },
                                }
                            },
                        },
                        "token": {"type": "object", "properties": {"id": _STRING}, "required": ["id"]},
                    },
                    "required": ["methods"],
                },
                "scope": {
                    "type": ["object", "null"],
                    "properties": {
                        "project": {
                            "type": "object",
                            "properties": {"id": _STRING, "name": _STRING, "domain": _DOMAIN_REF},
                        },
                        "domain": _DOMAIN_REF,
                    },
                },
            },
            "required": ["identity"],
        }
    },
    "required": ["auth"],
}

# keystone/identity/schema.py (email: a column of 255 here, an extra attribute there)
_USER: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "default_project_id": _nullable(_ID),
    "description": _nullable(_STRING),
    "domain_id": _ID,
    "enabled": _BOOLEAN,
    "email": _nullable({"type": "string", "maxLength": 255}),
    "password": _nullable(_STRING),
}
USER_CREATE: dict[str, Any] = {"type": "object", "properties": _USER, "required": ["name"]}
USER_UPDATE: dict[str, Any] = {"type": "object", "properties": _USER, "minProperties": 1}
# POST /v3/users/{id}/password (self-service change)
USER_PASSWORD: dict[str, Any] = {
    "type": "object",
    "properties": {"password": _STRING, "original_password": _STRING},
    "required": ["password", "original_password"],
}

# keystone/resource/schema.py
_PROJECT: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64},
    "description": _nullable(_STRING),
    "domain_id": _nullable(_ID),
    "enabled": _BOOLEAN,
    "is_domain": _BOOLEAN,
    "parent_id": _nullable(_ID),
}
PROJECT_CREATE: dict[str, Any] = {"type": "object", "properties": _PROJECT, "required": ["name"]}
PROJECT_UPDATE: dict[str, Any] = {"type": "object", "properties": _PROJECT, "minProperties": 1}

# keystone/assignment/schema.py
ROLE_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": _nullable(_STRING),
    },
    "required": ["name"],
}

"""Typed, versioned message payloads.

A payload is a dataclass with ``METHOD`` (what the server runs) and ``VERSION``
("major.minor"). On the wire: ``{"method", "version", "args"}`` with ``args`` its fields as
JSON. A server accepts a message with the same major version and a minor version not newer
than its own class's (new optional fields bump the minor; incompatible changes the major).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from novalite.context import RequestContext


@dataclasses.dataclass(frozen=True)
class Message:
    METHOD: ClassVar[str] = ""
    VERSION: ClassVar[str] = "1.0"


class IncompatibleMessage(ValueError):
    pass


def encode(msg: Message) -> dict[str, Any]:
    """The wire form. Fields are JSON values already (the transport serialises or copies them), so
    only a nested dataclass needs converting: no deep copy of every payload."""
    args = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    args = {
        k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
        for k, v in args.items()
    }
    return {"method": msg.METHOD, "version": msg.VERSION, "args": args}


def _ver(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def decode(body: Mapping[str, Any], registry: Mapping[str, type[Message]]) -> Message:
    """The payload object for ``body``; ``IncompatibleMessage`` for unknown methods or versions."""
    method = str(body.get("method", ""))
    cls = registry.get(method)
    if cls is None:
        raise IncompatibleMessage(f"unknown method {method!r}")
    got, have = _ver(str(body.get("version", "1.0"))), _ver(cls.VERSION)
    if got[0] != have[0] or got[1] > have[1]:
        raise IncompatibleMessage(
            f"{method} version {body.get('version')} not supported (server has {cls.VERSION})"
        )
    names = {f.name for f in dataclasses.fields(cls)}
    args = {k: v for k, v in dict(body.get("args") or {}).items() if k in names}
    return cls(**args)


def registry_of(classes: Iterable[type[Message]]) -> dict[str, type[Message]]:
    return {c.METHOD: c for c in classes}


def context_to_dict(ctx: RequestContext) -> dict[str, Any]:
    return {
        "user_id": ctx.user_id,
        "project_id": ctx.project_id,
        "roles": list(ctx.roles),
        "user_name": ctx.user_name,
        "project_name": ctx.project_name,
        "request_id": ctx.request_id,
    }


def context_from_dict(d: Mapping[str, Any]) -> RequestContext:
    return RequestContext(
        user_id=str(d.get("user_id", "")),
        project_id=str(d.get("project_id", "")),
        roles=tuple(d.get("roles") or ()),
        user_name=str(d.get("user_name", "")),
        project_name=str(d.get("project_name", "")),
        request_id=str(d.get("request_id", "")),
    )

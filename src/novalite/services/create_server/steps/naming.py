"""Display names and hostnames for one or many instances (§2.4)."""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^\w.-]+")


def sanitize_hostname(name: str) -> str:
    """Latin-1 only, at most 63 chars, spaces/underscores/dots to '-', lower case, trimmed."""
    text = name.encode("latin-1", "ignore").decode("latin-1")
    text = text[:63]
    text = re.sub(r"[ _.]", "-", text)
    text = _NOT_WORD.sub("", text)
    text = text.lower()
    return text.strip(".-")


def display_name(name: str, index: int, count: int) -> str:
    return f"{name}-{index + 1}" if count > 1 else name


def hostname(name: str, requested: str | None, instance_uuid: str, index: int, count: int) -> str:
    """The requested hostname (2.90+, single instance), else one derived from the name."""
    if requested:
        return requested
    base = sanitize_hostname(name) or f"Server-{instance_uuid}"
    return f"{base}-{index + 1}" if count > 1 else base

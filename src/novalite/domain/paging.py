"""Marker paging over an ordered list (Nova's ``limit`` / ``marker``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from novalite.errors import BadRequest

T = TypeVar("T")


def paginate(items: Sequence[T], key: Any, limit: int, marker: str | None) -> list[T]:
    """Slice after ``marker`` (a key value); 400 when the marker is unknown."""
    start = 0
    if marker is not None:
        for idx, item in enumerate(items):
            if str(key(item)) == marker:
                start = idx + 1
                break
        else:
            raise BadRequest(f"marker [{marker}] not found")
    return list(items[start : start + limit])

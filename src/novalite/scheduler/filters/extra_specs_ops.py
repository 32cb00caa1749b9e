"""Nova's extra-spec comparison language (ComputeCapabilitiesFilter, aggregate filters).

``"<op> <value>"`` where op is one of ``=`` (numeric >=), ``==``, ``!=``, ``>=``, ``<=``
(numeric), ``s==``, ``s!=``, ``s<``, ``s<=``, ``s>``, ``s>=`` (string), ``<in>`` (substring),
``<all-in>`` (every listed word in a list value), ``<or>`` (``<or> a <or> b``: equals any).
No operator: string equality.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any


def _num(a: Any, b: str, op: Callable[[float, float], bool]) -> bool:
    try:
        return op(float(a), float(b))
    except (TypeError, ValueError):
        return False


def _all_in(value: Any, words: list[str]) -> bool:
    have = value if isinstance(value, (list, tuple, set)) else str(value).split()
    return all(w in have for w in words)


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
}
_STRING: dict[str, Callable[[str, str], bool]] = {
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}


def match(value: Any, requirement: str) -> bool:
    """Whether the host ``value`` satisfies ``requirement``."""
    words = str(requirement).split()
    if not words:
        return str(value) == ""
    op, rest = words[0], words[1:]
    if op == "<or>":
        return str(value) in [w for w in rest if w != "<or>"]
    if op == "<in>":
        return " ".join(rest) in str(value)
    if op == "<all-in>":
        return _all_in(value, rest)
    if op in _NUMERIC and rest:
        return _num(value, rest[0], _NUMERIC[op])
    if op in _STRING and rest:
        return _STRING[op](str(value), " ".join(rest))
    return str(value) == str(requirement)

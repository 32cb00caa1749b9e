"""Placement query-string syntax: ``resources``, ``required`` (traits), ``member_of``, ``in_tree``.

* ``resources=VCPU:1,MEMORY_MB:512``.
* ``required=A,!B`` (``!`` forbidden from 1.22; ``in:A,B`` any-of from 1.39); repeated keys AND.
* ``member_of=<uuid>`` or ``member_of=in:<u1>,<u2>`` (repeatable from 1.24; ``!`` forbidden from 1.32).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from novalite.api.microversion import Version
from novalite.errors import BadRequest
from novalite.placement.api_common import is_uuid

RC_PATTERN = re.compile(r"^[A-Z0-9_]+$")
TRAIT_PATTERN = re.compile(r"^[A-Z0-9_]+$")
MAX_AMOUNT = 2147483647


@dataclass
class TraitFilter:
    required: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    any_of: list[list[str]] = field(default_factory=list)

    def names(self) -> set[str]:
        return set(self.required) | set(self.forbidden) | {t for group in self.any_of for t in group}


@dataclass
class MemberOf:
    any_of: list[list[str]] = field(default_factory=list)  # each: the provider is in one of these
    forbidden: list[str] = field(default_factory=list)


def parse_resources(raw: str) -> dict[str, int]:
    """``VCPU:1,MEMORY_MB:512`` -> {"VCPU": 1, "MEMORY_MB": 512}; 400 when malformed."""
    out: dict[str, int] = {}
    bad = BadRequest(
        "Badly formed resources parameter. Expected resources query string parameter in form: "
        f"?resources=VCPU:2,MEMORY_MB:1024. Got: {raw}."
    )
    for item in raw.split(","):
        name, sep, amount = item.strip().partition(":")
        if not sep or not RC_PATTERN.match(name) or not amount.strip().isdigit() or int(amount) > MAX_AMOUNT:
            raise bad
        if name in out:
            raise BadRequest(f"Badly formed resources parameter. Resource class {name} was specified twice.")
        out[name] = int(amount)
    if not out:
        raise bad
    return out


def parse_required(values: list[str], version: Version) -> TraitFilter:
    found = TraitFilter()
    for raw in values:
        if raw.startswith("in:") and version >= Version(1, 39):  # 1.39: any-of traits
            names = [t.strip() for t in raw[3:].split(",") if t.strip()]
            _check_traits(names, raw)
            found.any_of.append(names)
            continue
        for item in (t.strip() for t in raw.split(",")):
            if item.startswith("!") and version >= Version(1, 22):  # 1.22: forbidden traits
                _check_traits([item[1:]], raw)
                found.forbidden.append(item[1:])
            else:
                _check_traits([item], raw)
                found.required.append(item)
    return found


def _check_traits(names: list[str], raw: str) -> None:
    if not names or any(not TRAIT_PATTERN.match(n) for n in names):
        raise BadRequest(
            f"Invalid query string parameters: Expected 'required' parameter value of the form: "
            f"HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got: {raw}"
        )


def parse_member_of(values: list[str], version: Version) -> MemberOf:
    if len(values) > 1 and version < Version(1, 24):  # 1.24: repeated member_of
        values = values[-1:]
    found = MemberOf()
    for raw in values:
        value = raw
        forbidden = value.startswith("!") and version >= Version(1, 32)  # 1.32: forbidden aggregates
        if forbidden:
            value = value[1:]
        if value.startswith("in:"):
            value = value[3:]
        uuids = [u.strip() for u in value.split(",") if u.strip()]
        if not uuids or any(not is_uuid(u) for u in uuids):
            raise BadRequest(
                "Invalid query string parameters: Expected 'member_of' parameter to contain valid "
                f"UUID(s). Got: {raw}"
            )
        if forbidden:
            found.forbidden.extend(uuids)
        else:
            found.any_of.append(uuids)
    return found

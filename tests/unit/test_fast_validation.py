"""POST /servers' fast validation path (``validate(..., fast=True)``) answers exactly as
jsonschema does: the same bodies accepted, and for every rejected body the same 400 message.

A differential run over every microversion's create schema: two bodies (a minimal one and one
using nearly every field) mutated one field at a time to each of a set of awkward values, and
then two fields at a time at random (seeded)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest

from novalite.api import common
from novalite.api.microversion import V
from novalite.compute_api.schemas import servers as schemas
from novalite.errors import BadRequest

UUID = "2b6c0a0e-6b7b-4b0e-9a0e-1c2d3e4f5a6b"
MINIMAL = {"server": {"name": "vm-1", "flavorRef": "1", "imageRef": UUID, "networks": "none"}}
FULL = {
    "server": {
        "name": "vm-1",
        "flavorRef": "1",
        "imageRef": UUID,
        "networks": [{"uuid": UUID, "fixed_ip": "10.0.0.4", "tag": "t"}, {"port": UUID}],
        "metadata": {"a": "b"},
        "key_name": "k",
        "security_groups": [{"name": "default"}],
        "user_data": "aGVsbG8=",
        "availability_zone": "nova",
        "min_count": 1,
        "max_count": 2,
        "return_reservation_id": True,
        "config_drive": True,
        "block_device_mapping_v2": [
            {
                "boot_index": 0,
                "uuid": UUID,
                "source_type": "image",
                "destination_type": "volume",
                "volume_size": 1,
                "delete_on_termination": True,
                "tag": "x",
                "device_name": "vda",
            }
        ],
        "block_device_mapping": [{"volume_id": UUID, "device_name": "vdb"}],
        "personality": [{"path": "/a", "contents": "aGVsbG8="}],
        "trusted_image_certificates": ["a"],
        "host": "h",
        "hypervisor_hostname": "h",
        "accessIPv4": "1.2.3.4",
        "accessIPv6": "::1",
        "OS-DCF:diskConfig": "AUTO",
        "description": "d",
        "tags": ["a"],
        "hostname": "h",
        "adminPass": "x",
    },
    "os:scheduler_hints": {
        "group": UUID,
        "same_host": [UUID],
        "query": "q",
        "build_near_host_ip": "1.2.3.4",
        "cidr": "/24",
    },
}
AWKWARD: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    2.0,
    1.5,
    "",
    "x",
    "1",
    " ",
    "a" * 300,
    [],
    [1],
    [""],
    [{}],
    {},
    {"a": 1},
    {"": ""},
    "none",
    "auto",
    UUID,
    UUID.replace("-", "").upper(),
    "1.2.3.4",
    "::1",
    "not-an-ip",
    "AUTO",
    2**40,
    -(2**40),
    "aGVsbG8",
    "aGVsbG8=",
    "\u00e9",
    "\x00",
    "0",
    "true",
    " lead",
    "trail ",
    "a\nb",
    65536,
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    if not path:
        return value
    cur = out
    try:
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = value
    except (KeyError, IndexError, TypeError):  # an earlier mutation removed the parent
        pass
    return out


def _outcome(schema: dict[str, Any], body: Any, *, fast: bool) -> str:
    try:
        common.validate(schema, body, fast=fast)
    except BadRequest as exc:
        return exc.message
    return "accepted"


def _valid_for(schema: dict[str, Any], doc: Any) -> Any:
    """``doc`` without what this microversion does not know (extra keys dropped, a networks string
    replaced by a list), so that each version starts from a body it accepts."""
    from jsonschema import Draft4Validator

    doc = copy.deepcopy(doc)
    for _ in range(20):
        errors = list(Draft4Validator(schema).iter_errors(doc))
        if not errors:
            return doc
        error = errors[0]
        target = doc
        for k in error.absolute_path:
            target = target[k]
        if error.validator == "additionalProperties":
            for key in [k for k in target if k not in error.schema.get("properties", {})]:
                del target[key]
        elif list(error.absolute_path)[-1:] == ["networks"]:
            doc["server"]["networks"] = [{"uuid": UUID}]
        elif len(error.absolute_path) >= 2:  # a field this version constrains otherwise: leave it out
            parent = doc
            for k in list(error.absolute_path)[:-1]:
                parent = parent[k]
            del parent[error.absolute_path[-1]]
        else:
            raise AssertionError(f"no valid base: {error.message}")
    raise AssertionError("no valid base")


def _bodies(schema: dict[str, Any], rng: random.Random) -> Iterator[Any]:
    for doc in (_valid_for(schema, MINIMAL), _valid_for(schema, FULL)):
        yield doc
        paths = list(_paths(doc))
        for path in paths[1:]:
            for value in AWKWARD:
                yield _set(doc, path, value)
        for _ in range(40):
            body = doc
            for _ in range(2):
                body = _set(body, rng.choice(paths[1:]), rng.choice(AWKWARD))
            yield body


@pytest.mark.parametrize("minor", [1, 32, 37, 52, 57, 67, 74, 90, 96])
def test_fast_path_answers_as_jsonschema_does(minor: int) -> None:
    schema = schemas.create_schema(V(2, minor))
    rng = random.Random(minor)
    checked = accepted = 0
    for body in _bodies(schema, rng):
        expected = _outcome(schema, body, fast=False)
        assert _outcome(schema, body, fast=True) == expected, body
        checked += 1
        accepted += expected == "accepted"
    assert accepted > 20 and checked - accepted > 1000  # both kinds were exercised


def test_a_float_where_an_integer_belongs_is_rejected_with_jsonschemas_message() -> None:
    """fastjsonschema takes 1.0 for an integer, Draft 4 does not: such a body never takes the
    fast path (flavorRef is a string or an integer from 2.37 on)."""
    schema = schemas.create_schema(V(2, 37))
    body = copy.deepcopy(MINIMAL)
    body["server"]["flavorRef"] = 1.0
    with pytest.raises(BadRequest, match="flavorRef") as err:
        common.validate(schema, body, fast=True)
    assert err.value.status == 400
    assert common._fast_validator(schema) is not None  # the fast path exists, it was not used

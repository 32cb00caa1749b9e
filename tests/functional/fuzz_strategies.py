"""What the API fuzzer sends: Hypothesis strategies for one request to one operation.

``case_strategy(op, schema, pool, tokens)`` draws a ``Case``: a body valid by the route's schema
(``from_schema``, the draft-4 keywords our schemas use), the same with one value broken
(``_mutate``), arbitrary JSON or raw bytes; real or junk path parameters; odd query strings;
tokens and microversion headers right and wrong. tests/functional/fuzz_engine.py runs them.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from novalite.api import openapi


class Case:
    """One request. A plain class: Hypothesis prints a dataclass field by field, bodies and all."""

    def __init__(self, method: str, url: str, headers: dict[str, bytes], body: bytes | None) -> None:
        self.method, self.url, self.headers, self.body = method, url, headers, body

    def __repr__(self) -> str:  # short: Hypothesis prints the case it ran
        return f"Case({self.method} {self.url[:200]!r}, body={(self.body or b'')[:200]!r})"


JUNK_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "x" * 70000,
        "é" * 300,
        "\ud800",
        "-1",
        "0",
        "99999999999999999999999",
        "1e400",
        "NaN",
        "null",
        "true",
        "../../etc/passwd",
        "' OR 1=1 --",
        "%s%n",
        " ",
        "\t\n",
        "\u202e",
        str(uuid.UUID(int=0)),
    ]
)
JUNK_SEGMENTS = st.one_of(
    st.sampled_from(
        ["0", "-1", "1e9", "x" * 3000, "%00", "%FF%FE", "%2F", "..", "%25", "%C0%AF", "null", "%20", "a%00b"]
    ),
    st.uuids().map(str),
    st.text(max_size=40).map(lambda s: quote(s, safe="")),
    st.binary(max_size=20).map(lambda b: quote(b, safe="")),
)
QUERY_KEYS = (
    "limit marker sort_key sort_dir name all_tenants changes-since is_public minRam minDisk status "
    "host deleted project_id tenant_id user_id fields id page_reverse member_of resources required "
    "in_tree uuid tags tags-any not-tags ip flavor image detailed with_servers "
    "hypervisor_hostname_pattern visibility owner offset changes-before binary network_id device_id "
    "shared router:external admin_state_up size_min size_max min_disk min_ram mtu ip_version since "
    "start end page_size generation"
).split()
# numbers and times just past what the database columns and SQL LIMIT hold, and odd ones
BOUNDARY_VALUES = st.sampled_from(
    [
        "2147483648",
        "9223372036854775808",
        "-9223372036854775809",
        "-1",
        "0",
        "1e400",
        "0x10",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00",
        "2000-13-45",
    ]
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64]),  # past INTEGER and BIGINT
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    JUNK_TEXT,
)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _deep(depth: int) -> Any:
    out: Any = "x"
    for _ in range(depth):
        out = {"a": out}
    return out


RAW_BODIES = st.sampled_from(
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b"\xff\xfe\x00",
        b'{"a": "\xc3\x28"}',
        b"[" * 100000,
        b'{"x": 1e999999}',
        b'{"x": "\\u0000"}',
        b'{"x": "\\ud800"}',
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b'{"server": ' * 900 + b"1" + b"}" * 900,
        b"\x00" * 10,
    ]
)


def _mutate(value: Any, draw: Any) -> Any:
    """``value`` with one nested value replaced by junk, or one key removed."""
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value, key=str)))
        out = dict(value)
        choice = draw(st.integers(0, 3))
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[key] = draw(ANY_JSON)
        elif choice == 2:
            out[key] = _deep(draw(st.integers(50, 800)))  # json.dumps recurses
        else:
            out[key] = _mutate(value[key], draw)
        return out
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], _mutate(value[i], draw), *value[i + 1 :]]
    return draw(ANY_JSON)


def from_schema(schema: Any, depth: int = 0, *, minimal: bool = False) -> st.SearchStrategy[Any]:
    """Values drawn to fit a draft-4 schema (the keywords our schemas use). Mostly valid: a
    pattern or format it cannot honour gives plain text, which the route then refuses."""
    if not isinstance(schema, dict) or depth > 8:
        return ANY_JSON
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return st.one_of(
                [from_schema({**rest, **sub}, depth + 1, minimal=minimal) for sub in schema[key]]
            )
    if "allOf" in schema:
        return from_schema({k: v for k, v in schema.items() if k != "allOf"}, depth + 1, minimal=minimal)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, depth + 1, minimal=minimal) for k in kind])
    if kind is None:
        kind = "object" if "properties" in schema else None
    if kind == "object":
        return _object(schema, depth, minimal)
    if kind == "array":
        items = from_schema(schema.get("items", {}), depth + 1, minimal=minimal)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        ints = st.integers(int(low), int(high))
        return ints if kind == "integer" else st.one_of(ints, st.floats(low, high, allow_nan=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return ANY_JSON


FORMATS: dict[str, st.SearchStrategy[str]] = {
    "uuid": st.uuids().map(str),
    "ipv4": st.ip_addresses(v=4).map(str),
    "ipv6": st.ip_addresses(v=6).map(str),
    "base64": st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
}


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    if schema.get("format") in FORMATS:
        return FORMATS[schema["format"]]
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if "pattern" in schema:
        try:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: low <= len(s) <= max(high, low)
            )
        except Exception:  # a pattern Hypothesis cannot draw from
            pass
    return st.text(min_size=low, max_size=max(high, low))


def _object(schema: dict[str, Any], depth: int, minimal: bool) -> st.SearchStrategy[dict[str, Any]]:
    """An object of the schema's properties; ``minimal``: the required ones only (a body with
    every optional field drawn at random nearly always trips on one of them)."""
    props = schema.get("properties", {})
    required = [k for k in schema.get("required", []) if k in props]
    optional = [] if minimal else [k for k in props if k not in required]
    extra = schema.get("additionalProperties", True)
    fixed = st.fixed_dictionaries(
        {k: from_schema(props[k], depth + 1, minimal=minimal) for k in required},
        optional={k: from_schema(props[k], depth + 1) for k in optional},
    )
    if minimal or extra is False or not isinstance(extra, dict | bool):
        return fixed
    values = ANY_JSON if extra is True else from_schema(extra, depth + 1)
    more = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=2)
    return st.tuples(fixed, more).map(lambda t: {**t[1], **t[0]})


ATTRIBUTES = (
    "name description admin_state_up network_id subnet_id cidr ip_version gateway_ip enable_dhcp "
    "allocation_pools fixed_ips ip_address device_id device_owner mac_address security_groups "
    "port_security_enabled shared mtu tags direction ethertype protocol port_range_min port_range_max "
    "remote_ip_prefix remote_group_id security_group_id size volume_type imageRef snapshot_id "
    "availability_zone metadata bootable multiattach status visibility disk_format container_format "
    "min_disk min_ram protected extra_specs os-extend new_size instance_uuid mountpoint connector"
).split()


def _valid_bodies(
    schema: dict[str, Any] | None, op: openapi.Operation, ids: list[str]
) -> st.SearchStrategy[Any]:
    if schema is not None:
        return st.one_of(from_schema(schema, minimal=True), from_schema(schema))
    # no schema: a resource's usual attributes, with real ids among the values, in its wrapper key
    # ({"network": {...}}; Glance's bodies have none)
    attrs = st.dictionaries(
        st.one_of(st.sampled_from(ATTRIBUTES), st.text(max_size=12)),
        st.one_of(ANY_JSON, st.sampled_from(ids or ["x"])),
        max_size=5,
    )
    if op.method == "PATCH" and op.path.startswith("/image/"):  # a JSON patch: a list of changes
        change = st.fixed_dictionaries(
            {
                "op": st.sampled_from(["replace", "add", "remove", "move", "x"]),
                "path": st.one_of(st.sampled_from(ATTRIBUTES), st.text(max_size=12)).map(lambda a: "/" + a),
            },
            optional={"value": st.one_of(ANY_JSON, st.sampled_from(ids or ["x"]))},
        )
        return st.lists(change, max_size=3)
    if op.path.startswith("/image/"):
        return attrs
    words = [w for w in op.path.split("/") if w and "{" not in w]
    wrapper = words[-1].removesuffix("s").replace("-", "_") if words else "x"
    return attrs.map(lambda d: {wrapper: d})


# a body key -> the pool (path parameter) its real values come from
REF_KEYS = {
    "flavorRef": "flavor_id",
    "imageRef": "image_id",
    "image_id": "image_id",
    "uuid": "network_id",
    "port": "port_id",
    "port_id": "port_id",
    "net_id": "network_id",
    "network_id": "network_id",
    "subnet_id": "subnet_id",
    "volume_id": "volume_id",
    "volumeId": "volume_id",
    "security_group_id": "group_id",
    "remote_group_id": "group_id",
    "group": "group_id",
    "project_id": "project_id",
    "tenant_id": "project_id",
    "user_id": "user_id",
    "host": "pattern",
    "resource_provider_uuid": "uuid",
}


def _with_real_ids(value: Any, pool: dict[str, list[str]], draw: Any) -> Any:
    """``value`` with the values of id-like keys (``REF_KEYS``) replaced by real ids, so that
    bodies valid by the schema get past the look-ups and reach deeper code."""
    if isinstance(value, list):
        return [_with_real_ids(v, pool, draw) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    if "flavorRef" in value and "imageRef" not in value:  # the server create schema leaves it optional
        value = {**value, "imageRef": ""}
    for key, item in value.items():
        real = pool.get(REF_KEYS.get(key, "")) if isinstance(key, str) else None
        out[key] = draw(st.sampled_from(real)) if real else _with_real_ids(item, pool, draw)
    return out


def _version_header(service: str) -> st.SearchStrategy[dict[str, bytes]]:
    name = openapi.SERVICES[service][2] or service
    values = st.one_of(
        st.sampled_from([f"{name} latest", f"{name} 2.1", f"{name} 1.0", f"{name} 3.0", f"{name} 2.96"]),
        st.tuples(st.integers(0, 4), st.integers(-1, 120)).map(lambda t: f"{name} {t[0]}.{t[1]}"),
        st.sampled_from(
            ["latest", "compute", "compute 2.x", "placement 1.999999999999", "volume 3.70", "2.3"]
        ),
        st.binary(max_size=20).map(lambda b: name.encode() + b" " + b),
    )
    latest = {"OpenStack-API-Version": f"{name} latest".encode()}
    if name == "compute":
        latest["X-OpenStack-Nova-API-Version"] = b"latest"
    odd = st.one_of(
        st.just({}),
        values.map(lambda v: {"OpenStack-API-Version": v.encode() if isinstance(v, str) else v}),
        values.map(lambda v: {"X-OpenStack-Nova-API-Version": (v if isinstance(v, str) else "2.1").encode()}),
    )
    # half the cases at the newest version: the deepest code (and most routes) only answer there
    return st.integers(0, 1).flatmap(lambda i: st.just(latest) if i else odd)


def case_strategy(
    op: openapi.Operation, schema: dict[str, Any] | None, pool: dict[str, list[str]], tokens: dict[str, str]
) -> st.SearchStrategy[Case]:
    service = openapi.service_of(op.path) or "compute"
    valid = _valid_bodies(schema, op, sorted({i for v in pool.values() for i in v}))
    token_names = sorted(tokens)

    @st.composite
    def build(draw: Any) -> Case:
        path = op.path
        for param in op.params:
            real = pool.get(param) or []
            if real and draw(st.integers(0, 3)) > 0:
                value = quote(draw(st.sampled_from(real)), safe="")
            else:
                value = draw(JUNK_SEGMENTS)
            path = path.replace("{" + param + "}", value, 1)
        query = ""
        if draw(st.integers(0, 2)) == 0:
            pairs = draw(
                st.lists(
                    st.tuples(
                        st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=10)),
                        st.one_of(BOUNDARY_VALUES, st.text(max_size=20), JUNK_TEXT, st.binary(max_size=8)),
                    ),
                    min_size=1,
                    max_size=4,
                )
            )
            query = "?" + "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in pairs)
        headers: dict[str, bytes] = {}
        who = draw(st.sampled_from([*token_names * 4, "none", "garbage"]))  # 1 in 5 not logged in
        if who in tokens:
            headers["X-Auth-Token"] = tokens[who].encode()
        elif who == "garbage":
            headers["X-Auth-Token"] = draw(st.sampled_from([b"x", b"\xff\xfe", b"gAAAAA" + b"A" * 200, b" "]))
        headers.update(draw(_version_header(service)))
        if draw(st.integers(0, 9)) == 0:
            headers["Accept"] = draw(
                st.sampled_from([b"text/html", b"application/xml", b"*/*;q=x", b"\xff\xfe"])
            )
        if draw(st.integers(0, 9)) == 0:
            headers["X-Subject-Token"] = draw(st.sampled_from([b"junk", b"\xff", b"gAAAAA"]))
        body: bytes | None = None
        if op.method in openapi.BODY_METHODS:
            kind = draw(st.integers(0, 9))
            if kind <= 1:
                body = _encode(draw(valid), draw)
            elif kind <= 3:
                body = _encode(_with_real_ids(draw(valid), pool, draw), draw)
            elif kind <= 6:
                body = _encode(_mutate(draw(valid), draw), draw)
            elif kind <= 8:
                body = _encode(draw(ANY_JSON), draw)
            else:
                body = draw(RAW_BODIES)
            patch = b"application/openstack-images-v2.1-json-patch"
            content_type = draw(
                st.sampled_from(
                    (
                        [patch] * 6
                        if op.method == "PATCH" and service == "image"
                        else [b"application/json"] * 6
                    )
                    + [
                        b"text/plain",
                        b"application/openstack-images-v2.1-json-patch",
                        b"application/octet-stream",
                    ]
                )
            )
            headers["Content-Type"] = content_type
        # past ~8 KB a front web server answers 414 before the app sees the request
        return Case(op.method, (path + query)[:8000], headers, body)

    return build()


def _quoted(text: str | bytes) -> str:
    """Percent-encoded, bytes that are not UTF-8 (and lone surrogates) included."""
    return quote(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))


def _encode(value: Any, draw: Any) -> bytes:
    ascii_only = draw(st.booleans())
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")

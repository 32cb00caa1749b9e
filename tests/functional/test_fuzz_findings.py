"""Answers the API fuzzer (tests/functional/test_fuzz.py) found to be 500s, each a 4xx or a
success now; one test per finding, named after what the request did."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api
from tests.functional.test_servers_api import create, make_active


def test_tag_outside_latin1_is_added_and_its_location_is_percent_encoded(stack: Api) -> None:
    """PUT /servers/{id}/tags/{tag} with a tag outside Latin-1 was a 500: the tag went into the
    Location header as is, and a header is Latin-1."""
    server = create(stack, version="2.26")["server"]
    make_active(stack, server["id"])
    tag = "日本\U0001d33a"
    r = stack.put(f"/compute/v2.1/servers/{server['id']}/tags/{quote(tag)}", version="2.26")
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(f"/servers/{server['id']}/tags/{quote(tag, safe='')}")
    tags = stack.get(f"/compute/v2.1/servers/{server['id']}/tags", version="2.26").json()["tags"]
    assert tags == [tag]


def test_body_nested_a_thousand_deep_is_a_400(stack: Api) -> None:
    """POST /servers with {"server": {"server": ...}} 900 deep was a 500: the check for floats
    before the fast validation recursed past Python's limit."""
    body = b'{"server": ' * 900 + b"1" + b"}" * 900
    r = stack.post("/compute/v2.1/servers", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "badRequest" in r.json()


LONE_SURROGATES = [b'{"name": "\\ud800"}', b'{"name": "a\\uDFFF"}', b'{"name": "\xed\xa0\x80"}']


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgres"])
def test_lone_surrogate_in_a_body_is_a_400(stack_factory: Any, postgres: bool) -> None:
    """POST /image/v2/images with a string holding a lone surrogate (an escape such as \\ud800, or
    its bytes) was a 500 on PostgreSQL, which cannot store a string with no UTF-8 form. Every API
    reads its body the same way: the image, network and compute answers are 400."""
    api = stack_factory(postgres=postgres)
    json_type = {"Content-Type": "application/json"}
    for raw in LONE_SURROGATES:
        r = api.post("/image/v2/images", content=raw, headers=json_type)
        assert r.status_code == 400, r.text
        assert "not valid Unicode" in r.text
        network = raw.replace(b'{"name"', b'{"network": {"name"') + b"}"
        assert api.post("/network/v2.0/networks", content=network, headers=json_type).status_code == 400
        key = raw.replace(b'{"name"', b'{"keypair": {"name"') + b"}"
        assert api.post("/compute/v2.1/os-keypairs", content=key, headers=json_type).status_code == 400
    # a surrogate pair is one character, not a lone surrogate: accepted
    r = api.post("/image/v2/images", content=b'{"name": "\\ud83d\\ude00"}', headers=json_type)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "\U0001f600"


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgres"])
def test_query_numbers_past_the_columns_are_not_a_500(stack_factory: Any, postgres: bool) -> None:
    """GET /flavors?minRam=2147483648 (or minDisk) and GET /servers/{id}/os-instance-actions?limit=
    past 64 bits were 500s on PostgreSQL: the filter was bound as an INTEGER, the limit went to SQL
    as is. Now the flavor filter matches nothing and the limit is capped at 1,000, as Nova's."""
    api = stack_factory(postgres=postgres)
    for name in ("minRam", "minDisk"):
        for value in ("2147483648", "9223372036854775808", str(2**70)):
            r = api.get(f"/compute/v2.1/flavors?{name}={value}")
            assert r.status_code == 200, r.text
            assert r.json()["flavors"] == []
    assert api.get("/compute/v2.1/flavors?minRam=2048").json()["flavors"]  # an ordinary filter still works
    server = create(api, version="2.58")["server"]
    for value in ("1000", "9223372036854775808", str(2**70)):
        r = api.get(f"/compute/v2.1/servers/{server['id']}/os-instance-actions?limit={value}", version="2.58")
        assert r.status_code == 200, r.text
        assert [a["action"] for a in r.json()["instanceActions"]] == ["create"]

"""Answers the API fuzzer (tests/functional/test_fuzz.py) found to be 500s, each a 4xx or a
success now; one test per finding, named after what the request did."""

from __future__ import annotations

from urllib.parse import quote

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

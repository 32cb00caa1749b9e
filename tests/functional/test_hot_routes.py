"""``api.hot_routes``: POST /servers answers the same through the direct path as through
FastAPI's router (``create_app(..., hot_routes=False)``): status, body and headers, for creates
that succeed and for each kind of refusal (no token, bad JSON, a schema error, an unknown flavor,
a project id in the URL that is not the token's, an unsupported microversion, over quota)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
# generated per request: ids, passwords, reservation and request ids
_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|req-[0-9a-f-]{36}|r-[0-9a-z]{8}\b"
)


def _image(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def _shape(r: Any) -> tuple[int, str, dict[str, str]]:
    body = _VOLATILE.sub("<id>", r.text)
    body = re.sub(r'"adminPass": ?"[^"]+"', '"adminPass": "<pw>"', body)
    headers = {
        k: _VOLATILE.sub("<id>", v) for k, v in r.headers.items() if k not in ("date", "content-length")
    }
    return r.status_code, body, headers


@pytest.fixture()
def pair(stack: Api) -> Any:
    from novalite.app import create_app

    plain = TestClient(
        create_app(stack.runtime, start_background=False, hot_routes=False),  # type: ignore[attr-defined]
        raise_server_exceptions=False,
    )
    return stack, Api(client=plain, tokens=stack.tokens, ids=stack.ids)


def test_post_servers_answers_the_same_with_and_without_the_direct_path(pair: Any) -> None:
    from novalite.api.hot_routes import HotRoutes

    hot, plain = pair
    assert [m.cls for m in hot.client.app.user_middleware].count(HotRoutes) == 1
    assert [m.cls for m in plain.client.app.user_middleware].count(HotRoutes) == 0
    image = _image(hot)
    good = {"server": {"name": "same", "flavorRef": "1", "imageRef": image}}
    cases: list[tuple[str, dict[str, Any]]] = [
        (SERVERS, {"json": good}),
        (SERVERS, {"json": good, "version": "2.37"}),  # networks is required from 2.37
        (SERVERS, {"json": {"server": {**good["server"], "networks": "none"}}, "version": "2.96"}),
        (SERVERS, {"json": good, "as_": ""}),  # no token: 401
        (SERVERS, {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        (SERVERS, {"json": {"server": {"name": "x" * 300, "flavorRef": "1", "imageRef": image}}}),
        (SERVERS, {"json": {"server": {**good["server"], "flavorRef": "no-such-flavor"}}}),
        (SERVERS, {"json": {"server": {**good["server"], "min_count": 3, "max_count": 2}}}),
        (SERVERS, {"json": good, "version": "2.999"}),  # not a supported version: 406
        (f"/compute/v2.1/{'0' * 32}/servers", {"json": good}),  # someone else's project id in the URL
        (f"/compute/v2.1/{hot.ids['demo_project']}/servers", {"json": good}),  # the token's own
        (SERVERS, {"json": {"server": {**good["server"], "return_reservation_id": True}}}),
    ]
    for path, kw in cases:
        a, b = hot.post(path, **kw), plain.post(path, **kw)
        assert _shape(a) == _shape(b), (path, kw)
    assert hot.post(SERVERS, json=good).status_code == 202  # the direct path did create

    used = len(hot.get(f"{SERVERS}?limit=1000").json()["servers"])
    r = hot.put(
        f"/compute/v2.1/os-quota-sets/{hot.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"instances": used}},
    )
    assert r.status_code == 200, r.text
    a, b = hot.post(SERVERS, json=good), plain.post(SERVERS, json=good)
    assert a.status_code == 403 and _shape(a) == _shape(b)

"""Issue 16 item 7: bad input that used to give a 500 is a 4xx in the service's own envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Api


def _nova_fault(r: Any, status: int, name: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == [name], body
    assert body[name]["code"] == status
    return body[name]  # type: ignore[no-any-return]


def _keystone_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status
    return err  # type: ignore[no-any-return]


# ---- headers that are not valid text (UTF-8) ----


@dataclass
class RawResponse:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def _raw_get(api: Api, path: str, headers: list[tuple[bytes, bytes]]) -> RawResponse:
    """GET through the ASGI app with header bytes as given: the test client re-encodes them."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    async def call() -> None:
        await api.client.app(scope, receive, send)

    api.client.portal.call(call)
    return RawResponse(out["status"], out["body"])


def _token(api: Api, who: str = "demo") -> tuple[bytes, bytes]:
    return (b"x-auth-token", api.tokens[who].encode())


def test_non_utf8_token_is_401(stack: Api) -> None:
    for value in (b"\xff\xfe", b"abc\xff"):
        r = _raw_get(stack, "/compute/v2.1/flavors", [(b"x-auth-token", value)])
        # keystonemiddleware's answer, in Keystone's envelope, before Nova sees the request
        assert _keystone_error(r, 401)["message"] == "The request you have made requires authentication."
        r = _raw_get(stack, "/compute/v2.1", [(b"x-auth-token", value)])
        assert r.status_code < 500, r.text
    r = _raw_get(stack, "/identity/v3/auth/catalog", [(b"x-auth-token", b"\xff")])
    _keystone_error(r, 401)
    r = _raw_get(stack, "/image/v2/images", [(b"x-auth-token", b"\xff")])
    assert r.status_code == 401, r.text


def test_non_utf8_version_header_is_400(stack: Api) -> None:
    for name in (b"openstack-api-version", b"x-openstack-nova-api-version"):
        r = _raw_get(stack, "/compute/v2.1/flavors", [_token(stack), (name, b"compute 2.\xff")])
        fault = _nova_fault(r, 400, "badRequest")
        assert "invalid format" in fault["message"], fault


def test_non_utf8_other_header_is_ignored(stack: Api) -> None:
    r = _raw_get(stack, "/compute/v2.1/flavors", [_token(stack), (b"x-whatever", b"\xff\xfe")])
    assert r.status_code == 200, r.text
    r = _raw_get(stack, "/compute/v2.1/flavors", [(b"x-whatever", b"\xff")])
    _keystone_error(r, 401)
    r = _raw_get(stack, "/compute/v2.1/flavors", [_token(stack), (b"\xff\xfe", b"x")])
    assert r.status_code == 200, r.text


# ---- POST /identity/v3/auth/tokens with the wrong types ----

_GOOD_USER = {"name": "demo", "domain": {"name": "Default"}, "password": "demo-secret"}
BAD_AUTH_BODIES: list[Any] = [
    [],
    "x",
    {"auth": "x"},
    {"auth": []},
    {"auth": {"identity": []}},
    {"auth": {"identity": "x"}},
    {"auth": {"identity": {"methods": "password", "password": {"user": _GOOD_USER}}}},
    {"auth": {"identity": {"methods": [5], "password": {"user": _GOOD_USER}}}},
    {"auth": {"identity": {"methods": ["password"], "password": "x"}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": 5}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": []}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {**_GOOD_USER, "name": 5}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {**_GOOD_USER, "id": []}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {**_GOOD_USER, "domain": "x"}}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {**_GOOD_USER, "password": 5}}}}},
    {"auth": {"identity": {"methods": ["token"], "token": "x"}}},
    {"auth": {"identity": {"methods": ["token"], "token": {"id": 5}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": _GOOD_USER}}, "scope": "x"}},
    {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": _GOOD_USER}},
            "scope": {"project": {"name": "demo", "domain": []}},
        }
    },
    {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": _GOOD_USER}},
            "scope": {"project": {"id": 5}},
        }
    },
]


@pytest.mark.parametrize("body", BAD_AUTH_BODIES, ids=lambda b: json.dumps(b)[:60])
def test_auth_tokens_wrong_types_are_400(stack: Api, body: Any) -> None:
    r = stack.client.post("/identity/v3/auth/tokens", json=body)
    err = _keystone_error(r, 400)
    assert err["title"] == "Bad Request"


def test_auth_tokens_still_work(stack: Api) -> None:
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": _GOOD_USER}},
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
        }
    }
    r = stack.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    r = stack.client.post("/identity/v3/auth/tokens", json=rescope)
    assert r.status_code == 201, r.text


# ---- users and projects ----


def test_rename_to_taken_name_is_409(stack: Api) -> None:
    a = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "pa"}}).json()["project"]
    stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "pb"}})
    r = stack.patch(f"/identity/v3/projects/{a['id']}", as_="admin", json={"project": {"name": "pb"}})
    err = _keystone_error(r, 409)
    assert "Duplicate entry" in err["message"]
    # renaming to its own name is fine
    r = stack.patch(f"/identity/v3/projects/{a['id']}", as_="admin", json={"project": {"name": "pa"}})
    assert r.status_code == 200, r.text

    u = stack.post("/identity/v3/users", as_="admin", json={"user": {"name": "ua"}}).json()["user"]
    stack.post("/identity/v3/users", as_="admin", json={"user": {"name": "ub"}})
    r = stack.patch(f"/identity/v3/users/{u['id']}", as_="admin", json={"user": {"name": "ub"}})
    err = _keystone_error(r, 409)
    assert "Duplicate entry" in err["message"]
    r = stack.patch(f"/identity/v3/users/{u['id']}", as_="admin", json={"user": {"name": "ua"}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field", ["enabled", "default_project_id", "name", "email", "description"])
def test_user_wrong_types_are_400(stack: Api, field: str) -> None:
    bads: list[Any] = ["false", 5, [], {}] if field == "enabled" else [5, [], {}, True]
    uid = stack.post("/identity/v3/users", as_="admin", json={"user": {"name": "typed"}}).json()["user"]["id"]
    for bad in bads:
        r = stack.post("/identity/v3/users", as_="admin", json={"user": {"name": "u1", field: bad}})
        _keystone_error(r, 400)
        r = stack.patch(f"/identity/v3/users/{uid}", as_="admin", json={"user": {field: bad}})
        _keystone_error(r, 400)
    u = stack.get(f"/identity/v3/users/{uid}", as_="admin").json()["user"]
    assert u["name"] == "typed" and u["enabled"] is True


@pytest.mark.parametrize("field", ["enabled", "name", "description"])
def test_project_wrong_types_are_400(stack: Api, field: str) -> None:
    bads: list[Any] = ["false", 5, [], {}] if field == "enabled" else [5, [], {}, True]
    pid = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "t"}}).json()["project"]
    for bad in bads:
        r = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "p1", field: bad}})
        _keystone_error(r, 400)
        r = stack.patch(f"/identity/v3/projects/{pid['id']}", as_="admin", json={"project": {field: bad}})
        _keystone_error(r, 400)


def test_user_enabled_false_still_works(stack: Api) -> None:
    r = stack.post("/identity/v3/users", as_="admin", json={"user": {"name": "off", "enabled": False}})
    assert r.status_code == 201 and r.json()["user"]["enabled"] is False, r.text
    uid = r.json()["user"]["id"]
    r = stack.patch(f"/identity/v3/users/{uid}", as_="admin", json={"user": {"enabled": True}})
    assert r.status_code == 200 and r.json()["user"]["enabled"] is True, r.text
    r = stack.patch(f"/identity/v3/users/{uid}", as_="admin", json={"user": {"default_project_id": None}})
    assert r.status_code == 200, r.text


# ---- NUL characters, on SQLite and on PostgreSQL ----


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: Any, stack_factory: Any) -> Api:
    return stack_factory(postgres=request.param == "postgres")  # type: ignore[no-any-return]


NUL = "a\u0000b"


def test_nul_in_bodies_is_400(any_db: Api) -> None:
    api = any_db
    r = api.post("/identity/v3/users", as_="admin", json={"user": {"name": NUL}})
    assert "NUL" in _keystone_error(r, 400)["message"]
    r = api.post("/identity/v3/projects", as_="admin", json={"project": {"name": "x", "description": NUL}})
    _keystone_error(r, 400)
    r = api.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": [NUL]}}})
    _keystone_error(r, 400)
    r = api.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": NUL}})
    assert "NUL" in _nova_fault(r, 400, "badRequest")["message"]
    r = api.post("/compute/v2.1/servers", json={"server": {"name": NUL, "flavorRef": "1", "imageRef": NUL}})
    _nova_fault(r, 400, "badRequest")
    r = api.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "k", NUL: 1}})
    _nova_fault(r, 400, "badRequest")
    r = api.post("/network/v2.0/networks", json={"network": {"name": NUL}})
    assert r.status_code == 400 and "NeutronError" in r.json(), r.text
    r = api.post("/volume/v3/volumes", json={"volume": {"name": NUL, "size": 1}})
    assert r.status_code == 400, r.text
    r = api.post("/image/v2/images", json={"name": NUL})
    assert r.status_code == 400 and r.json()["code"] == 400, r.text
    r = api.request(
        "POST",
        "/placement/resource_providers",
        as_="admin",
        json={"name": NUL},
        headers={"OpenStack-API-Version": "placement 1.20"},
    )
    assert r.status_code == 400 and "errors" in r.json(), r.text
    # the image API's JSON-patch is read raw (not through json_body): image.patch checks it
    iid = api.post("/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"})
    iid = iid.json()["id"]
    patch_type = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    for op in (
        {"op": "replace", "path": "/name", "value": NUL},
        {"op": "add", "path": "/foo", "value": NUL},
        {"op": "add", "path": "/a\u0000", "value": "b"},
    ):
        r = api.patch(f"/image/v2/images/{iid}", json=[op], headers=patch_type)
        assert r.status_code == 400 and r.json()["code"] == 400 and "NUL" in r.text, r.text
    r = api.patch(
        f"/image/v2/images/{iid}",
        json=[{"op": "replace", "path": "/name", "value": "ok"}],
        headers=patch_type,
    )
    assert r.status_code == 200 and r.json()["name"] == "ok", r.text
    r = api.patch(f"/image/v2/images/{iid}", content=b"[{", headers=patch_type)
    assert r.status_code == 400, r.text
    # an escaped backslash followed by "u0000" is no NUL: a plain keypair name error, not ours
    r = api.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "\\u0000"}})
    assert r.status_code in (200, 400) and "NUL" not in r.text, r.text


def test_nul_in_query_and_path_is_400(any_db: Api) -> None:
    api = any_db
    r = api.get("/compute/v2.1/servers?name=a%00b")
    assert "NUL" in _nova_fault(r, 400, "badRequest")["message"]
    r = api.get("/compute/v2.1/servers/detail?image=%00")
    _nova_fault(r, 400, "badRequest")
    # no resource is named with a NUL: 404, as api.common.reject_nul answers
    r = api.get("/compute/v2.1/os-keypairs/a%00b")
    _nova_fault(r, 404, "itemNotFound")
    r = api.get("/compute/v2.1/servers/a%00b")
    _nova_fault(r, 404, "itemNotFound")
    r = api.delete("/compute/v2.1/os-server-groups/a%00b")
    _nova_fault(r, 404, "itemNotFound")
    r = api.get("/identity/v3/users?name=a%00b", as_="admin")
    _keystone_error(r, 400)
    r = api.get("/identity/v3/users/a%00b", as_="admin")
    _keystone_error(r, 404)
    r = api.patch("/identity/v3/projects/a%00b", as_="admin", json={"project": {"name": "x"}})
    _keystone_error(r, 404)
    r = api.get("/network/v2.0/networks?name=a%00b")
    assert r.status_code == 400 and "NeutronError" in r.json(), r.text
    r = api.get("/image/v2/images?name=a%00b")
    assert r.status_code == 400 and r.json()["code"] == 400, r.text
    r = api.get("/image/v2/images/a%00b")
    assert r.status_code == 404 and r.json()["code"] == 404, r.text
    r = api.get("/network/v2.0/ports/a%00b")
    assert r.status_code == 404 and "NeutronError" in r.json(), r.text
    r = api.get("/volume/v3/volumes/detail?name=a%00b")
    assert r.status_code == 400, r.text
    r = api.request(
        "GET",
        "/placement/resource_providers?name=a%00b",
        as_="admin",
        headers={"OpenStack-API-Version": "placement 1.20"},
    )
    assert r.status_code == 400 and "errors" in r.json(), r.text


def test_non_utf8_headers_elsewhere_are_never_500(stack: Api) -> None:
    for path in (
        "/placement/resource_providers",
        "/volume/v3/volumes",
        "/network/v2.0/networks",
        "/image/v2/images",
        "/identity/v3/users",
        "/compute/v2.1/servers",
    ):
        for name in (
            b"openstack-api-version",
            b"x-openstack-nova-api-version",
            b"x-subject-token",
            b"accept",
        ):
            r = _raw_get(stack, path, [_token(stack, "admin"), (name, b"compute 2.\xff")])
            assert r.status_code < 500, (path, name, r.text)

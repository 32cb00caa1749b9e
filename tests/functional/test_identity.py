"""Keystone subset: discovery, tokens, admin APIs, policy."""

from __future__ import annotations

import datetime as dt

from tests.conftest import ADMIN_PW, DEMO_PW, Api


def _auth_body(user: str, password: str, project: str | None = "admin") -> dict:
    body: dict = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
            }
        }
    }
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return body


def test_discovery_documents(stack: Api) -> None:
    r = stack.client.get("/identity/")
    assert r.status_code == 300
    assert r.json()["versions"]["values"][0]["id"] == "v3.14"
    r = stack.client.get("/identity/v3")
    assert r.status_code == 200
    assert r.json()["version"]["links"][0]["href"] == "http://testserver/identity/v3/"


def test_token_issue_shape(stack: Api) -> None:
    r = stack.client.post("/identity/v3/auth/tokens", json=_auth_body("admin", ADMIN_PW))
    assert r.status_code == 201
    assert r.headers["X-Subject-Token"]
    token = r.json()["token"]
    dt.datetime.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    dt.datetime.strptime(token["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert token["project"]["name"] == "admin"
    assert token["project"]["id"] == stack.ids["admin_project"]
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    types = {c["type"] for c in token["catalog"]}
    assert {"compute", "identity"} <= types
    compute = next(c for c in token["catalog"] if c["type"] == "compute")
    public = next(e for e in compute["endpoints"] if e["interface"] == "public")
    assert public["url"] == "http://testserver/compute/v2.1"
    assert public["region"] == public["region_id"] == "RegionOne"


def test_bad_credentials_are_401_in_keystone_envelope(stack: Api) -> None:
    r = stack.client.post("/identity/v3/auth/tokens", json=_auth_body("admin", "wrong"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401
    assert r.json()["error"]["title"] == "Unauthorized"
    r = stack.client.post("/identity/v3/auth/tokens", json=_auth_body("nobody", "x"))
    assert r.status_code == 401


def test_demo_cannot_scope_to_admin_project(stack: Api) -> None:
    r = stack.client.post("/identity/v3/auth/tokens", json=_auth_body("demo", "demo-secret", "admin"))
    assert r.status_code == 401


def test_malformed_auth_body(stack: Api) -> None:
    r = stack.client.post(
        "/identity/v3/auth/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert "error" in r.json()
    r = stack.client.post("/identity/v3/auth/tokens", json={"nope": 1})
    assert r.status_code == 400


def test_token_validation(stack: Api) -> None:
    r = stack.get("/identity/v3/auth/tokens", as_="admin", headers={"X-Subject-Token": stack.tokens["demo"]})
    assert r.status_code == 200
    assert r.json()["token"]["user"]["name"] == "demo"
    r = stack.request("HEAD", "/identity/v3/auth/tokens", as_="admin", headers={"X-Subject-Token": "garbage"})
    assert r.status_code == 404
    r = stack.client.get(
        "/identity/v3/auth/tokens", headers={"X-Auth-Token": "garbage", "X-Subject-Token": "x"}
    )
    assert r.status_code == 401


def test_admin_creates_project_user_and_role_assignment(stack: Api) -> None:
    r = stack.post(
        "/identity/v3/projects", as_="admin", json={"project": {"name": "p1", "domain_id": "default"}}
    )
    assert r.status_code == 201
    pid = r.json()["project"]["id"]
    r = stack.post("/identity/v3/projects", as_="admin", json={"project": {"name": "p1"}})
    assert r.status_code == 409
    r = stack.post(
        "/identity/v3/users",
        as_="admin",
        json={"user": {"name": "u1", "password": "pw1", "default_project_id": pid}},
    )
    assert r.status_code == 201
    uid = r.json()["user"]["id"]
    role = stack.get("/identity/v3/roles?name=member", as_="admin").json()["roles"][0]
    assert (
        stack.put(f"/identity/v3/projects/{pid}/users/{uid}/roles/{role['id']}", as_="admin").status_code
        == 204
    )
    token = stack.token_for("u1", "pw1", "p1")
    assert token
    r = stack.get(f"/identity/v3/role_assignments?user.id={uid}&include_names", as_="admin")
    assert r.json()["role_assignments"][0]["role"]["name"] == "member"


def test_member_gets_403_on_admin_apis(stack: Api) -> None:
    r = stack.post("/identity/v3/projects", as_="demo", json={"project": {"name": "x"}})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == 403
    assert stack.get("/identity/v3/users", as_="demo").status_code == 403


def test_missing_token_is_401(stack: Api) -> None:
    assert stack.client.get("/identity/v3/projects").status_code == 401


def test_expired_token_is_rejected(stack: Api) -> None:
    import datetime as dt

    rt = stack.runtime  # type: ignore[attr-defined]
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
    token, _ = rt.tokens.issue(
        user=(stack.ids["demo_user"], "demo"),
        project=(stack.ids["demo_project"], "demo"),
        roles=[("x", "member")],
        expires_at=past,
    )
    r = stack.client.get("/identity/v3/auth/catalog", headers={"X-Auth-Token": token})
    assert r.status_code == 401
    r = stack.client.get("/compute/v2.1/flavors", headers={"X-Auth-Token": token})
    assert r.status_code in (401, 404)  # 404 only while no flavors router is registered


def test_identity_on_postgresql(stack_factory) -> None:  # type: ignore[no-untyped-def]
    api = stack_factory(postgres=True)
    r = api.get("/identity/v3/auth/tokens", as_="admin", headers={"X-Subject-Token": api.tokens["demo"]})
    assert r.status_code == 200
    assert r.json()["token"]["project"]["name"] == "demo"


def test_repeated_logins_and_a_password_change(stack: Api) -> None:
    """Successful checks are remembered (Tempest logs in hundreds of times); a new password
    replaces the old one at once."""
    for _ in range(3):
        assert (
            stack.client.post(
                "/identity/v3/auth/tokens", json=_auth_body("demo", DEMO_PW, "demo")
            ).status_code
            == 201
        )
    demo_id = stack.ids["demo_user"]
    r = stack.patch(f"/identity/v3/users/{demo_id}", as_="admin", json={"user": {"password": "new-secret"}})
    assert r.status_code == 200, r.text
    assert (
        stack.client.post("/identity/v3/auth/tokens", json=_auth_body("demo", DEMO_PW, "demo")).status_code
        == 401
    )
    assert (
        stack.client.post(
            "/identity/v3/auth/tokens", json=_auth_body("demo", "new-secret", "demo")
        ).status_code
        == 201
    )

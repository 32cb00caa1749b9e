"""A token stops working when what it stands for changes (issue 16, item 2).

For each of Keystone's revocation causes (policy-and-tokens.md §5.4), a token that worked on
Compute and Identity is refused within a second of the change: 401 on Compute, 404 as the subject
of GET /v3/auth/tokens, and it cannot be re-scoped into a new token. The same on PostgreSQL, and
across two processes (two Runtimes) on one database. Token lifetime: settable, honoured.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from novalite.config import load_settings
from novalite.errors import Unauthorized
from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
TOKENS = "/identity/v3/auth/tokens"
PASSWORD = "pw-" + "x" * 8
WITHIN = 1.0  # seconds an event may take to reach a token check


@dataclass
class Member:
    user_id: str
    project_id: str
    role_id: str
    name: str
    token: str


def _member(api: Api) -> Member:
    """A fresh project and user with the member role on it, and a token of theirs."""
    name = "u" + uuid.uuid4().hex[:8]
    p = api.post("/identity/v3/projects", as_="admin", json={"project": {"name": "p-" + name}})
    assert p.status_code == 201, p.text
    project_id = p.json()["project"]["id"]
    u = api.post(
        "/identity/v3/users",
        as_="admin",
        json={"user": {"name": name, "password": PASSWORD, "default_project_id": project_id}},
    )
    assert u.status_code == 201, u.text
    user_id = u.json()["user"]["id"]
    role_id = api.get("/identity/v3/roles?name=member", as_="admin").json()["roles"][0]["id"]
    r = api.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", as_="admin")
    assert r.status_code == 204, r.text
    token = api.token_for(name, PASSWORD, "p-" + name)
    return Member(user_id, project_id, role_id, name, token)


def _works(api: Api, token: str) -> None:
    assert api.client.get(SERVERS, headers={"X-Auth-Token": token}).status_code == 200
    r = api.client.get(TOKENS, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code == 200, r.text


def _rescope(api: Api, token: str) -> Any:
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    return api.client.post(TOKENS, json=body)


def _refused(api: Api, token: str) -> None:
    """Within a second, the token gets 401 on Compute (polled); then every other use fails."""
    deadline = time.monotonic() + WITHIN
    while True:
        r = api.client.get(SERVERS, headers={"X-Auth-Token": token})
        if r.status_code == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 401, f"still {r.status_code} a second after the event"
    # the same answer as a token that never was
    assert r.json() == api.client.get(SERVERS, headers={"X-Auth-Token": "garbage"}).json()
    r = api.get(TOKENS, as_="admin", headers={"X-Subject-Token": token})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404
    assert api.client.get("/identity/v3/auth/catalog", headers={"X-Auth-Token": token}).status_code == 401
    r = _rescope(api, token)
    assert r.status_code == 404, r.text
    assert "X-Subject-Token" not in r.headers


def _disable_user(api: Api, m: Member) -> None:
    r = api.patch(f"/identity/v3/users/{m.user_id}", as_="admin", json={"user": {"enabled": False}})
    assert r.status_code == 200, r.text


def _delete_user(api: Api, m: Member) -> None:
    assert api.delete(f"/identity/v3/users/{m.user_id}", as_="admin").status_code == 204


def _admin_sets_password(api: Api, m: Member) -> None:
    r = api.patch(f"/identity/v3/users/{m.user_id}", as_="admin", json={"user": {"password": "new-pw-1"}})
    assert r.status_code == 200, r.text


def _user_changes_password(api: Api, m: Member) -> None:
    body = {"user": {"password": "new-pw-2", "original_password": PASSWORD}}
    r = api.client.post(f"/identity/v3/users/{m.user_id}/password", json=body)
    assert r.status_code == 204, r.text


def _revoke_role(api: Api, m: Member) -> None:
    r = api.delete(f"/identity/v3/projects/{m.project_id}/users/{m.user_id}/roles/{m.role_id}", as_="admin")
    assert r.status_code == 204, r.text


def _disable_project(api: Api, m: Member) -> None:
    r = api.patch(f"/identity/v3/projects/{m.project_id}", as_="admin", json={"project": {"enabled": False}})
    assert r.status_code == 200, r.text


def _delete_project(api: Api, m: Member) -> None:
    assert api.delete(f"/identity/v3/projects/{m.project_id}", as_="admin").status_code == 204


def _revoke_token(api: Api, m: Member) -> None:
    # the token's own user revokes it
    h = {"X-Auth-Token": m.token, "X-Subject-Token": m.token}
    assert api.client.delete(TOKENS, headers=h).status_code == 204


EVENTS: list[Callable[[Api, Member], None]] = [
    _disable_user,
    _delete_user,
    _admin_sets_password,
    _user_changes_password,
    _revoke_role,
    _disable_project,
    _delete_project,
    _revoke_token,
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda f: f.__name__.lstrip("_"))
def test_event_revokes_token(stack: Api, event: Callable[[Api, Member], None]) -> None:
    m = _member(stack)
    bystander = _member(stack)
    _works(stack, m.token)
    event(stack, m)
    _refused(stack, m.token)
    _works(stack, bystander.token)  # another user's token on another project is untouched
    _works(stack, stack.tokens["demo"])


def test_every_event_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(postgres=True)
    for event in EVENTS:
        m = _member(api)
        _works(api, m.token)
        event(api, m)
        _refused(api, m.token)
    _works(api, api.tokens["demo"])


def test_a_reenabled_user_keeps_old_tokens_dead(stack: Api) -> None:
    m = _member(stack)
    _disable_user(stack, m)
    _refused(stack, m.token)
    r = stack.patch(f"/identity/v3/users/{m.user_id}", as_="admin", json={"user": {"enabled": True}})
    assert r.status_code == 200
    _refused(stack, m.token)
    _works(stack, stack.token_for(m.name, PASSWORD, "p-" + m.name))


def test_revoking_a_token_is_that_token_only(stack: Api) -> None:
    m = _member(stack)
    child = _rescope(stack, m.token)
    assert child.status_code == 201
    sibling = stack.token_for(m.name, PASSWORD, "p-" + m.name)
    _revoke_token(stack, m)
    _refused(stack, m.token)
    _works(stack, child.headers["X-Subject-Token"])
    _works(stack, sibling)
    # revoking it again: it is not a valid token any more
    h = {"X-Auth-Token": sibling, "X-Subject-Token": m.token}
    assert stack.client.delete(TOKENS, headers=h).status_code == 404


def test_only_admin_or_the_owner_looks_at_or_revokes_a_token(stack: Api) -> None:
    m = _member(stack)
    h = {"X-Auth-Token": stack.tokens["demo"], "X-Subject-Token": m.token}
    for method, rule in (("GET", "validate"), ("DELETE", "revoke")):
        r = stack.client.request(method, TOKENS, headers=h)
        assert r.status_code == 403
        assert r.json()["error"]["message"] == (
            f"You are not authorized to perform the requested action: identity:{rule}_token."
        )
    assert stack.client.head(TOKENS, headers=h).status_code == 403
    assert stack.client.head(TOKENS, headers={**h, "X-Auth-Token": m.token}).status_code == 200
    _works(stack, m.token)
    r = stack.delete(TOKENS, as_="admin", headers={"X-Subject-Token": m.token})
    assert r.status_code == 204
    _refused(stack, m.token)


def test_a_role_still_implied_keeps_the_token(stack: Api) -> None:
    """Removing ``member`` from a user who also has ``admin`` there (admin implies member): every
    role the token carries is still held, so it stays valid; removing ``admin`` then kills it."""
    m = _member(stack)
    admin_role = stack.get("/identity/v3/roles?name=admin", as_="admin").json()["roles"][0]["id"]
    grant = f"/identity/v3/projects/{m.project_id}/users/{m.user_id}/roles/{admin_role}"
    assert stack.put(grant, as_="admin").status_code == 204
    token = stack.token_for(m.name, PASSWORD, "p-" + m.name)
    _revoke_role(stack, m)
    _works(stack, token)
    assert stack.delete(grant, as_="admin").status_code == 204
    _refused(stack, token)


def test_a_second_process_refuses_a_revoked_token(stack: Api) -> None:
    """Another Runtime on the same database (the engine process, another API host) sees the
    event within a second, though it had validated (and cached) the token before."""
    from novalite.app import build_runtime, create_app

    rt = stack.runtime  # type: ignore[attr-defined]
    other = build_runtime(rt.settings)
    try:
        client = TestClient(create_app(other), raise_server_exceptions=False)  # no lifespan: no engine
        m = _member(stack)
        assert other.tokens.validate(m.token).user_id == m.user_id
        h = {"X-Auth-Token": stack.tokens["admin"], "X-Subject-Token": m.token}
        assert client.get(TOKENS, headers=h).status_code == 200
        _disable_user(stack, m)
        deadline = time.monotonic() + WITHIN
        refused = False
        while not refused and time.monotonic() <= deadline:
            try:
                other.tokens.validate(m.token)
                time.sleep(0.05)
            except Unauthorized:
                refused = True
        assert refused, "the other process still accepts the token a second after the event"
        assert client.get(TOKENS, headers=h).status_code == 404
        # a process started after the event refuses the token at its first check
        fresh = build_runtime(rt.settings)
        with pytest.raises(Unauthorized):
            fresh.tokens.validate(m.token)
        fresh.db.dispose()
    finally:
        other.db.dispose()


def test_token_lifetime_setting(stack_factory: Any) -> None:
    api = stack_factory(token_ttl=120)
    r = api.get(TOKENS, as_="admin", headers={"X-Subject-Token": api.tokens["demo"]})
    token = r.json()["token"]
    parse = lambda s: dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    assert parse(token["expires_at"]) - parse(token["issued_at"]) == dt.timedelta(seconds=120)
    child = _rescope(api, api.tokens["demo"])
    assert child.status_code == 201
    assert child.json()["token"]["expires_at"] == token["expires_at"]  # a re-scope keeps the expiry


def test_token_lifetime_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "novalite.toml").write_text("[novalite]\ntoken_ttl = 600\nlockout_failure_attempts = 5\n")
    s = load_settings({"data_dir": tmp_path}, environ={})
    assert (s.token_ttl, s.lockout_failure_attempts, s.lockout_duration) == (600, 5, 1800)
    s = load_settings({"data_dir": tmp_path}, environ={"NOVALITE_TOKEN_TTL": "900"})
    assert s.token_ttl == 900


def test_deleting_a_role_revokes_the_tokens_that_carry_it(stack: Api) -> None:
    m = _member(stack)
    r = stack.post("/identity/v3/roles", as_="admin", json={"role": {"name": "r-" + m.name}})
    assert r.status_code == 201, r.text
    role = r.json()["role"]["id"]
    grant = f"/identity/v3/projects/{m.project_id}/users/{m.user_id}/roles/{role}"
    assert stack.put(grant, as_="admin").status_code == 204
    first = stack.token_for(m.name, PASSWORD, "p-" + m.name)
    assert stack.delete(grant, as_="admin").status_code == 204  # the grant goes: that token dies
    _refused(stack, first)
    assert stack.put(grant, as_="admin").status_code == 204
    second = stack.token_for(m.name, PASSWORD, "p-" + m.name)  # issued after the grant's event
    _works(stack, second)
    assert stack.delete(f"/identity/v3/roles/{role}", as_="admin").status_code == 204
    _refused(stack, second)
    _works(stack, m.token)  # it never carried the role

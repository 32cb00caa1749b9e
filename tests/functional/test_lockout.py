"""Login lockout (Keystone's [security_compliance], policy-and-tokens.md §5.6): off by default; with
``lockout_failure_attempts`` N, N wrong passwords in a row lock the account for
``lockout_duration`` seconds, even against the right password; then the right one works again and
the count starts over."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PW, Api

TOKENS = "/identity/v3/auth/tokens"
GENERIC = "The request you have made requires authentication."


def _login(api: Api, password: str) -> httpx.Response:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": password}},
            },
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
        }
    }
    return api.client.post(TOKENS, json=body)  # type: ignore[no-any-return]


def _refused(r: httpx.Response, message: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {"error": {"code": 401, "title": "Unauthorized", "message": message}}
    assert r.headers["WWW-Authenticate"] == 'Keystone uri="http://testserver/identity/v3"'


def test_off_by_default(stack: Api) -> None:
    for _ in range(10):
        _refused(_login(stack, "wrong"), GENERIC)
    assert _login(stack, DEMO_PW).status_code == 201


def test_locked_after_n_wrong_passwords_then_unlocked_after_the_duration(stack_factory: Any) -> None:
    api = stack_factory(lockout_failure_attempts=3, lockout_duration=1)
    demo = api.ids["demo_user"]
    for _ in range(3):
        _refused(_login(api, "wrong"), GENERIC)
    locked = f"The account is locked for user: {demo}."
    _refused(_login(api, DEMO_PW), locked)  # even the right password
    _refused(_login(api, "wrong"), locked)
    # other users are not locked
    assert api.token_for("admin", "admin-secret", "admin")
    # the lock lifts after lockout_duration (1 s): polled with the right password, which is not counted
    deadline = time.monotonic() + 10
    while (r := _login(api, DEMO_PW)).status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status_code == 201, r.text
    # the count started over: two wrong passwords do not lock
    for _ in range(2):
        _refused(_login(api, "wrong"), GENERIC)
    assert _login(api, DEMO_PW).status_code == 201
    # a success reset it again: two more wrong ones still do not lock
    for _ in range(2):
        _refused(_login(api, "wrong"), GENERIC)
    assert _login(api, DEMO_PW).status_code == 201


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_concurrent_wrong_passwords_all_count(stack_factory: Any, postgres: bool) -> None:
    api = stack_factory(lockout_failure_attempts=4, lockout_duration=600, postgres=postgres)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _login(api, "wrong").status_code, range(4)))
    assert answers == [401] * 4
    _refused(_login(api, DEMO_PW), f"The account is locked for user: {api.ids['demo_user']}.")


def test_an_admin_password_reset_lifts_the_lock(stack_factory: Any) -> None:
    api = stack_factory(lockout_failure_attempts=2, lockout_duration=0)  # 0: until reset
    demo = api.ids["demo_user"]
    for _ in range(2):
        _login(api, "wrong")
    _refused(_login(api, DEMO_PW), f"The account is locked for user: {demo}.")
    # self-service change needs the original password, and is refused while locked
    body = {"user": {"password": "other", "original_password": DEMO_PW}}
    _refused(
        api.client.post(f"/identity/v3/users/{demo}/password", json=body),
        f"The account is locked for user: {demo}.",
    )
    r = api.patch(f"/identity/v3/users/{demo}", as_="admin", json={"user": {"password": "fresh-pw"}})
    assert r.status_code == 200
    assert _login(api, "fresh-pw").status_code == 201


def test_disabled_user_is_told_only_with_the_right_password(stack: Api) -> None:
    demo = stack.ids["demo_user"]
    r = stack.patch(f"/identity/v3/users/{demo}", as_="admin", json={"user": {"enabled": False}})
    assert r.status_code == 200
    _refused(_login(stack, "wrong"), GENERIC)
    _refused(_login(stack, DEMO_PW), f"The account is disabled for user: {demo}.")


def test_self_service_password_change(stack: Api) -> None:
    demo = stack.ids["demo_user"]
    url = f"/identity/v3/users/{demo}/password"
    _refused(stack.client.post(url, json={"user": {"password": "n", "original_password": "wrong"}}), GENERIC)
    assert stack.client.post(url, json={"user": {"password": "n"}}).status_code == 400
    assert stack.client.post(url, json={"nope": 1}).status_code == 400
    r = stack.client.post(
        "/identity/v3/users/nobody/password", json={"user": {"password": "n", "original_password": "o"}}
    )
    _refused(r, GENERIC)
    r = stack.client.post(url, json={"user": {"password": "brand-new", "original_password": DEMO_PW}})
    assert r.status_code == 204, r.text
    _refused(_login(stack, DEMO_PW), GENERIC)
    assert _login(stack, "brand-new").status_code == 201


def test_turning_lockout_off_unlocks_and_a_success_clears_the_count(stack_factory: Any) -> None:
    api = stack_factory(lockout_failure_attempts=2, lockout_duration=0)
    settings = api.runtime.settings  # type: ignore[attr-defined]
    for _ in range(2):
        _login(api, "wrong")
    _refused(_login(api, DEMO_PW), f"The account is locked for user: {api.ids['demo_user']}.")
    settings.lockout_failure_attempts = 0  # the operator turns lockout off (and restarts)
    assert _login(api, DEMO_PW).status_code == 201
    settings.lockout_failure_attempts = 2  # and on again: the old count is gone
    _refused(_login(api, "wrong"), GENERIC)
    assert _login(api, DEMO_PW).status_code == 201

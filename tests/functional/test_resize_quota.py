"""Quota during a resize: until the resize is confirmed or reverted the project is charged the
larger of the two flavors for cores and RAM (Nova's resize quota), so a create that fits only
beside the smaller flavor is refused with 403; after confirm or revert the usage is the flavor
the server ends with."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot, fault, image_id, wait_status

# a flavor twice the size of m1.tiny in cores and RAM with the same disk, so it can be resized
# down to m1.tiny ("1": 1 VCPU, 512 MB, 1 GB)
BIG = {"name": "q.big", "id": "q-big", "vcpus": 2, "ram": 1024, "disk": 1}


def _setup(stack: Api, cores: int) -> None:
    r = stack.post("/compute/v2.1/flavors", as_="admin", json={"flavor": BIG})
    assert r.status_code == 200, r.text
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"cores": cores}},
    )
    assert r.status_code == 200, r.text


def _in_use(stack: Api) -> tuple[int, int]:
    r = stack.get("/compute/v2.1/limits")
    assert r.status_code == 200, r.text
    absolute = r.json()["limits"]["absolute"]
    return int(absolute["totalCoresUsed"]), int(absolute["totalRAMUsed"])


def _create(stack: Api, flavor: str) -> Any:
    server = {"name": "other", "imageRef": image_id(stack), "flavorRef": flavor, "networks": "none"}
    return stack.post(SERVERS, version="2.37", json={"server": server})


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_a_resize_down_holds_the_larger_flavor_until_confirmed(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(fake_hosts=2, postgres=postgres)
    _setup(stack, cores=3)
    sid = boot(stack, flavor="q-big")
    assert _in_use(stack) == (2, 1024)

    assert action(stack, sid, {"resize": {"flavorRef": "1"}}).status_code == 202
    assert wait_status(stack, sid, "VERIFY_RESIZE")["flavor"]["id"] == "1"
    # the server shows m1.tiny, but the quota still holds q.big's 2 cores and 1024 MB
    assert _in_use(stack) == (2, 1024)
    message = fault(_create(stack, "q-big"), 403)  # 2 + 2 > 3 (it would fit beside m1.tiny)
    assert "Quota exceeded for cores" in message

    assert action(stack, sid, {"confirmResize": None}).status_code == 204
    wait_status(stack, sid, "ACTIVE")
    assert _in_use(stack) == (1, 512)
    r = _create(stack, "q-big")  # 1 + 2 <= 3 now
    assert r.status_code == 202, r.text
    other = r.json()["server"]["id"]
    wait_status(stack, other, "ACTIVE")
    assert _in_use(stack) == (3, 1536)


def test_a_resize_down_reverted_counts_the_old_flavor(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    _setup(stack, cores=3)
    sid = boot(stack, flavor="q-big")
    assert action(stack, sid, {"resize": {"flavorRef": "1"}}).status_code == 202
    wait_status(stack, sid, "VERIFY_RESIZE")
    assert _in_use(stack) == (2, 1024)

    assert action(stack, sid, {"revertResize": None}).status_code == 202
    assert wait_status(stack, sid, "ACTIVE")["flavor"]["id"] == "q-big"
    assert _in_use(stack) == (2, 1024)
    assert "Quota exceeded for cores" in fault(_create(stack, "q-big"), 403)


def test_a_resize_up_counts_the_new_flavor_and_a_revert_gives_it_back(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    _setup(stack, cores=3)
    sid = boot(stack, flavor="1")
    assert action(stack, sid, {"resize": {"flavorRef": "q-big"}}).status_code == 202  # 1 + 1 <= 3
    wait_status(stack, sid, "VERIFY_RESIZE")
    assert _in_use(stack) == (2, 1024)
    assert "Quota exceeded for cores" in fault(_create(stack, "q-big"), 403)  # fits beside m1.tiny only

    assert action(stack, sid, {"revertResize": None}).status_code == 202
    wait_status(stack, sid, "ACTIVE")
    assert _in_use(stack) == (1, 512)
    r = _create(stack, "q-big")
    assert r.status_code == 202, r.text


def test_a_resize_down_reverted_at_the_cores_limit_is_accepted(stack_factory: Any) -> None:
    """Usage holds the larger flavor during the resize, so the revert to it needs no more quota:
    at the limit it is still a 202 (Nova skips the revert's quota check in this case too)."""
    stack = stack_factory(fake_hosts=2)
    _setup(stack, cores=2)
    sid = boot(stack, flavor="q-big")
    assert action(stack, sid, {"resize": {"flavorRef": "1"}}).status_code == 202
    wait_status(stack, sid, "VERIFY_RESIZE")
    assert _in_use(stack) == (2, 1024)
    r = action(stack, sid, {"revertResize": None})
    assert r.status_code == 202, r.text
    assert wait_status(stack, sid, "ACTIVE")["flavor"]["id"] == "q-big"
    assert _in_use(stack) == (2, 1024)

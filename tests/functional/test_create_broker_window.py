"""A create whose hand-off cannot reach the broker (its confirm window fails past the API's
patience) answers 503 with Retry-After and leaves nothing behind: no server, no quota used."""

from __future__ import annotations

from typing import Any

from novalite.conductor.rpcapi import ConductorClient
from novalite.messaging.transport import Transport
from tests.functional.test_broker_unreachable_undo import _closed_port
from tests.functional.test_move_operations import SERVERS, boot, image_id


def test_create_refused_and_undone_when_the_broker_is_unreachable(stack_factory: Any) -> None:
    api = stack_factory(fake_hosts=2)
    boot(api, name="before")  # a working create first: the stack is fine
    services = api.runtime.services
    engine = services.conductor
    down = Transport(f"amqp://guest:guest@127.0.0.1:{_closed_port()}//", patience=0.5)
    services.conductor = ConductorClient(down)
    try:
        server = {"name": "lost", "imageRef": image_id(api), "flavorRef": "1", "networks": "none"}
        r = api.post(SERVERS, version="2.37", json={"server": server})
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After"), r.headers
    finally:
        services.conductor = engine
        down.stop()
    names = [s["name"] for s in api.get(SERVERS).json()["servers"]]
    assert names == ["before"], names
    limits = api.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == 1, limits

"""A move, a shelve or an evacuation whose message cannot reach the broker (RabbitMQ down past
the API's patience) answers 503 with Retry-After and gives the server back the state it had: no
server is left half-way in RESIZE or SHELVING, and the migration record ends in ``error``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from novalite.compute.api import ComputeAPI
from novalite.compute.rpcapi import ComputeClient
from novalite.conductor.rpcapi import ConductorClient
from novalite.messaging.transport import Transport
from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, action, boot, wait_status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker_down(stack_factory: Any) -> Iterator[Api]:
    """A stack whose API side publishes to a broker nobody listens on, with a short patience
    (the engine behind it keeps running, as the conductor and computes would)."""
    api = stack_factory(fake_hosts=2)
    rt = api.runtime  # type: ignore[attr-defined]
    services = rt.services
    engine = (services.conductor, services.compute_api)
    down = Transport(f"amqp://guest:guest@127.0.0.1:{_closed_port()}//", patience=0.5)
    api.cut = lambda: (  # type: ignore[attr-defined]
        setattr(services, "conductor", ConductorClient(down)),
        setattr(services, "compute_api", ComputeAPI(rt.db, ComputeClient(down))),
    )
    try:
        yield api
    finally:
        services.conductor, services.compute_api = engine
        down.stop()


def _refused(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After"), r.headers


def test_resize_and_shelve_undone_when_the_broker_is_unreachable(broker_down: Api) -> None:
    api = broker_down
    sid = boot(api)
    wait_status(api, sid, "ACTIVE")
    api.cut()  # type: ignore[attr-defined]
    _refused(action(api, sid, {"resize": {"flavorRef": "2"}}))
    server = api.get(f"{SERVERS}/{sid}").json()["server"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None, server
    migrations = api.get("/compute/v2.1/os-migrations", as_="admin").json()["migrations"]
    assert [m["status"] for m in migrations if m["instance_uuid"] == sid] == ["error"]

    _refused(action(api, sid, {"shelve": None}))
    server = api.get(f"{SERVERS}/{sid}").json()["server"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None, server

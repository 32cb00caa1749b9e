"""Nova's versioned notifications (docs/notifications.md): what a consumer of the notification
bus sees when servers are created, stopped, resized, deleted, and when a build fails."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from novalite import notifications
from novalite.messaging import local
from tests.conftest import Api, require_service
from tests.functional.test_move_operations import SERVERS, action, boot, image_id, server, wait_status

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _decode(body: dict[str, Any]) -> dict[str, Any]:
    assert body["oslo.version"] == "2.0"
    return dict(json.loads(body["oslo.message"]))


class Bus:
    """Reads the in-process notification queues of a memory:// deployment."""

    def __init__(self, stack: Api):
        notifier = notifications.notifier_for(stack.runtime.db)  # type: ignore[attr-defined]
        assert notifier is not None
        self.names = {p: notifier.queue_name(p) for p in ("info", "error")}
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        for name in self.names.values():
            while (env := local.get(name, 0.01)) is not None:
                self.seen.append(_decode(env.body))
        return self.seen

    def wait_for(self, event_type: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.drain():
                if msg["event_type"] == event_type:
                    return msg
            time.sleep(0.05)
        raise AssertionError(f"no {event_type}; seen {[m['event_type'] for m in self.seen]}")

    def types(self, uuid_: str) -> list[str]:
        """The server's event types in the order they were sent: the info and error queues are
        drained one after the other, so the order read is not always the order sent."""
        mine = [m for m in self.drain() if _data(m).get("uuid") == uuid_]
        return [m["event_type"] for m in sorted(mine, key=lambda m: str(m["timestamp"]))]


def _data(msg: dict[str, Any]) -> dict[str, Any]:
    return dict(msg["payload"]["nova_object.data"])


def test_notifications_are_off_by_default(stack: Api) -> None:
    assert notifications.notifier_for(stack.runtime.db) is None  # type: ignore[attr-defined]


def test_create_stop_resize_delete_notifications(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2, notifications="versioned")
    bus = Bus(stack)
    sid = boot(stack)
    end = bus.wait_for("instance.create.end")
    assert bus.types(sid)[:2] == ["instance.create.start", "instance.create.end"]
    assert end["priority"] == "INFO" and end["publisher_id"].startswith("nova-compute:")
    assert end["payload"]["nova_object.name"] == "InstanceActionPayload"
    data = _data(end)
    assert data["uuid"] == sid and data["state"] == "active" and data["power_state"] == "running"
    assert data["image_uuid"] == image_id(stack)
    assert data["tenant_id"] == server(stack, sid)["tenant_id"]
    assert data["flavor"]["nova_object.name"] == "FlavorPayload"
    assert data["flavor"]["nova_object.data"]["flavorid"] == "1"
    assert data["launched_at"] is not None

    assert action(stack, sid, {"os-stop": None}).status_code == 202
    wait_status(stack, sid, "SHUTOFF")
    off = bus.wait_for("instance.power_off.end")
    assert _data(off)["state"] == "stopped" and _data(off)["power_state"] == "shutdown"
    assert action(stack, sid, {"os-start": None}).status_code == 202
    wait_status(stack, sid, "ACTIVE")

    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    wait_status(stack, sid, "VERIFY_RESIZE")
    assert action(stack, sid, {"confirmResize": None}).status_code == 204
    bus.wait_for("instance.resize_confirm.end")
    moves = [t for t in bus.types(sid) if t.startswith("instance.resize")]
    assert moves == [
        "instance.resize.start",
        "instance.resize_finish.start",
        "instance.resize_finish.end",
        "instance.resize.end",
        "instance.resize_confirm.start",
        "instance.resize_confirm.end",
    ] or moves == [
        "instance.resize.start",
        "instance.resize.end",
        "instance.resize_finish.start",
        "instance.resize_finish.end",
        "instance.resize_confirm.start",
        "instance.resize_confirm.end",
    ], moves
    confirmed = [m for m in bus.seen if m["event_type"] == "instance.resize_confirm.end"][0]
    assert _data(confirmed)["flavor"]["nova_object.data"]["flavorid"] == "2"

    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    gone = bus.wait_for("instance.delete.end")
    assert bus.types(sid)[-2:] == ["instance.delete.start", "instance.delete.end"]
    assert _data(gone)["uuid"] == sid


def test_failed_build_sends_compute_exception(stack_factory: Any) -> None:
    stack = stack_factory(notifications="versioned", max_attempts=1)
    bus = Bus(stack)
    body = {
        "name": "doomed",
        "imageRef": image_id(stack),
        "flavorRef": "1",
        "networks": "none",
        "metadata": {"novalite:fail_spawn": "always"},
    }
    r = stack.post(SERVERS, version="2.37", json={"server": body})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    error = bus.wait_for("instance.create.error")
    assert error["priority"] == "ERROR"
    assert _data(error)["uuid"] == sid
    fault = _data(error)["fault"]["nova_object.data"]
    assert fault["exception_message"]
    exc = [m for m in bus.seen if m["event_type"] == "compute.exception"]
    assert exc and exc[0]["payload"]["nova_object.name"] == "ExceptionPayload"
    assert bus.types(sid)[0] == "instance.create.start"
    assert _data(error)["state"] == "error"  # one attempt: the build ends in ERROR


def test_notifications_over_rabbitmq_reach_an_outside_consumer(stack_factory: Any) -> None:
    require_service("127.0.0.1", 5672, "RabbitMQ")
    import kombu

    prefix = f"notif{uuid.uuid4().hex[:8]}."
    stack = stack_factory(transport_url=AMQP_URL, messaging_prefix=prefix, notifications="versioned")
    # as a monitoring tool would: its own queue bound to the nova exchange
    exchange = kombu.Exchange(prefix + "nova", type="topic", durable=False)
    queue = kombu.Queue(
        f"monitor-{uuid.uuid4().hex[:8]}", exchange, routing_key="versioned_notifications.*", auto_delete=True
    )
    got: list[dict[str, Any]] = []
    with kombu.Connection(AMQP_URL) as conn:
        with conn.Consumer(
            [queue], accept=["json"], callbacks=[lambda b, m: (got.append(_decode(b)), m.ack())]
        ):
            sid = boot(stack)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                g["event_type"] == "instance.create.end" for g in got
            ):
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    continue
    types = [g["event_type"] for g in got if _data(g).get("uuid") == sid]
    assert types[:2] == ["instance.create.start", "instance.create.end"], types
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204


def test_shelve_and_unshelve_notifications(stack_factory: Any) -> None:
    stack = stack_factory(notifications="versioned")
    bus = Bus(stack)
    sid = boot(stack)
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED_OFFLOADED")
    offloaded = bus.wait_for("instance.shelve_offload.end")
    assert _data(offloaded)["state"] == "shelved_offloaded"
    assert action(stack, sid, {"unshelve": None}).status_code == 202
    wait_status(stack, sid, "ACTIVE")
    back = bus.wait_for("instance.unshelve.end")
    assert _data(back)["state"] == "active"
    shelving = [t for t in bus.types(sid) if "shelve" in t]
    assert shelving == [
        "instance.shelve.start",
        "instance.shelve.end",
        "instance.shelve_offload.start",
        "instance.shelve_offload.end",
        "instance.unshelve.start",
        "instance.unshelve.end",
    ], shelving


def test_an_unknown_notifications_setting_stops_the_start_up() -> None:
    with pytest.raises(ValueError, match="notifications must be one of off, versioned"):
        notifications.start("unversioned", None, None)

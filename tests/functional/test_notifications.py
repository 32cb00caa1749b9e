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

    def types(self, uuid_: str, *, updates: bool = False) -> list[str]:
        """The server's event types in the order they were sent: the info and error queues are
        drained one after the other, so the order read is not always the order sent.
        ``instance.update`` (one per state change) only with ``updates``."""
        mine = [
            m
            for m in self.drain()
            if _data(m).get("uuid") == uuid_ and (updates or m["event_type"] != "instance.update")
        ]
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
    types = [
        g["event_type"] for g in got if _data(g).get("uuid") == sid and g["event_type"] != "instance.update"
    ]
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


def _of(bus: Bus, sid: str, event_type: str) -> list[dict[str, Any]]:
    mine = [m for m in bus.drain() if m["event_type"] == event_type and _data(m).get("uuid") == sid]
    return sorted(mine, key=lambda m: str(m["timestamp"]))


def _state(msg: dict[str, Any]) -> tuple[Any, ...]:
    update = _data(msg)["state_update"]
    assert update["nova_object.name"] == "InstanceStateUpdatePayload"
    d = update["nova_object.data"]
    return d["old_state"], d["state"], d["old_task_state"], d["new_task_state"]


def _wait_count(bus: Bus, sid: str, event_type: str, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _of(bus, sid, event_type)
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} {event_type}; seen {bus.types(sid)}")


def test_instance_update_on_state_changes_and_renames(stack_factory: Any) -> None:
    stack = stack_factory(notifications="versioned")
    bus = Bus(stack)
    sid = boot(stack)
    bus.wait_for("instance.create.end")
    building = [_state(m) for m in _of(bus, sid, "instance.update")]
    assert ("building", "active", "spawning", None) in building, building  # the build's last step
    updates_before = len(building)

    r = stack.put(f"{SERVERS}/{sid}", json={"server": {"name": "renamed"}})
    assert r.status_code == 200, r.text
    renamed = _wait_count(bus, sid, "instance.update", updates_before + 1)[-1]
    assert renamed["priority"] == "INFO"
    assert renamed["payload"]["nova_object.name"] == "InstanceUpdatePayload"
    assert renamed["payload"]["nova_object.version"] == "1.9"
    data = _data(renamed)
    assert data["old_display_name"] == "vm" and data["display_name"] == "renamed"
    assert _state(renamed) == ("active", "active", None, None)
    period = data["audit_period"]["nova_object.data"]
    assert period["audit_period_beginning"] <= period["audit_period_ending"]
    assert data["bandwidth"] == [] and data["tags"] == []
    assert data["flavor"]["nova_object.data"]["flavorid"] == "1" and "fault" not in data

    assert action(stack, sid, {"os-stop": None}).status_code == 202
    wait_status(stack, sid, "SHUTOFF")
    bus.wait_for("instance.power_off.end")
    states = [_state(m) for m in _wait_count(bus, sid, "instance.update", updates_before + 2)]
    stopped = [st for st in states if st[0] == "active" and st[1] == "stopped"]
    assert stopped, states
    assert all(
        _data(m)["old_display_name"] is None for m in _of(bus, sid, "instance.update")[updates_before + 1 :]
    )


def test_rebuild_and_snapshot_notifications(stack_factory: Any) -> None:
    stack = stack_factory(notifications="versioned")
    bus = Bus(stack)
    sid = boot(stack)
    bus.wait_for("instance.create.end")

    r = action(stack, sid, {"rebuild": {"imageRef": image_id(stack), "name": "rebuilt"}})
    assert r.status_code == 202, r.text
    wait_status(stack, sid, "ACTIVE")
    end = bus.wait_for("instance.rebuild.end")
    start = _of(bus, sid, "instance.rebuild.start")
    assert len(start) == 1 and [m["event_type"] for m in _of(bus, sid, "instance.rebuild.end")] == [
        "instance.rebuild.end"
    ]
    assert bus.types(sid).index("instance.rebuild.start") < bus.types(sid).index("instance.rebuild.end")
    for msg in (start[0], end):
        assert msg["payload"]["nova_object.name"] == "InstanceActionRebuildPayload"
        assert msg["payload"]["nova_object.version"] == "1.9"
        data = _data(msg)
        assert data["image_uuid"] == image_id(stack) and data["display_name"] == "rebuilt"
        assert "trusted_image_certificates" in data and "architecture" in data and data["fault"] is None
    assert _data(start[0])["task_state"] == "rebuilding"
    assert _data(end)["task_state"] is None and _data(end)["state"] == "active"

    r = action(stack, sid, {"createImage": {"name": "snap"}}, version="2.45")
    assert r.status_code == 202, r.text
    snap_id = r.json()["image_id"]
    done = bus.wait_for("instance.snapshot.end")
    snaps = [m["event_type"] for m in bus.drain() if m["event_type"].startswith("instance.snapshot")]
    assert snaps == ["instance.snapshot.start", "instance.snapshot.end"], snaps
    began = _of(bus, sid, "instance.snapshot.start")[0]
    for msg in (began, done):
        assert msg["payload"]["nova_object.name"] == "InstanceActionSnapshotPayload"
        assert _data(msg)["snapshot_image_id"] == snap_id
        assert msg["publisher_id"].startswith("nova-compute:")
    assert _data(began)["task_state"] == "image_snapshot"
    assert _data(done)["task_state"] is None and _data(done)["state"] == "active"


def test_evacuate_notifications(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2, notifications="versioned")
    bus = Bus(stack)
    body = {
        "name": "evac",
        "imageRef": image_id(stack),
        "flavorRef": "1",
        "availability_zone": "nova:fake-host-1",
    }
    r = stack.post(SERVERS, as_="admin", json={"server": body})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_status(stack, sid, "ACTIVE")
    services = "/compute/v2.1/os-services"
    svc = stack.get(f"{services}?binary=nova-compute&host=fake-host-1", as_="admin", version="2.53")
    r = stack.put(
        f"{services}/{svc.json()['services'][0]['id']}",
        as_="admin",
        version="2.53",
        json={"forced_down": True},
    )
    assert r.status_code == 200, r.text

    r = action(stack, sid, {"evacuate": {}}, as_="admin", version="2.53")
    assert r.status_code == 200, r.text
    assert wait_status(stack, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    bus.wait_for("instance.rebuild.end")
    evac = _of(bus, sid, "instance.evacuate")
    assert len(evac) == 1 and evac[0]["publisher_id"].startswith("nova-api:")
    assert evac[0]["payload"]["nova_object.name"] == "InstanceActionPayload"
    assert _data(evac[0])["task_state"] == "rebuilding" and _data(evac[0])["host"] == "fake-host-1"
    types = [t for t in bus.types(sid) if t.startswith(("instance.evacuate", "instance.rebuild"))]
    assert types == ["instance.evacuate", "instance.rebuild.start", "instance.rebuild.end"], types
    end = _of(bus, sid, "instance.rebuild.end")[0]
    assert end["publisher_id"] == "nova-compute:fake-host-2"
    assert _data(end)["host"] == "fake-host-2" and _data(end)["state"] == "active"

"""Attach/detach on a server whose host runs real guests, when the host cannot plug the device:
the records follow what the guest has (services.device_hotplug). Here the server's host is a
host without a compute agent in this engine, so every attach fails: it leaves the volume
``available`` (no attachment) and no port, and answers 409 with the reason. (Detaches are casts
the host's agent completes: tests/guest/test_qemu_hotplug_guest.py and the e2e tests.)
A volume without a data file (``volume_storage=records``) is refused with 400 before the host
is asked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from novalite.db.models.compute import Instance
from tests.conftest import Api
from tests.functional.test_interfaces_volumes import (
    SERVERS,
    boot,
    fault,
    network_id,
    new_volume,
    volume_status,
)


def _on_real_host(stack: Api, sid: str) -> None:
    """The server now lives on a (real, not simulated) host whose agent does not answer."""
    rt: Any = stack.runtime  # type: ignore[attr-defined]
    with rt.db.session() as s:
        s.execute(update(Instance).where(Instance.uuid == sid).values(host="gone-host", node="gone-host"))


def _attached(stack: Api, sid: str) -> list[str]:
    items = stack.get(f"{SERVERS}/{sid}/os-volume_attachments").json()["volumeAttachments"]
    return [str(a["volumeId"]) for a in items]


def test_a_host_that_cannot_plug_leaves_the_records_as_the_guest_has_them(stack: Api) -> None:
    sid = boot(stack)
    kept = new_volume(stack, "kept")
    r = stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": kept}})
    assert r.status_code == 200, r.text
    _on_real_host(stack, sid)

    other = new_volume(stack, "other")
    r = stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": other}})
    assert "Failed to attach volume" in fault(r, 409) and "gone-host" in r.text
    assert volume_status(stack, other) == "available" and _attached(stack, sid) == [kept]

    r = stack.post(
        f"{SERVERS}/{sid}/os-interface", json={"interfaceAttachment": {"net_id": network_id(stack)}}
    )
    assert "Failed to attach network adapter" in fault(r, 409)
    assert stack.get(f"{SERVERS}/{sid}/os-interface").json() == {"interfaceAttachments": []}
    ports = stack.get(f"/network/v2.0/ports?device_id={sid}").json()["ports"]
    assert ports == []  # the port made for the attach is gone again


def test_a_volume_without_data_is_refused_for_a_real_guest(stack_factory: Any) -> None:
    stack = stack_factory(volume_storage="records")
    sid = boot(stack)
    _on_real_host(stack, sid)
    vol = new_volume(stack)
    r = stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol}})
    assert "no data file" in fault(r, 400)
    assert volume_status(stack, vol) == "available"

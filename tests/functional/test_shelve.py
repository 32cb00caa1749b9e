"""shelve, shelveOffload, unshelve through HTTP on simulated hosts: the snapshot image, the
states, what offloading frees (allocations, host, port bindings) and what a fresh schedule on
unshelve takes; placement usage is checked after every step."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.functional.test_move_operations import (
    SERVERS,
    TINY,
    action,
    boot,
    consumer,
    fault,
    server,
    usages,
    wait_status,
)


def images_named(stack: Api, name: str) -> list[dict[str, Any]]:
    return list(stack.get(f"/image/v2/images?name={name}").json()["images"])


def ports_of(stack: Api, sid: str) -> list[dict[str, Any]]:
    return list(stack.get(f"/network/v2.0/ports?device_id={sid}", as_="admin").json()["ports"])


def private_net(stack: Api) -> str:
    nets = stack.get("/network/v2.0/networks?name=private").json()["networks"]
    return str(nets[0]["id"])


def test_shelve_offloads_at_once_and_unshelve_schedules_anew(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    sid = boot(stack, "shelf", networks=[{"uuid": private_net(stack)}])
    host = server(stack, sid)["OS-EXT-SRV-ATTR:host"]
    assert [p["binding:host_id"] for p in ports_of(stack, sid)] == [host]

    assert action(stack, sid, {"shelve": None}).status_code == 202
    s = wait_status(stack, sid, "SHELVED_OFFLOADED")  # shelved_offload_time 0: offloaded at once
    assert s["OS-EXT-SRV-ATTR:host"] is None and s["OS-EXT-STS:power_state"] == 4
    [image] = images_named(stack, "shelf-shelved")
    assert image["status"] == "active" and image["image_type"] == "snapshot"
    assert image["instance_uuid"] == sid and image["visibility"] == "private"
    assert all(u == {} for u in usages(stack).values()) and consumer(stack, sid) == {}
    assert [p["binding:host_id"] for p in ports_of(stack, sid)] == [""]  # ports stay, unbound
    # quota: a shelved server still counts (Nova's legacy counting)
    limits = stack.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == 1

    assert action(stack, sid, {"unshelve": None}).status_code == 202
    s = wait_status(stack, sid, "ACTIVE")
    new_host = s["OS-EXT-SRV-ATTR:host"]
    assert new_host is not None
    assert usages(stack)[new_host] == TINY
    assert [p["binding:host_id"] for p in ports_of(stack, sid)] == [new_host]
    assert images_named(stack, "shelf-shelved") == []  # the snapshot is deleted after the unshelve
    acts = [a["action"] for a in stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]]
    assert {"shelve", "unshelve"} <= set(acts)

    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    assert all(u == {} for u in usages(stack).values())


def test_shelve_kept_on_host_until_an_admin_offloads(stack_factory: Any) -> None:
    stack = stack_factory(shelved_offload_time=-1)
    sid = boot(stack, "kept")
    host = server(stack, sid)["OS-EXT-SRV-ATTR:host"]
    assert action(stack, sid, {"shelve": None}).status_code == 202
    s = wait_status(stack, sid, "SHELVED")
    assert s["OS-EXT-SRV-ATTR:host"] == host
    assert usages(stack)[host] == TINY  # SHELVED keeps its allocation
    # refusals: unshelve with a zone from SHELVED (409), shelve again (409), offload by a member (403)
    r = action(stack, sid, {"unshelve": {"availability_zone": "nova"}}, version="2.77")
    assert fault(r, 409) == (
        f'Specifying an availability zone or a host when unshelving server "{sid}" with status "SHELVED" '
        "is not supported. The server status must be SHELVED_OFFLOADED."
    )
    assert fault(action(stack, sid, {"shelve": None}), 409).startswith(
        f"Cannot 'shelve' instance {sid} while it is in vm_state shelved"
    )
    assert action(stack, sid, {"shelveOffload": None}).status_code == 403
    assert action(stack, sid, {"shelveOffload": None}, as_="admin").status_code == 202
    s = wait_status(stack, sid, "SHELVED_OFFLOADED")
    assert s["OS-EXT-SRV-ATTR:host"] is None and usages(stack)[host] == {}
    assert fault(action(stack, sid, {"shelveOffload": None}, as_="admin"), 409).startswith(
        f"Cannot 'shelveOffload' instance {sid} while it is in vm_state shelved_offloaded"
    )


def test_unshelve_from_shelved_starts_in_place(stack_factory: Any) -> None:
    stack = stack_factory(shelved_offload_time=-1)
    sid = boot(stack, "inplace")
    host = server(stack, sid)["OS-EXT-SRV-ATTR:host"]
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED")
    assert action(stack, sid, {"unshelve": None}).status_code == 202
    s = wait_status(stack, sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == host and usages(stack)[host] == TINY
    assert images_named(stack, "inplace-shelved") == []


def test_periodic_offload(stack_factory: Any) -> None:
    stack = stack_factory(shelved_offload_time=1)
    sid = boot(stack, "later")
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED", "SHELVED_OFFLOADED")
    wait_status(stack, sid, "SHELVED_OFFLOADED")
    assert all(u == {} for u in usages(stack).values())


def test_unshelve_zone_and_host(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    sid = boot(stack, "az")
    assert action(stack, sid, {"shelve": None}).status_code == 202
    wait_status(stack, sid, "SHELVED_OFFLOADED")
    # 2.77: the zone must exist; {} is not a valid body
    r = action(stack, sid, {"unshelve": {"availability_zone": "nowhere"}}, version="2.77")
    assert fault(r, 400) == "The requested availability zone is not available"
    assert "Invalid input" in fault(action(stack, sid, {"unshelve": {}}, version="2.77"), 400)
    # 2.91: a host is an admin's; an unknown one is a 400
    r = action(stack, sid, {"unshelve": {"host": "fake-host-2"}}, version="2.91")
    assert r.status_code == 403
    r = action(stack, sid, {"unshelve": {"host": "nope"}}, as_="admin", version="2.91")
    assert fault(r, 400) == "Compute host nope could not be found."
    hosts = sorted(usages(stack))
    target = hosts[-1]
    r = action(
        stack, sid, {"unshelve": {"host": target, "availability_zone": None}}, as_="admin", version="2.91"
    )
    assert r.status_code == 202, r.text
    s = wait_status(stack, sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == target and usages(stack)[target] == TINY
    # locked: 409
    assert action(stack, sid, {"lock": None}).status_code == 202
    assert fault(action(stack, sid, {"shelve": None}), 409) == f"Instance {sid} is locked"

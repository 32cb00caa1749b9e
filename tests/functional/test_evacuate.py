"""Evacuate (issue 18, item 3): the servers of a forced-down compute host are rebuilt on another
host with the same ports and fixed IPs; meanwhile the evacuation migration holds the source
host's allocation, and when that host's agent starts again its stale guests are destroyed, the
allocation freed and the migration completed. Refusals as Nova's; from 2.95 the server ends
SHUTOFF."""

from __future__ import annotations

from typing import Any

from novalite.compute import evacuated
from novalite.domain.states import PowerState
from novalite.virt.driver import GuestSpec
from novalite.virt.fake import FakeDriver
from tests.conftest import Api
from tests.functional.test_move_operations import (
    TINY,
    action,
    consumer,
    fault,
    migrations,
    providers,
    server,
    usages,
    wait_status,
)
from tests.functional.test_servers_api import image_id

SERVERS = "/compute/v2.1/servers"
SERVICES = "/compute/v2.1/os-services"
SOURCE = "fake-host-1"


def _boot_on(stack: Api, name: str, host: str) -> str:
    """A server with a port on the default network, put on ``host`` by the admin."""
    body = {"name": name, "imageRef": image_id(stack), "flavorRef": "1", "availability_zone": f"nova:{host}"}
    r = stack.post(SERVERS, as_="admin", json={"server": body})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    wait_status(stack, sid, "ACTIVE")
    assert server(stack, sid)["OS-EXT-SRV-ATTR:host"] == host
    return sid


def _ports(stack: Api, sid: str) -> list[dict[str, Any]]:
    r = stack.get(f"/network/v2.0/ports?device_id={sid}", as_="admin")
    assert r.status_code == 200, r.text
    return sorted(r.json()["ports"], key=lambda p: p["id"])


def _force_down(stack: Api, host: str, down: bool) -> None:
    r = stack.get(f"{SERVICES}?binary=nova-compute&host={host}", as_="admin", version="2.53")
    svc = r.json()["services"][0]
    r = stack.put(f"{SERVICES}/{svc['id']}", as_="admin", version="2.53", json={"forced_down": down})
    assert r.status_code == 200, r.text


def _evacuate(stack: Api, sid: str, version: str = "2.53", **fields: Any) -> Any:
    return action(stack, sid, {"evacuate": fields}, as_="admin", version=version)


def test_evacuate_a_down_host_and_clean_it_when_it_comes_back(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=3)
    moved, paused, stopped = (_boot_on(stack, n, SOURCE) for n in ("moved", "paused", "stopped"))
    assert action(stack, paused, {"pause": None}, as_="admin").status_code == 202
    wait_status(stack, paused, "PAUSED")
    ports_before = _ports(stack, moved)
    assert ports_before and all(p["binding:host_id"] == SOURCE for p in ports_before)

    # refusals while the host is up, and those that do not depend on it
    msg = fault(_evacuate(stack, moved), 400)
    assert msg == f"Compute service of {SOURCE} is still in use."
    assert fault(_evacuate(stack, moved, host=SOURCE), 400) == "The target host can't be the same one."
    assert fault(_evacuate(stack, moved, host="nowhere"), 404) == "Compute host nowhere not found."
    r = action(stack, moved, {"evacuate": {}}, as_="demo", version="2.53")
    assert r.status_code == 403, r.text
    r = _evacuate(stack, moved, version="2.29", force=True)
    assert fault(r, 400) == "Can't force to a non-provided destination"
    assert server(stack, moved)["status"] == "ACTIVE"  # nothing happened

    _force_down(stack, SOURCE, True)
    assert "vm_state paused" in fault(_evacuate(stack, paused), 409)

    # evacuated: ACTIVE elsewhere, same ports and fixed IPs, bound to the new host
    r = _evacuate(stack, moved)
    assert r.status_code == 200, r.text
    assert r.content == b""
    after = wait_status(stack, moved, "ACTIVE")
    dest = after["OS-EXT-SRV-ATTR:host"]
    assert dest not in (SOURCE, None)
    ports_after = _ports(stack, moved)
    assert [p["id"] for p in ports_after] == [p["id"] for p in ports_before]
    assert [p["fixed_ips"] for p in ports_after] == [p["fixed_ips"] for p in ports_before]
    assert all(p["binding:host_id"] == dest for p in ports_after)

    # placement: the instance holds the destination, the migration the source
    rps = providers(stack)
    assert set(consumer(stack, moved)) == {rps[dest]}
    evac = migrations(stack, instance_uuid=moved)
    assert [(m["migration_type"], m["status"]) for m in evac] == [("evacuation", "done")]
    assert (evac[0]["source_compute"], evac[0]["dest_compute"]) == (SOURCE, dest)
    assert set(consumer(stack, evac[0]["uuid"])) == {rps[SOURCE]}

    # 2.95, to a given host: the server ends SHUTOFF there
    target = next(h for h in ("fake-host-2", "fake-host-3") if h != dest)
    r = _evacuate(stack, stopped, version="2.95", host=target)
    assert r.status_code == 200, r.text
    assert wait_status(stack, stopped, "SHUTOFF")["OS-EXT-SRV-ATTR:host"] == target
    assert usages(stack)[SOURCE] == {k: 3 * v for k, v in TINY.items()}  # 2 held by migrations

    # the source comes back: its agent (here a separate process' driver still running the old
    # copies) destroys the stale guests; the migrations' allocations go, the migrations complete
    _force_down(stack, SOURCE, False)
    stale = FakeDriver()
    guests = [GuestSpec(uuid=u, name=u, host=SOURCE, node=SOURCE, flavor={}) for u in (moved, stopped)]
    for g in guests:
        stale.spawn(g)
    assert evacuated.destroy_evacuated(stack.runtime.db, {SOURCE: stale}) == 2  # type: ignore[attr-defined]
    assert all(stale.get_info(g).state == PowerState.NOSTATE for g in guests)
    assert usages(stack)[SOURCE] == TINY  # only the paused server left there
    done = migrations(stack, migration_type="evacuation")
    assert sorted(m["status"] for m in done) == ["completed", "completed"]
    assert all(consumer(stack, m["uuid"]) == {} for m in done)
    assert server(stack, moved)["status"] == "ACTIVE"
    assert evacuated.destroy_evacuated(stack.runtime.db, {SOURCE: stale}) == 0  # type: ignore[attr-defined]


def test_evacuate_forced_and_below_2_14_with_the_admin_password(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    sid, forced = _boot_on(stack, "old", SOURCE), _boot_on(stack, "forced", SOURCE)
    _force_down(stack, SOURCE, True)
    r = _evacuate(stack, forced, version="2.29", host="fake-host-2", force=True)  # past the filters
    assert r.status_code == 200, r.text
    assert wait_status(stack, forced, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    r = _evacuate(stack, sid, version="2.1", onSharedStorage=True, adminPass="secret")
    assert fault(r, 400) == "admin password can't be changed on existing disk"
    r = _evacuate(stack, sid, version="2.1", onSharedStorage=False)
    assert r.status_code == 200, r.text
    assert len(r.json()["adminPass"]) >= 8
    assert wait_status(stack, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-host-2"


def _set_disabled(stack: Api, host: str, disabled: bool) -> None:
    r = stack.get(f"{SERVICES}?binary=nova-compute&host={host}", as_="admin", version="2.53")
    svc = r.json()["services"][0]
    body = {"status": "disabled" if disabled else "enabled"}
    r = stack.put(f"{SERVICES}/{svc['id']}", as_="admin", version="2.53", json=body)
    assert r.status_code == 200, r.text


def test_no_host_volumes_and_a_server_deleted_before_the_source_returns(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    lost, vs = _boot_on(stack, "lost", SOURCE), _boot_on(stack, "vs", SOURCE)
    r = stack.post("/volume/v3/volumes", as_="admin", json={"volume": {"size": 1, "name": "data"}})
    vol = r.json()["volume"]["id"]
    stack.wait_for(
        f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available", as_="admin"
    )
    r = stack.post(
        f"{SERVERS}/{vs}/os-volume_attachments", as_="admin", json={"volumeAttachment": {"volumeId": vol}}
    )
    assert r.status_code == 200, r.text
    _force_down(stack, SOURCE, True)

    # no other host can take it: ERROR with a fault, the instance holds its source allocation again
    _set_disabled(stack, "fake-host-2", True)
    assert _evacuate(stack, lost).status_code == 200
    failed = wait_status(stack, lost, "ERROR")
    assert "No valid host" in failed["fault"]["message"]
    assert [m["status"] for m in migrations(stack, instance_uuid=lost)] == ["error"]
    rps = providers(stack)
    assert set(consumer(stack, lost)) == {rps[SOURCE]}
    _set_disabled(stack, "fake-host-2", False)

    # an ERROR server evacuated at 2.95 ends ACTIVE; the attached volume follows the server
    assert _evacuate(stack, lost, version="2.95").status_code == 200
    assert wait_status(stack, lost, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    assert _evacuate(stack, vs).status_code == 200
    assert wait_status(stack, vs, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "fake-host-2"
    volume = stack.get(f"/volume/v3/volumes/{vol}", as_="admin").json()["volume"]
    assert volume["status"] == "in-use"
    assert [(a["server_id"], a["host_name"]) for a in volume["attachments"]] == [(vs, "fake-host-2")]

    # deleted before its old host returns: the migration keeps the source allocation until then
    assert stack.delete(f"{SERVERS}/{vs}", as_="admin").status_code == 204
    stack.wait_for(f"{SERVERS}/{vs}", lambda r: r.status_code == 404, as_="admin")
    assert usages(stack)[SOURCE] == {k: 2 * v for k, v in TINY.items()}
    _force_down(stack, SOURCE, False)
    assert evacuated.destroy_evacuated(stack.runtime.db, {SOURCE: FakeDriver()}) == 2  # type: ignore[attr-defined]
    assert usages(stack)[SOURCE] == {}
    statuses = sorted(m["status"] for m in migrations(stack, migration_type="evacuation"))
    assert statuses == ["completed", "completed", "error"]

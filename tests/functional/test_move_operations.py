"""Resize (confirm, revert, auto-confirm), cold and live migration, os-migrations and the server
migrations API, through HTTP on simulated hosts. After every step placement's usage equals the
live servers' flavors plus the moves in flight, and nothing is left once the servers are gone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
TINY = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}  # flavor 1
SMALL = {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}  # flavor 2
MEDIUM = {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 40}  # flavor 3


def image_id(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def boot(stack: Api, name: str = "vm", flavor: str = "1", **fields: Any) -> str:
    server = {"name": name, "imageRef": image_id(stack), "flavorRef": flavor, "networks": "none", **fields}
    r = stack.post(SERVERS, version="2.37", json={"server": server})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    wait_status(stack, sid, "ACTIVE")
    return sid


def server(stack: Api, sid: str, version: str = "2.1") -> dict[str, Any]:
    return dict(stack.get(f"{SERVERS}/{sid}", as_="admin", version=version).json()["server"])


def wait_status(stack: Api, sid: str, *statuses: str) -> dict[str, Any]:
    stack.wait_for(
        f"{SERVERS}/{sid}",
        lambda r: r.json()["server"]["status"] in (*statuses, "ERROR"),
        as_="admin",
    )
    s = server(stack, sid)
    assert s["status"] in statuses, s
    return s


def action(stack: Api, sid: str, body: dict[str, Any], *, as_: str = "demo", version: str = "2.1") -> Any:
    return stack.post(f"{SERVERS}/{sid}/action", json=body, as_=as_, version=version)


def fault(r: Any, status: int) -> str:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[status]
    assert r.status_code == status, r.text
    return str(r.json()[key]["message"])


def providers(stack: Api) -> dict[str, str]:
    """host name -> resource provider uuid."""
    r = stack.get("/placement/resource_providers", as_="admin")
    return {p["name"]: p["uuid"] for p in r.json()["resource_providers"]}


def usages(stack: Api) -> dict[str, dict[str, int]]:
    """host name -> usages with the zeros left out."""
    out = {}
    for name, uuid in providers(stack).items():
        u = stack.get(f"/placement/resource_providers/{uuid}/usages", as_="admin").json()["usages"]
        out[name] = {k: v for k, v in u.items() if v}
    return out


def add(*flavors: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in flavors:
        for k, v in f.items():
            out[k] = out.get(k, 0) + v
    return out


def consumer(stack: Api, uuid: str) -> dict[str, Any]:
    return dict(stack.get(f"/placement/allocations/{uuid}", as_="admin").json()["allocations"])


def migrations(stack: Api, version: str = "2.80", **params: str) -> list[dict[str, Any]]:
    r = stack.get("/compute/v2.1/os-migrations", as_="admin", version=version, params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["migrations"])


def host_of(stack: Api, sid: str) -> str:
    return str(server(stack, sid)["OS-EXT-SRV-ATTR:host"])


@pytest.fixture
def two_hosts(stack_factory: Any) -> Api:
    return stack_factory(fake_hosts=2)  # type: ignore[no-any-return]


def test_resize_confirm_moves_usage_to_the_new_host(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    assert usages(stack)[src] == TINY

    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    s = wait_status(stack, sid, "VERIFY_RESIZE")
    dst = s["OS-EXT-SRV-ATTR:host"]
    assert dst != src  # allow_resize_to_same_host is off: the source host is excluded
    assert s["flavor"]["id"] == "2"
    # in flight: the migration holds the source allocation, the instance the destination's
    u = usages(stack)
    assert u[src] == TINY and u[dst] == SMALL
    [m] = migrations(stack, instance_uuid=sid)
    assert (m["status"], m["migration_type"]) == ("finished", "resize")
    assert (m["source_compute"], m["dest_compute"]) == (src, dst)
    assert list(consumer(stack, m["uuid"])) == [providers(stack)[src]]
    assert list(consumer(stack, sid)) == [providers(stack)[dst]]

    r = action(stack, sid, {"confirmResize": None})
    assert r.status_code == 204, r.text
    s = wait_status(stack, sid, "ACTIVE")
    assert server(stack, sid, version="2.47")["flavor"]["original_name"] == "m1.small"
    u = usages(stack)
    assert u[src] == {} and u[dst] == SMALL
    assert consumer(stack, m["uuid"]) == {}
    assert migrations(stack, instance_uuid=sid)[0]["status"] == "confirmed"

    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    assert all(v == {} for v in usages(stack).values())


def test_resize_revert_puts_everything_back(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    assert action(stack, sid, {"resize": {"flavorRef": "3"}}).status_code == 202
    dst = wait_status(stack, sid, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"]
    assert usages(stack) == {src: TINY, dst: MEDIUM}

    assert action(stack, sid, {"revertResize": None}).status_code == 202
    s = wait_status(stack, sid, "ACTIVE")
    assert s["OS-EXT-SRV-ATTR:host"] == src
    assert usages(stack) == {src: TINY, dst: {}}
    [m] = migrations(stack, instance_uuid=sid)
    assert m["status"] == "reverted" and consumer(stack, m["uuid"]) == {}
    # the flavor is the old one again: a second resize to flavor 1 is "same flavor"
    assert "must change flavor" in fault(action(stack, sid, {"resize": {"flavorRef": "1"}}), 400)


def test_resize_of_a_stopped_server_ends_stopped(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    assert action(stack, sid, {"os-stop": None}).status_code == 202
    wait_status(stack, sid, "SHUTOFF")
    assert action(stack, sid, {"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "AUTO"}}).status_code == 202
    assert wait_status(stack, sid, "VERIFY_RESIZE")["OS-DCF:diskConfig"] == "AUTO"
    assert action(stack, sid, {"confirmResize": None}).status_code == 204
    wait_status(stack, sid, "SHUTOFF")
    assert action(stack, sid, {"migrate": None}).status_code == 202  # a migrate resets it to MANUAL
    assert wait_status(stack, sid, "VERIFY_RESIZE")["OS-DCF:diskConfig"] == "MANUAL"


def test_resize_refusals(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack, flavor="2")
    assert fault(action(stack, sid, {"resize": {"flavorRef": "2"}}), 400) == (
        "When resizing, instances must change flavor!"
    )
    assert (
        fault(action(stack, sid, {"resize": {"flavorRef": "nope"}}), 400) == "Flavor nope could not be found."
    )
    assert "Unable to resize disk down" in fault(action(stack, sid, {"resize": {"flavorRef": "1"}}), 400)
    assert "Invalid input" in fault(action(stack, sid, {"resize": {"flavorRef": ""}}), 400)
    assert "Invalid input" in fault(action(stack, sid, {"resize": {"flavor": "2"}}), 400)
    assert fault(action(stack, sid, {"confirmResize": None}), 409).startswith(
        f"Cannot 'confirmResize' instance {sid} while it is in vm_state active"
    )
    assert action(stack, sid, {"lock": None}).status_code == 202
    assert fault(action(stack, sid, {"resize": {"flavorRef": "3"}}), 409) == f"Instance {sid} is locked"
    assert action(stack, sid, {"unlock": None}).status_code == 202
    # quota: the growth is what counts (cores 1 -> 2 over a limit of 1 core in use)
    project = stack.ids["demo_project"]
    r = stack.put(f"/compute/v2.1/os-quota-sets/{project}", as_="admin", json={"quota_set": {"cores": 1}})
    assert r.status_code == 200, r.text
    msg = fault(action(stack, sid, {"resize": {"flavorRef": "3"}}), 403)
    assert msg.startswith("Quota exceeded for cores: Requested 1, but already used 1 of 1 cores"), msg
    # nothing moved, nothing leaked
    assert server(stack, sid)["status"] == "ACTIVE"
    assert sum(u.get("VCPU", 0) for u in usages(stack).values()) == 1
    assert migrations(stack, instance_uuid=sid) == []


def test_resize_to_same_host_when_allowed(stack_factory: Any) -> None:
    stack = stack_factory(allow_resize_to_same_host=True)
    sid = boot(stack)
    host = host_of(stack, sid)
    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    assert wait_status(stack, sid, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"] == host
    assert usages(stack)[host] == add(TINY, SMALL)  # old on the migration, new on the instance
    assert action(stack, sid, {"revertResize": None}).status_code == 202
    wait_status(stack, sid, "ACTIVE")
    assert usages(stack)[host] == TINY


def test_resize_with_one_host_and_no_same_host_fails_cleanly(stack: Api) -> None:
    sid = boot(stack)
    host = host_of(stack, sid)
    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    r = stack.wait_for(
        "/compute/v2.1/os-migrations",
        lambda r: r.json()["migrations"] and r.json()["migrations"][0]["status"] == "error",
        as_="admin",
        version="2.59",
    )
    [m] = r.json()["migrations"]
    s = wait_status(stack, sid, "ACTIVE")  # vm_state kept, task cleared, the old flavor
    assert s["OS-EXT-SRV-ATTR:host"] == host and m["instance_uuid"] == sid and s["flavor"]["id"] == "1"
    assert usages(stack)[host] == TINY
    assert consumer(stack, m["uuid"]) == {} and list(consumer(stack, sid)) == [providers(stack)[host]]
    # the resize action failed (a fault is recorded, shown only for ERROR servers)
    acts = stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]
    assert [(a["action"], a["message"]) for a in acts if a["action"] == "resize"] == [("resize", "Error")]


def test_auto_confirm(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2, resize_confirm_window=1)
    sid = boot(stack)
    src = host_of(stack, sid)
    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    dst = wait_status(stack, sid, "VERIFY_RESIZE", "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    wait_status(stack, sid, "ACTIVE")
    stack.wait_for(
        "/compute/v2.1/os-migrations",
        lambda r: r.json()["migrations"][0]["status"] == "confirmed",
        as_="admin",
    )
    assert usages(stack) == {src: {}, dst: SMALL}


def test_cold_migrate_and_confirm(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    # a target host is an admin's (os-migrate-server:migrate:host)
    assert action(stack, sid, {"migrate": {"host": "x"}}, version="2.56").status_code == 403
    r = action(stack, sid, {"migrate": {"host": src}}, as_="admin", version="2.56")
    assert fault(r, 400) == "Cannot migrate to the host where the server exists."
    r = action(stack, sid, {"migrate": {"host": "nowhere"}}, as_="admin", version="2.56")
    assert fault(r, 400) == "Compute host nowhere could not be found."
    assert action(stack, sid, {"migrate": None}).status_code == 202  # a manager's (= member here)
    dst = wait_status(stack, sid, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"]
    assert dst != src
    assert usages(stack) == {src: TINY, dst: TINY}
    [m] = migrations(stack, instance_uuid=sid)
    assert m["migration_type"] == "migration" and m["old_instance_type_id"] == m["new_instance_type_id"]
    assert action(stack, sid, {"confirmResize": None}).status_code == 204
    wait_status(stack, sid, "ACTIVE")
    assert usages(stack) == {src: {}, dst: TINY}


def test_live_migrate(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    body = {"os-migrateLive": {"block_migration": "auto", "host": None}}
    assert action(stack, sid, body, as_="admin", version="2.25").status_code == 202
    stack.wait_for(
        f"{SERVERS}/{sid}",
        lambda r: (
            r.json()["server"]["OS-EXT-SRV-ATTR:host"] != src and r.json()["server"]["status"] == "ACTIVE"
        ),
        as_="admin",
    )
    dst = host_of(stack, sid)
    assert usages(stack) == {src: {}, dst: TINY}
    [m] = migrations(stack, instance_uuid=sid, migration_type="live-migration")
    assert m["status"] == "completed" and "links" not in m
    # force needs a host (2.30-2.67); force is gone at 2.68
    forced = {"os-migrateLive": {"block_migration": "auto", "host": None, "force": True}}
    assert fault(action(stack, sid, forced, as_="admin", version="2.30"), 400) == (
        "Can't force to a non-provided destination"
    )
    assert "Invalid input" in fault(action(stack, sid, forced, as_="admin", version="2.68"), 400)
    to_src = {"os-migrateLive": {"block_migration": False, "host": src}}
    assert action(stack, sid, to_src, as_="admin", version="2.68").status_code == 202
    stack.wait_for(
        f"{SERVERS}/{sid}", lambda r: r.json()["server"]["OS-EXT-SRV-ATTR:host"] == src, as_="admin"
    )
    assert usages(stack) == {src: TINY, dst: {}}
    # the server's in-progress live migrations: none (the fake driver is done at once)
    r = stack.get(f"{SERVERS}/{sid}/migrations", as_="admin", version="2.23")
    assert r.status_code == 200 and r.json() == {"migrations": []}
    mid = m["id"]
    r = stack.get(f"{SERVERS}/{sid}/migrations/{mid}", as_="admin", version="2.23")
    assert fault(r, 404) == f"Live migration {mid} for server {sid} is not in progress."
    r = stack.post(
        f"{SERVERS}/{sid}/migrations/{mid}/action", json={"force_complete": None}, as_="admin", version="2.22"
    )
    assert fault(r, 409).startswith(f"Cannot 'force_complete' instance {sid} while it is in task_state None")
    r = stack.delete(f"{SERVERS}/{sid}/migrations/{mid}", as_="admin", version="2.24")
    assert fault(r, 409).startswith(f"Cannot 'abort live migration' instance {sid}")
    assert stack.get(f"{SERVERS}/{sid}/migrations", as_="admin", version="2.22").status_code == 404


def test_os_migrations_filters_and_paging(two_hosts: Api) -> None:
    stack = two_hosts
    a, b = boot(stack, "a"), boot(stack, "b")
    for sid in (a, b):
        assert action(stack, sid, {"migrate": None}, as_="admin").status_code == 202
        wait_status(stack, sid, "VERIFY_RESIZE")
    assert action(stack, a, {"confirmResize": None}).status_code == 204
    assert {m["instance_uuid"] for m in migrations(stack)} == {a, b}
    assert [m["instance_uuid"] for m in migrations(stack, status="confirmed")] == [a]
    assert [m["instance_uuid"] for m in migrations(stack, instance_uuid=b)] == [b]
    assert migrations(stack, migration_type="resize") == []
    # 2.59: newest first, limit and marker, a next link when the page is full
    r = stack.get("/compute/v2.1/os-migrations?limit=1", as_="admin", version="2.59")
    page = r.json()
    assert [m["instance_uuid"] for m in page["migrations"]] == [b]
    assert "marker=" in page["migrations_links"][0]["href"]
    marker = page["migrations"][0]["uuid"]
    r = stack.get(f"/compute/v2.1/os-migrations?marker={marker}", as_="admin", version="2.59")
    assert [m["instance_uuid"] for m in r.json()["migrations"]] == [a]
    assert fault(stack.get("/compute/v2.1/os-migrations?marker=nope", as_="admin", version="2.59"), 400)
    assert fault(stack.get("/compute/v2.1/os-migrations?foo=1", as_="admin", version="2.59"), 400)
    assert stack.get("/compute/v2.1/os-migrations?foo=1", as_="admin", version="2.58").status_code == 200
    r = stack.get(
        "/compute/v2.1/os-migrations?changes-since=2030-01-02T00:00:00&changes-before=2030-01-01T00:00:00",
        as_="admin",
        version="2.66",
    )
    assert fault(r, 400) == "The value of changes-since must be less than or equal to changes-before."
    # fields per version
    old = migrations(stack, version="2.1")[0]
    assert "migration_type" not in old and "uuid" not in old
    assert {"uuid", "user_id", "project_id", "migration_type"} <= set(migrations(stack)[0])
    # a manager (a member here) sees its own project's migrations without the host fields
    mine = stack.get("/compute/v2.1/os-migrations").json()["migrations"]
    assert {m["instance_uuid"] for m in mine} == {a, b}
    assert all(m["source_compute"] is None and m["dest_compute"] is None for m in mine)
    r = stack.get("/compute/v2.1/os-migrations?project_id=other", version="2.80")
    assert r.status_code == 403


def test_delete_during_verify_resize_frees_both_hosts(two_hosts: Api) -> None:
    stack = two_hosts
    sid = boot(stack)
    assert action(stack, sid, {"resize": {"flavorRef": "2"}}).status_code == 202
    wait_status(stack, sid, "VERIFY_RESIZE")
    [m] = migrations(stack, instance_uuid=sid)
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.status_code == 404)
    assert all(u == {} for u in usages(stack).values())
    assert consumer(stack, m["uuid"]) == {}
    assert migrations(stack, instance_uuid=sid)[0]["status"] == "confirmed"  # Nova confirms on delete


def test_a_move_interrupted_by_an_engine_crash_is_given_up(two_hosts: Api) -> None:
    """The engine dies after handing the source allocation to the migration: the periodic
    recovery gives the move up and the server its allocation back."""
    from novalite.context import RequestContext
    from novalite.domain import actions as transitions
    from novalite.services import server_moves

    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    rt = stack.runtime  # type: ignore[attr-defined]
    ctx = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    move = server_moves.begin(rt, ctx, sid, transition=transitions.RESIZE, flavor_ref="2", host=None)
    rt.db.write(lambda s: server_moves.start_move(s, move.migration_uuid))  # ... and no more
    assert server(stack, sid)["status"] == "RESIZE"
    assert consumer(stack, sid) == {} and usages(stack)[src] == TINY  # held by the migration
    assert rt.db.write(lambda s: server_moves.recover_interrupted(s, older_than=0)) == 1
    s = server(stack, sid)
    assert s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] == src
    assert list(consumer(stack, sid)) == [providers(stack)[src]] and usages(stack)[src] == TINY
    [m] = migrations(stack, instance_uuid=sid)
    assert m["status"] == "error" and consumer(stack, m["uuid"]) == {}


def test_a_driver_that_cannot_move_guests_gives_the_move_up(two_hosts: Api) -> None:
    """A host whose driver runs real guests (QEMU) refuses a move at its source step: the server
    stays where it was with its allocation, the migration ends in error."""
    import types

    from novalite.compute import moves as agent_moves
    from novalite.compute.rpcapi import ResizeInstance
    from novalite.context import RequestContext
    from novalite.domain import actions as transitions
    from novalite.services import server_moves

    stack = two_hosts
    sid = boot(stack)
    src = host_of(stack, sid)
    rt = stack.runtime  # type: ignore[attr-defined]
    ctx = RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )
    move = server_moves.begin(rt, ctx, sid, transition=transitions.MIGRATE, flavor_ref=None, host=None)
    rt.db.write(lambda s: server_moves.start_move(s, move.migration_uuid))
    real_host = types.SimpleNamespace(host=src, db=rt.db, driver=object(), conductor=None)
    msg = ResizeInstance(
        context={}, migration_uuid=move.migration_uuid, host=src, dest_host="x", dest_node="x"
    )
    agent_moves.resize_instance(real_host, msg)
    s = server(stack, sid)
    assert s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] == src
    assert list(consumer(stack, sid)) == [providers(stack)[src]]
    assert migrations(stack, instance_uuid=sid)[0]["status"] == "error"

"""The port quota on the create path (fewer servers, or 403 PortLimitExceeded), and what failed
builds and deletes leave behind: no port, no fixed IP, no volume attachment; freed IPs are reused."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
FAIL = {"novalite:fail_spawn": "always"}


def image_id(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def create(stack: Api, version: str = "2.1", **fields: Any) -> Any:
    server = {"name": "vm", "imageRef": image_id(stack), "flavorRef": "1", **fields}
    return stack.post(SERVERS, version=version, json={"server": server})


def settle(stack: Api) -> list[dict[str, Any]]:
    """Wait until no server of the demo project is building; return them (detail view)."""
    stack.wait_for(
        f"{SERVERS}/detail", lambda r: all(s["status"] in ("ACTIVE", "ERROR") for s in r.json()["servers"])
    )
    return stack.get(f"{SERVERS}/detail").json()["servers"]  # type: ignore[no-any-return]


def delete_all(stack: Api) -> None:
    for server in stack.get(SERVERS).json()["servers"]:
        assert stack.delete(f"{SERVERS}/{server['id']}").status_code == 204
    stack.wait_for(SERVERS, lambda r: r.json()["servers"] == [])


def project_ports(stack: Api) -> list[dict[str, Any]]:
    return stack.get(f"/network/v2.0/ports?project_id={stack.ids['demo_project']}").json()["ports"]  # type: ignore


def private_ipv4(server: dict[str, Any]) -> str:
    return next(a["addr"] for a in server["addresses"]["private"] if a["version"] == 4)


def test_port_quota_lowers_max_count_or_refuses_min_count(stack: Api) -> None:
    r = stack.put(
        f"/network/v2.0/quotas/{stack.ids['demo_project']}", as_="admin", json={"quota": {"port": 3}}
    )
    assert r.status_code == 200, r.text
    r = create(stack, min_count=4, max_count=5)
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["message"] == "Maximum number of ports exceeded"
    assert stack.get(SERVERS).json()["servers"] == []
    r = create(stack, min_count=1, max_count=5, return_reservation_id=True)
    assert r.status_code == 202, r.text
    servers = settle(stack)
    assert len(servers) == 3 and {s["status"] for s in servers} == {"ACTIVE"}
    assert len({private_ipv4(s) for s in servers}) == 3
    assert len(project_ports(stack)) == 3
    r = create(stack)
    assert r.status_code == 403 and "Maximum number of ports exceeded" in r.json()["forbidden"]["message"]
    # networks "none" needs no port: still allowed
    r = create(stack, version="2.37", networks="none")
    assert r.status_code == 202, r.text
    portless = r.json()["server"]["id"]
    stack.wait_for(f"{SERVERS}/{portless}", lambda r: r.json()["server"]["status"] == "ACTIVE")
    r = stack.post(f"{SERVERS}/{portless}/os-interface", json={"interfaceAttachment": {}})
    assert r.status_code == 403 and r.json()["forbidden"]["message"] == "Maximum number of ports exceeded"
    delete_all(stack)
    assert project_ports(stack) == []
    assert create(stack, min_count=3, max_count=3).status_code == 202  # the room is back


def test_failed_builds_and_deletes_leave_nothing_behind_and_ips_are_reused(stack: Api) -> None:
    r = create(stack, name="first")
    assert r.status_code == 202, r.text
    [first] = settle(stack)
    address = private_ipv4(first)
    assert stack.delete(f"{SERVERS}/{first['id']}").status_code == 204
    stack.wait_for(SERVERS, lambda r: r.json()["servers"] == [])
    assert project_ports(stack) == []
    # a failed build gives its port and address back at once
    r = create(stack, name="broken", metadata=FAIL, min_count=2)
    assert r.status_code == 202, r.text
    broken = settle(stack)
    assert {s["status"] for s in broken} == {"ERROR"} and all(s["addresses"] == {} for s in broken)
    assert project_ports(stack) == []
    r = create(stack, name="second")
    assert r.status_code == 202, r.text
    second = next(s for s in settle(stack) if s["name"] == "second")
    assert private_ipv4(second) == address  # the freed address is handed out again
    delete_all(stack)
    assert project_ports(stack) == []


def test_volumes_and_user_ports_survive_failures_detached(stack: Api) -> None:
    r = stack.post(
        "/volume/v3/volumes", json={"volume": {"size": 1, "name": "root", "imageRef": image_id(stack)}}
    )
    vol = r.json()["volume"]["id"]
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    nets = stack.get("/network/v2.0/networks?name=private").json()["networks"]
    net = next(n["id"] for n in nets if n["project_id"] == stack.ids["demo_project"])
    port = stack.post("/network/v2.0/ports", json={"port": {"network_id": net, "name": "mine"}}).json()[
        "port"
    ]
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "bfv",
                "flavorRef": "1",
                "metadata": FAIL,
                "networks": [{"port": port["id"]}],
                "block_device_mapping_v2": [
                    {"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": 0},
                    {
                        "source_type": "blank",
                        "destination_type": "volume",
                        "volume_size": 1,
                        "delete_on_termination": True,
                    },
                ],
            }
        },
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    [server] = settle(stack)
    assert server["status"] == "ERROR"
    kept = stack.get(f"/network/v2.0/ports/{port['id']}").json()["port"]
    assert kept["device_id"] == "" and kept["fixed_ips"] == port["fixed_ips"]  # unbound at once, address kept
    assert [p["id"] for p in project_ports(stack)] == [port["id"]]
    # the volumes stay with the ERROR server (as Nova keeps its BDMs) until it is deleted
    attached = stack.get(f"{SERVERS}/{sid}/os-volume_attachments").json()["volumeAttachments"]
    blank = next(a["volumeId"] for a in attached if a["volumeId"] != vol)
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(SERVERS, lambda r: r.json()["servers"] == [])
    assert stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["status"] == "available"
    assert stack.get(f"/volume/v3/volumes/{blank}").status_code == 404  # delete_on_termination
    assert (
        stack.get("/volume/v3/attachments", headers={"OpenStack-API-Version": "volume 3.27"}).json()[
            "attachments"
        ]
        == []
    )
    # the user's port and volume boot a new server
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "again",
                "flavorRef": "1",
                "networks": [{"port": port["id"]}],
                "block_device_mapping_v2": [
                    {"source_type": "volume", "destination_type": "volume", "uuid": vol, "boot_index": 0}
                ],
            }
        },
    )
    assert r.status_code == 202, r.text
    [again] = settle(stack)
    assert again["status"] == "ACTIVE"
    assert stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["status"] == "in-use"
    assert stack.delete(f"{SERVERS}/{again['id']}").status_code == 204
    stack.wait_for(SERVERS, lambda r: r.json()["servers"] == [])
    assert stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["status"] == "available"
    assert stack.get(f"/network/v2.0/ports/{port['id']}").json()["port"]["device_id"] == ""

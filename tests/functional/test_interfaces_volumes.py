"""os-interface and os-volume_attachments through HTTP: attach/detach flows, what the server view
and /ips show afterwards, the views per microversion, and Nova's error codes."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
MISSING = str(uuid.uuid4())


def image_id(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def network_id(stack: Api, name: str = "private", as_: str = "demo") -> str:
    nets = stack.get(f"/network/v2.0/networks?name={name}", as_=as_).json()["networks"]
    mine = [n for n in nets if n["project_id"] == stack.ids[f"{as_}_project"]] or nets
    return str(mine[0]["id"])


def boot(stack: Api, name: str = "vm", **fields: Any) -> str:
    server = {"name": name, "imageRef": image_id(stack), "flavorRef": "1", "networks": "none", **fields}
    r = stack.post(SERVERS, version="2.37", json={"server": server})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"))
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["status"] == "ACTIVE"
    return sid


def new_volume(stack: Api, name: str = "data", **extra: Any) -> str:
    r = stack.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": name, **extra}})
    assert r.status_code == 202, r.text
    vol = str(r.json()["volume"]["id"])
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    return vol


def volume_status(stack: Api, vol: str) -> str:
    return str(stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["status"])


def fault(r: Any, status: int) -> str:
    key = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[status]
    assert r.status_code == status, r.text
    return str(r.json()[key]["message"])


# -- interfaces -----------------------------------------------------------------------------------


def test_attach_interface_on_a_network_shows_the_address_then_detach_drops_it(stack: Api) -> None:
    sid = boot(stack)
    assert stack.get(f"{SERVERS}/{sid}/os-interface").json() == {"interfaceAttachments": []}
    net = network_id(stack)
    r = stack.post(
        f"{SERVERS}/{sid}/os-interface",
        json={"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.40"}]}},
    )
    assert r.status_code == 200, r.text
    att = r.json()["interfaceAttachment"]
    assert att["net_id"] == net and att["port_state"] == "ACTIVE" and "tag" not in att
    assert {"ip_address": "10.0.0.40", "subnet_id": att["fixed_ips"][0]["subnet_id"]} in att["fixed_ips"]
    port = att["port_id"]
    listed = stack.get(f"{SERVERS}/{sid}/os-interface").json()["interfaceAttachments"]
    assert [i["port_id"] for i in listed] == [port]
    assert (
        stack.get(f"{SERVERS}/{sid}/os-interface/{port}").json()["interfaceAttachment"]["mac_addr"]
        == att["mac_addr"]
    )
    addrs = stack.get(f"{SERVERS}/{sid}").json()["server"]["addresses"]["private"]
    assert any(a["addr"] == "10.0.0.40" and a["OS-EXT-IPS-MAC:mac_addr"] == att["mac_addr"] for a in addrs)
    assert any(a["addr"] == "10.0.0.40" for a in stack.get(f"{SERVERS}/{sid}/ips/private").json()["private"])
    port_view = stack.get(f"/network/v2.0/ports/{port}").json()["port"]
    assert port_view["device_id"] == sid and port_view["device_owner"] == "compute:nova"

    assert stack.delete(f"{SERVERS}/{sid}/os-interface/{port}").status_code == 202
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["addresses"] == {}
    assert stack.get(f"{SERVERS}/{sid}/ips").json() == {"addresses": {}}
    assert stack.get(f"/network/v2.0/ports/{port}").status_code == 404  # the port Nova made is gone
    actions = [
        a["action"] for a in stack.get(f"{SERVERS}/{sid}/os-instance-actions").json()["instanceActions"]
    ]
    assert "attach_interface" in actions and "detach_interface" in actions


def test_attach_a_users_port_and_detach_only_unbinds_it(stack: Api) -> None:
    sid = boot(stack)
    r = stack.post("/network/v2.0/ports", json={"port": {"network_id": network_id(stack), "name": "mine"}})
    assert r.status_code == 201, r.text
    port = r.json()["port"]["id"]
    r = stack.post(
        f"{SERVERS}/{sid}/os-interface",
        version="2.70",
        json={"interfaceAttachment": {"port_id": port, "tag": "nic1"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["interfaceAttachment"]["tag"] == "nic1"
    shown = stack.get(f"{SERVERS}/{sid}/os-interface/{port}", version="2.70").json()["interfaceAttachment"]
    assert shown["tag"] == "nic1"
    assert (
        "tag"
        not in stack.get(f"{SERVERS}/{sid}/os-interface/{port}", version="2.69").json()["interfaceAttachment"]
    )
    other = boot(stack, "other")
    r = stack.post(f"{SERVERS}/{other}/os-interface", json={"interfaceAttachment": {"port_id": port}})
    assert "is still in use" in fault(r, 409)
    assert stack.delete(f"{SERVERS}/{sid}/os-interface/{port}").status_code == 202
    kept = stack.get(f"/network/v2.0/ports/{port}").json()["port"]
    assert kept["device_id"] == "" and kept["status"] == "DOWN"
    # attached again, then the server is deleted: the user's port survives, unbound
    assert (
        stack.post(
            f"{SERVERS}/{other}/os-interface", json={"interfaceAttachment": {"port_id": port}}
        ).status_code
        == 200
    )
    assert stack.delete(f"{SERVERS}/{other}").status_code == 204
    stack.wait_for(f"{SERVERS}/{other}", lambda r: r.status_code == 404)
    assert stack.get(f"/network/v2.0/ports/{port}").json()["port"]["device_id"] == ""


def test_interface_errors(stack: Api) -> None:
    sid = boot(stack)
    base = f"{SERVERS}/{sid}/os-interface"
    net = network_id(stack)
    cases = [
        ({"net_id": MISSING}, 404, f"Network {MISSING} could not be found"),
        ({"port_id": MISSING}, 404, f"Port id {MISSING} could not be found"),
        ({"net_id": net, "port_id": MISSING}, 400, "Must not input both network_id and port_id"),
        ({"fixed_ips": [{"ip_address": "10.0.0.9"}]}, 400, "Must input network_id when request IP address"),
        (
            {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.x"}]},
            400,
            "Invalid input for field/attribute",
        ),
        ({"net_id": net, "fixed_ips": [{"ip_address": "192.168.9.9"}]}, 400, "is not a valid IP"),
        ({"net_id": "not-a-uuid"}, 400, "Invalid input for field/attribute net_id"),
        ({"net_id": net, "tag": "t"}, 400, "Additional properties are not allowed"),  # tag needs 2.49
        ({"bogus": 1}, 400, "Additional properties are not allowed"),
    ]
    for spec, status, gist in cases:
        assert gist in fault(stack.post(base, json={"interfaceAttachment": spec}), status), spec
    assert (
        stack.post(
            base, json={"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.41"}]}}
        ).status_code
        == 200
    )
    r = stack.post(
        base, json={"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.41"}]}}
    )
    assert "already in use" in fault(r, 409)
    assert f"Port id {MISSING} could not be found" in fault(stack.get(f"{base}/{MISSING}"), 404)
    assert f"Port id {MISSING} could not be found" in fault(stack.delete(f"{base}/{MISSING}"), 404)
    stray = stack.post("/network/v2.0/ports", json={"port": {"network_id": net}}).json()["port"]["id"]
    assert "does not have a port with id" in fault(stack.get(f"{base}/{stray}"), 404)
    assert stack.delete(f"{base}/{stray}").status_code == 404
    assert stack.get(f"{SERVERS}/{MISSING}/os-interface").status_code == 404
    assert stack.get(base, as_="admin").status_code == 200  # admins see any project's server
    # another project's server is a 404
    admin_net = network_id(stack, as_="admin")
    r = stack.post(
        f"{SERVERS}/{sid}/os-interface", as_="demo", json={"interfaceAttachment": {"net_id": admin_net}}
    )
    assert r.status_code == 404  # the admin project's private network is not the demo project's
    # state checks: suspended servers refuse, stopped servers accept
    assert stack.post(f"{SERVERS}/{sid}/action", json={"suspend": None}).status_code == 202
    r = stack.post(base, json={"interfaceAttachment": {"net_id": net}})
    assert "while it is in vm_state suspended" in fault(r, 409)
    assert stack.post(f"{SERVERS}/{sid}/action", json={"resume": None}).status_code == 202
    assert stack.post(f"{SERVERS}/{sid}/action", json={"os-stop": None}).status_code == 202
    assert stack.post(base, json={"interfaceAttachment": {"net_id": net}}).status_code == 200


def test_attach_without_a_network_uses_the_only_one_and_ambiguity_is_409(stack: Api) -> None:
    sid = boot(stack)
    base = f"{SERVERS}/{sid}/os-interface"
    r = stack.post(base, json={"interfaceAttachment": {}})
    assert r.status_code == 200, r.text
    assert r.json()["interfaceAttachment"]["net_id"] == network_id(stack)
    r = stack.post("/network/v2.0/networks", json={"network": {"name": "second"}})
    assert r.status_code == 201, r.text
    second = r.json()["network"]["id"]
    assert (
        stack.post(
            "/network/v2.0/subnets",
            json={"subnet": {"network_id": second, "cidr": "10.9.0.0/24", "ip_version": 4}},
        ).status_code
        == 201
    )
    assert "More than one possible network" in fault(stack.post(base, json={"interfaceAttachment": {}}), 409)


# -- volumes --------------------------------------------------------------------------------------


def test_attach_and_detach_a_volume(stack: Api) -> None:
    sid = boot(stack)
    vol = new_volume(stack)
    base = f"{SERVERS}/{sid}/os-volume_attachments"
    r = stack.post(base, json={"volumeAttachment": {"volumeId": vol}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"] == {"id": vol, "volumeId": vol, "serverId": sid, "device": "/dev/vdb"}
    assert volume_status(stack, vol) == "in-use"
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["os-extended-volumes:volumes_attached"] == [
        {"id": vol}
    ]
    listed = stack.get(base).json()["volumeAttachments"]
    assert listed == [{"id": vol, "volumeId": vol, "serverId": sid, "device": "/dev/vdb"}]
    cinder = stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["attachments"]
    assert [a["server_id"] for a in cinder] == [sid]
    # the same volume again, or on another server: 400 InvalidVolume
    assert "Invalid volume" in fault(stack.post(base, json={"volumeAttachment": {"volumeId": vol}}), 400)
    other = boot(stack, "other")
    r = stack.post(f"{SERVERS}/{other}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol}})
    assert "Invalid volume" in fault(r, 400)
    assert stack.delete(f"{base}/{vol}").status_code == 202
    assert volume_status(stack, vol) == "available"
    assert stack.get(base).json() == {"volumeAttachments": []}
    assert stack.get(f"{SERVERS}/{sid}").json()["server"]["os-extended-volumes:volumes_attached"] == []
    assert "volume_id not found" in fault(stack.delete(f"{base}/{vol}"), 404)


def test_volume_attachment_views_per_microversion(stack: Api) -> None:
    sid = boot(stack)
    vol = new_volume(stack)
    base = f"{SERVERS}/{sid}/os-volume_attachments"
    body = {
        "volumeAttachment": {
            "volumeId": vol,
            "device": "/dev/vdc",
            "tag": "db",
            "delete_on_termination": True,
        }
    }
    assert "Additional properties" in fault(stack.post(base, version="2.78", json=body), 400)
    r = stack.post(base, version="2.79", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"] == {
        "id": vol,
        "volumeId": vol,
        "serverId": sid,
        "device": "/dev/vdc",
        "tag": "db",
        "delete_on_termination": True,
    }
    assert set(stack.get(f"{base}/{vol}", version="2.69").json()["volumeAttachment"]) == {
        "id",
        "volumeId",
        "serverId",
        "device",
    }
    assert stack.get(f"{base}/{vol}", version="2.70").json()["volumeAttachment"]["tag"] == "db"
    new = stack.get(f"{base}/{vol}", version="2.89").json()["volumeAttachment"]
    assert "id" not in new and new["delete_on_termination"] is True and new["tag"] == "db"
    cinder = stack.get(f"/volume/v3/volumes/{vol}").json()["volume"]["attachments"]
    assert new["attachment_id"] == cinder[0]["attachment_id"] and uuid.UUID(new["bdm_uuid"])
    server = stack.get(f"{SERVERS}/{sid}", version="2.3").json()["server"]
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vol, "delete_on_termination": True}]
    # 2.85: delete_on_termination changed by its owner; other fields are not mutable
    put = {"volumeAttachment": {"volumeId": vol, "delete_on_termination": False}}
    assert "Additional properties" in fault(stack.put(f"{base}/{vol}", version="2.84", json=put), 400)
    assert stack.put(f"{base}/{vol}", version="2.85", json=put).status_code == 202
    assert (
        stack.get(f"{base}/{vol}", version="2.85").json()["volumeAttachment"]["delete_on_termination"]
        is False
    )
    r = stack.put(
        f"{base}/{vol}", version="2.85", json={"volumeAttachment": {"volumeId": vol, "device": "/dev/vdq"}}
    )
    assert "not mutable" in fault(r, 400)
    # the server goes: the volume is kept (delete_on_termination false) and available again
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")


def test_delete_on_termination_removes_the_volume_with_the_server(stack: Api) -> None:
    sid = boot(stack)
    vol = new_volume(stack)
    assert (
        stack.post(
            f"{SERVERS}/{sid}/os-volume_attachments",
            version="2.79",
            json={"volumeAttachment": {"volumeId": vol, "delete_on_termination": True}},
        ).status_code
        == 200
    )
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.status_code == 404)


def test_swap_volume_is_admin_only(stack: Api) -> None:
    sid = boot(stack)
    old, new = new_volume(stack, "old"), new_volume(stack, "new")
    base = f"{SERVERS}/{sid}/os-volume_attachments"
    assert stack.post(base, json={"volumeAttachment": {"volumeId": old}}).status_code == 200
    swap = {"volumeAttachment": {"volumeId": new}}
    assert stack.put(f"{base}/{old}", json=swap).status_code == 403
    assert stack.put(f"{base}/{old}", as_="admin", json=swap).status_code == 202
    assert [a["volumeId"] for a in stack.get(base).json()["volumeAttachments"]] == [new]
    assert stack.get(base).json()["volumeAttachments"][0]["device"] == "/dev/vdb"
    assert (volume_status(stack, old), volume_status(stack, new)) == ("available", "in-use")
    assert stack.put(f"{base}/{MISSING}", as_="admin", json=swap).status_code == 404


def test_volume_attachment_errors(stack: Api) -> None:
    sid = boot(stack)
    base = f"{SERVERS}/{sid}/os-volume_attachments"
    vol = new_volume(stack)
    assert f"Volume {MISSING} could not be found" in fault(
        stack.post(base, json={"volumeAttachment": {"volumeId": MISSING}}), 404
    )
    for body in (
        {},
        {"volumeAttachment": {}},
        {"volumeAttachment": {"volumeId": "x"}},
        {"volumeAttachment": {"volumeId": vol, "device": "sda b"}},
        {"volumeAttachment": {"volumeId": vol, "tag": "t"}},
        [1],
    ):
        assert stack.post(base, json=body).status_code == 400, body
    assert (
        stack.post(base, json={"volumeAttachment": {"volumeId": vol, "device": "/dev/vdb"}}).status_code
        == 200
    )
    other = new_volume(stack, "other")
    r = stack.post(base, json={"volumeAttachment": {"volumeId": other, "device": "/dev/vdb"}})
    assert "is in use" in fault(r, 409)
    assert f"volume_id not found: {MISSING}" in fault(stack.get(f"{base}/{MISSING}"), 404)
    admin_vol = stack.post("/volume/v3/volumes", as_="admin", json={"volume": {"size": 1}}).json()["volume"][
        "id"
    ]
    assert stack.post(base, json={"volumeAttachment": {"volumeId": admin_vol}}).status_code == 404
    assert stack.post(f"{SERVERS}/{sid}/action", json={"suspend": None}).status_code == 202
    r = stack.post(base, json={"volumeAttachment": {"volumeId": other}})
    assert "while it is in vm_state suspended" in fault(r, 409)
    assert stack.post(f"{SERVERS}/{sid}/action", json={"lock": None}).status_code == 202
    assert "is locked" in fault(stack.delete(f"{base}/{vol}"), 409)


def test_root_volume_of_a_boot_from_volume_server_cannot_be_detached(stack: Api) -> None:
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "bfv",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [
                    {
                        "source_type": "image",
                        "destination_type": "volume",
                        "uuid": image_id(stack),
                        "boot_index": 0,
                        "volume_size": 1,
                        "delete_on_termination": True,
                    }
                ],
            }
        },
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"))
    [root] = stack.get(f"{SERVERS}/{sid}/os-volume_attachments").json()["volumeAttachments"]
    assert root["device"] == "/dev/vda"
    r = stack.delete(f"{SERVERS}/{sid}/os-volume_attachments/{root['volumeId']}")
    assert "Cannot detach a root device volume" in fault(r, 400)
    data = new_volume(stack)
    r = stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": data}})
    assert r.json()["volumeAttachment"]["device"] == "/dev/vdb"
    assert stack.delete(f"{SERVERS}/{sid}/os-volume_attachments/{data}").status_code == 202
    assert stack.delete(f"{SERVERS}/{sid}").status_code == 204
    stack.wait_for(f"/volume/v3/volumes/{root['volumeId']}", lambda r: r.status_code == 404)
    assert volume_status(stack, data) == "available"


# -- network proxies (< 2.36) ---------------------------------------------------------------------


def test_os_networks_proxy_until_2_35(stack: Api) -> None:
    nets = stack.get("/compute/v2.1/os-networks", version="2.35").json()["networks"]
    labels = sorted(n["label"] for n in nets)
    assert labels == ["private", "public"]  # own private and the external public network
    mine = network_id(stack)
    shown = stack.get(f"/compute/v2.1/os-networks/{mine}").json()["network"]
    assert shown["id"] == mine and shown["label"] == "private" and shown["cidr"] is None
    assert "project_id" not in shown
    assert "project_id" in stack.get(f"/compute/v2.1/os-networks/{mine}", as_="admin").json()["network"]
    assert "Network not found" in fault(stack.get(f"/compute/v2.1/os-networks/{MISSING}"), 404)
    assert stack.get(f"/compute/v2.1/os-networks/{network_id(stack, as_='admin')}").status_code == 404
    assert stack.get("/compute/v2.1/os-networks", version="2.36").status_code == 404


def test_os_security_groups_proxy(stack: Api) -> None:
    base = "/compute/v2.1/os-security-groups"
    groups = stack.get(base).json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    assert all(
        r["group"] == {"name": "default", "tenant_id": stack.ids["demo_project"]} for r in groups[0]["rules"]
    )  # the default group's ingress rules: from its own members
    r = stack.post(base, json={"security_group": {"name": "web", "description": "web servers"}})
    assert r.status_code == 200, r.text
    web = r.json()["security_group"]
    assert web["rules"] == [] and web["tenant_id"] == stack.ids["demo_project"]
    for body, gist in (
        ({"security_group": {"name": "", "description": "d"}}, "minimum character"),
        ({"security_group": {"name": "x", "description": 5}}, "not a string"),
        ({"security_group": {"name": "x" * 256, "description": "d"}}, "more than 255"),
        ({"security_group": {"name": "default", "description": "d"}}, "already exists"),
        ({"nothing": {}}, "Missing parameter dict"),
    ):
        assert gist in fault(stack.post(base, json=body), 400), body
    rules = "/compute/v2.1/os-security-group-rules"
    r = stack.post(
        rules,
        json={
            "security_group_rule": {
                "parent_group_id": web["id"],
                "ip_protocol": "tcp",
                "from_port": 22,
                "to_port": 22,
                "cidr": "10.0.0.0/8",
            }
        },
    )
    assert r.status_code == 200, r.text
    rule = r.json()["security_group_rule"]
    assert rule["ip_range"] == {"cidr": "10.0.0.0/8"} and (rule["from_port"], rule["to_port"]) == (22, 22)
    again = stack.post(
        rules,
        json={
            "security_group_rule": {
                "parent_group_id": web["id"],
                "ip_protocol": "tcp",
                "from_port": 22,
                "to_port": 22,
                "cidr": "10.0.0.0/8",
            }
        },
    )
    assert "already exists" in fault(again, 400)
    for spec, status in (
        ({"parent_group_id": MISSING, "ip_protocol": "tcp", "from_port": 1, "to_port": 2}, 404),
        ({"parent_group_id": web["id"], "ip_protocol": "bogus", "from_port": 1, "to_port": 2}, 400),
        ({"parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 9, "to_port": 2}, 400),
        ({"parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": "a", "to_port": 2}, 400),
        ({"parent_group_id": web["id"], "cidr": "10.0.0.0/8", "group_id": web["id"]}, 400),
    ):
        assert stack.post(rules, json={"security_group_rule": spec}).status_code == status, spec
    assert [x["id"] for x in stack.get(f"{base}/{web['id']}").json()["security_group"]["rules"]] == [
        rule["id"]
    ]
    assert stack.delete(f"{rules}/{rule['id']}").status_code == 202
    assert stack.delete(f"{rules}/{rule['id']}").status_code == 404
    assert stack.get(f"{base}/{web['id']}", as_="admin").status_code == 200
    assert len(stack.get(f"{base}?all_tenants=1", as_="admin").json()["security_groups"]) >= 3
    assert stack.delete(f"{base}/{web['id']}").status_code == 202
    assert "not found" in fault(stack.get(f"{base}/{web['id']}"), 404)
    default = groups[0]["id"]
    assert stack.delete(f"{base}/{default}").status_code == 400  # the default group stays
    assert stack.get(base, version="2.36").status_code == 404
    assert stack.post(rules, version="2.36", json={}).status_code == 404


def test_server_security_groups_proxy(stack: Api) -> None:
    r = stack.post(SERVERS, json={"server": {"name": "sg", "imageRef": image_id(stack), "flavorRef": "1"}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ACTIVE")
    groups = stack.get(f"{SERVERS}/{sid}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    # not a proxy: Nova keeps it past 2.36 (the os-security-groups proxy is what goes)
    newer = stack.get(f"{SERVERS}/{sid}/os-security-groups", version="2.36")
    assert [g["name"] for g in newer.json()["security_groups"]] == ["default"]
    assert stack.get(f"{SERVERS}/{MISSING}/os-security-groups").status_code == 404


def test_odd_inputs_are_4xx_never_500(stack: Api) -> None:
    sid = boot(stack)
    paths = [
        f"{SERVERS}/{sid}/os-interface",
        f"{SERVERS}/{sid}/os-volume_attachments",
        "/compute/v2.1/os-security-groups",
        "/compute/v2.1/os-security-group-rules",
    ]
    bodies: list[Any] = [
        [1],
        "x",
        None,
        {"interfaceAttachment": None},
        {"volumeAttachment": []},
        {"volumeAttachment": {"volumeId": 7}},
        {"security_group": "x"},
        {"security_group_rule": {"parent_group_id": {"a": 1}, "from_port": [1]}},
        {"interfaceAttachment": {"port_id": "x" * 300}},
    ]
    for path in paths:
        for body in bodies:
            r = stack.post(path, json=body)
            assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        r = stack.post(path, content=b"{bad json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.text)
    long_id = "z" * 300
    for path in (
        f"{SERVERS}/{sid}/os-interface/{long_id}",
        f"{SERVERS}/{sid}/os-volume_attachments/{long_id}",
        f"/compute/v2.1/os-security-groups/{long_id}",
        f"/compute/v2.1/os-networks/{long_id}",
    ):
        assert stack.get(path).status_code == 404, path
        assert stack.delete(path).status_code in (404, 405), path
    r = stack.put(
        f"{SERVERS}/{sid}/os-volume_attachments/{long_id}",
        as_="admin",
        json={"volumeAttachment": {"volumeId": MISSING}},
    )
    assert r.status_code == 404


def test_another_projects_server_is_404(stack: Api) -> None:
    r = stack.post(
        SERVERS,
        as_="admin",
        version="2.37",
        json={"server": {"name": "adm", "imageRef": image_id(stack), "flavorRef": "1", "networks": "none"}},
    )
    sid = r.json()["server"]["id"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ACTIVE", as_="admin")
    for path in ("os-interface", "os-volume_attachments", "os-security-groups"):
        assert stack.get(f"{SERVERS}/{sid}/{path}").status_code == 404, path
    vol = new_volume(stack)
    r = stack.post(f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol}})
    assert r.status_code == 404
    assert stack.post(f"{SERVERS}/{sid}/os-interface", json={}).status_code == 404


def test_device_flows_on_postgresql(stack_factory: Any) -> None:
    stack = stack_factory(postgres=True)
    r = stack.post(SERVERS, json={"server": {"name": "pg", "imageRef": image_id(stack), "flavorRef": "1"}})
    sid = r.json()["server"]["id"]
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] == "ACTIVE")
    r = stack.post(
        f"{SERVERS}/{sid}/os-interface",
        version="2.49",
        json={"interfaceAttachment": {"net_id": network_id(stack), "tag": "second"}},
    )
    assert r.status_code == 200, r.text
    assert len(stack.get(f"{SERVERS}/{sid}/os-interface").json()["interfaceAttachments"]) == 2
    assert [
        g["name"] for g in stack.get(f"{SERVERS}/{sid}/os-security-groups").json()["security_groups"]
    ] == ["default"]
    vol = new_volume(stack)
    assert (
        stack.post(
            f"{SERVERS}/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol}}
        ).status_code
        == 200
    )
    assert (
        stack.delete(f"{SERVERS}/{sid}/os-interface/{r.json()['interfaceAttachment']['port_id']}").status_code
        == 202
    )
    assert stack.delete(f"{SERVERS}/{sid}/os-volume_attachments/{vol}").status_code == 202
    assert volume_status(stack, vol) == "available"
    assert len(stack.get(f"{SERVERS}/{sid}").json()["server"]["addresses"]["private"]) == 2  # IPv4 + IPv6

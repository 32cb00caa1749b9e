"""Secure RBAC's reader (issue 16, item 3): a token with only ``reader`` on the demo project reads
everything a member reads and writes nothing (403 in each service's envelope, api.policy), except
what needs no role: logging in, its own key pairs, revoking its own token. A member's same writes
still succeed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novalite.api import policy
from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
N = "/network/v2.0"
V = "/volume/v3"
MV = {"OpenStack-API-Version": "volume 3.60"}
IMAGES = "/image/v2/images"


def _with_reader(stack: Api) -> Api:
    project = stack.ids["demo_project"]
    r = stack.post(
        "/identity/v3/users",
        as_="admin",
        json={"user": {"name": "reader1", "password": "reader-pw", "default_project_id": project}},
    )
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    role = stack.get("/identity/v3/roles?name=reader", as_="admin").json()["roles"][0]
    r = stack.put(f"/identity/v3/projects/{project}/users/{uid}/roles/{role['id']}", as_="admin")
    assert r.status_code == 204, r.text
    stack.tokens["reader"] = stack.token_for("reader1", "reader-pw", "demo")  # logging in is allowed
    return stack


@pytest.fixture
def api(stack: Api) -> Api:
    return _with_reader(stack)


def _image_id(stack: Api) -> str:
    return str(stack.get(f"{IMAGES}?name=novalite-tiny").json()["images"][0]["id"])


def _nova_403(r: httpx.Response, rule: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {
        "forbidden": {"code": 403, "message": f"Policy doesn't allow {rule} to be performed."}
    }, r.text


def _neutron_403(r: httpx.Response, rule: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {
        "NeutronError": {
            "type": "PolicyNotAuthorized",
            "message": f"rule:{rule} is disallowed by policy",
            "detail": "",
        }
    }, r.text


def _glance_403(r: httpx.Response, rule: str) -> None:
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == 403 and f"You are not authorized to complete {rule} action." in body["message"]


def _member_resources(api: Api) -> dict[str, Any]:
    """One of each resource, made by the member (demo)."""
    out: dict[str, Any] = {}
    r = api.post(SERVERS, json={"server": {"name": "m-vm", "imageRef": _image_id(api), "flavorRef": "1"}})
    assert r.status_code == 202, r.text
    out["server"] = r.json()["server"]["id"]
    r = api.post(N + "/networks", json={"network": {"name": "m-net"}})
    assert r.status_code == 201, r.text
    out["network"] = r.json()["network"]["id"]
    r = api.post(N + "/ports", json={"port": {"network_id": out["network"]}})
    assert r.status_code == 201, r.text
    out["port"] = r.json()["port"]["id"]
    r = api.post(N + "/security-groups", json={"security_group": {"name": "m-sg"}})
    assert r.status_code == 201, r.text
    out["sg"] = r.json()["security_group"]["id"]
    r = api.post(f"{V}/volumes", json={"volume": {"size": 1, "name": "m-vol"}}, headers=MV)
    assert r.status_code == 202, r.text
    out["volume"] = r.json()["volume"]["id"]
    r = api.post(IMAGES, json={"name": "m-img", "disk_format": "raw", "container_format": "bare"})
    assert r.status_code == 201, r.text
    out["image"] = r.json()["id"]
    r = api.post(
        "/compute/v2.1/os-server-groups", json={"server_group": {"name": "m-g", "policies": ["affinity"]}}
    )
    assert r.status_code == 200, r.text
    out["group"] = r.json()["server_group"]["id"]
    return out


def test_reader_writes_are_403_in_each_envelope(api: Api) -> None:
    m = _member_resources(api)
    rd: dict[str, Any] = {"as_": "reader"}
    server = {"name": "r-vm", "imageRef": _image_id(api), "flavorRef": "1"}
    # Compute
    _nova_403(api.post(SERVERS, json={"server": server}, **rd), "os_compute_api:servers:create")
    _nova_403(api.delete(f"{SERVERS}/{m['server']}", **rd), "os_compute_api:servers:delete")
    _nova_403(
        api.put(f"{SERVERS}/{m['server']}", json={"server": {"name": "x"}}, **rd),
        "os_compute_api:servers:update",
    )
    _nova_403(
        api.post(f"{SERVERS}/{m['server']}/action", json={"reboot": {"type": "SOFT"}}, **rd),
        "os_compute_api:servers:reboot",
    )
    _nova_403(
        api.post(f"{SERVERS}/{m['server']}/action", json={"os-getConsoleOutput": {}}, **rd),
        "os_compute_api:os-console-output",
    )
    _nova_403(
        api.put(f"{SERVERS}/{m['server']}/metadata", json={"metadata": {"a": "b"}}, **rd),
        "os_compute_api:server-metadata:update_all",
    )
    _nova_403(
        api.post(
            "/compute/v2.1/os-server-groups",
            json={"server_group": {"name": "g", "policies": ["affinity"]}},
            **rd,
        ),
        "os_compute_api:os-server-groups:create",
    )
    _nova_403(
        api.delete(f"/compute/v2.1/os-server-groups/{m['group']}", **rd),
        "os_compute_api:os-server-groups:delete",
    )
    flavor = {"flavor": {"name": "f", "ram": 64, "vcpus": 1, "disk": 1}}
    _nova_403(api.post("/compute/v2.1/flavors", json=flavor, **rd), "os_compute_api:os-flavor-manage:create")
    # Network
    _neutron_403(api.post(N + "/networks", json={"network": {"name": "r"}}, **rd), "create_network")
    _neutron_403(api.delete(f"{N}/networks/{m['network']}", **rd), "delete_network")
    _neutron_403(
        api.put(f"{N}/networks/{m['network']}", json={"network": {"name": "r"}}, **rd), "update_network"
    )
    _neutron_403(api.post(N + "/ports", json={"port": {"network_id": m["network"]}}, **rd), "create_port")
    _neutron_403(api.delete(f"{N}/ports/{m['port']}", **rd), "delete_port")
    _neutron_403(
        api.post(N + "/security-groups", json={"security_group": {"name": "r"}}, **rd),
        "create_security_group",
    )
    _neutron_403(api.delete(f"{N}/security-groups/{m['sg']}", **rd), "delete_security_group")
    rule = {"security_group_rule": {"security_group_id": m["sg"], "direction": "ingress"}}
    _neutron_403(api.post(N + "/security-group-rules", json=rule, **rd), "create_security_group_rule")
    # Block Storage
    _nova_403(api.post(f"{V}/volumes", json={"volume": {"size": 1}}, headers=MV, **rd), "volume:create")
    _nova_403(api.delete(f"{V}/volumes/{m['volume']}", headers=MV, **rd), "volume:delete")
    _nova_403(
        api.post(
            f"{V}/{api.ids['demo_project']}/volumes/{m['volume']}/action",
            json={"os-extend": {"new_size": 2}},
            headers=MV,
            **rd,
        ),
        "volume:extend",
    )
    # Image
    _glance_403(
        api.post(IMAGES, json={"name": "r", "disk_format": "raw", "container_format": "bare"}, **rd),
        "add_image",
    )
    _glance_403(api.delete(f"{IMAGES}/{m['image']}", **rd), "delete_image")
    patch = [{"op": "replace", "path": "/name", "value": "x"}]
    headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    _glance_403(api.patch(f"{IMAGES}/{m['image']}", json=patch, headers=headers, **rd), "modify_image")
    # nothing the reader tried happened
    assert api.get(f"{SERVERS}/{m['server']}").status_code == 200
    assert api.get(f"{N}/networks/{m['network']}").json()["network"]["name"] == "m-net"
    assert api.get(f"{V}/volumes/{m['volume']}", headers=MV).json()["volume"]["size"] == 1
    assert api.get(f"{IMAGES}/{m['image']}").json()["name"] == "m-img"
    names = [g["name"] for g in api.get("/compute/v2.1/os-server-groups").json()["server_groups"]]
    assert names == ["m-g"]


def test_reader_reads_what_a_member_reads(api: Api) -> None:
    m = _member_resources(api)
    for path, key in (
        (SERVERS, "servers"),
        (f"{SERVERS}/detail", "servers"),
        (f"{SERVERS}/{m['server']}", "server"),
        ("/compute/v2.1/os-server-groups", "server_groups"),
        ("/compute/v2.1/flavors", "flavors"),
        ("/compute/v2.1/os-keypairs", "keypairs"),
        (f"{N}/networks", "networks"),
        (f"{N}/networks/{m['network']}", "network"),
        (f"{N}/ports", "ports"),
        (f"{N}/security-groups", "security_groups"),
        (IMAGES, "images"),
    ):
        mine, theirs = api.get(path, as_="reader"), api.get(path)
        assert mine.status_code == 200, (path, mine.text)
        assert mine.json()[key] == theirs.json()[key], path
    r = api.get(f"{V}/volumes/{m['volume']}", headers=MV, as_="reader")
    assert r.status_code == 200 and r.json()["volume"]["id"] == m["volume"]
    assert api.get(f"{IMAGES}/{m['image']}", as_="reader").status_code == 200


def test_reader_keeps_what_needs_no_role(api: Api) -> None:
    # its own key pairs (os-keypairs:* is user_id ownership, no role)
    r = api.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "rk"}}, as_="reader", version="2.2")
    assert r.status_code == 201, r.text
    assert api.delete("/compute/v2.1/os-keypairs/rk", as_="reader").status_code == 202
    # revoking its own token; logging in again
    token = api.tokens["reader"]
    r = api.delete("/identity/v3/auth/tokens", as_="reader", headers={"X-Subject-Token": token})
    assert r.status_code == 204, r.text
    assert api.token_for("reader1", "reader-pw", "demo")


def test_member_and_admin_writes_still_succeed(api: Api) -> None:
    m = _member_resources(api)
    assert api.delete(f"{N}/ports/{m['port']}").status_code == 204
    assert api.delete(f"{N}/networks/{m['network']}").status_code == 204
    assert api.delete(f"{N}/security-groups/{m['sg']}").status_code == 204
    assert api.delete(f"{IMAGES}/{m['image']}").status_code == 204
    assert api.delete(f"/compute/v2.1/os-server-groups/{m['group']}").status_code == 204
    assert api.delete(f"{SERVERS}/{m['server']}").status_code == 204
    r = api.post(N + "/networks", json={"network": {"name": "a-net"}}, as_="admin")
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("method", "path", "roles", "allowed"),
    [
        ("POST", "/compute/v2.1/servers", ("reader",), False),
        ("POST", "/compute/v2.1/servers", ("member", "reader"), True),
        ("POST", "/compute/v2.1/servers", ("Member",), True),  # oslo.policy ignores case
        ("POST", "/compute/v2.1/servers", ("admin",), True),
        ("GET", "/compute/v2.1/servers", ("reader",), True),
        ("POST", "/compute/v2.1/os-keypairs", ("reader",), True),
        ("DELETE", "/compute/v2.1/os-keypairs/k", ("reader",), True),
        ("POST", "/identity/v3/auth/tokens", (), True),
        ("POST", "/identity/v3/users/u/password", ("reader",), True),
        ("PUT", "/placement/resource_providers/x", ("reader",), True),  # admin-only in its routes
        ("PUT", "/volume/v3/0123456789abcdef0123456789abcdef/volumes/v", ("reader",), False),
        ("PATCH", "/image/v2/images/i", ("reader",), False),
        ("DELETE", "/network/v2.0/networks/n", ("reader",), False),
    ],
)
def test_gate_table(method: str, path: str, roles: tuple[str, ...], allowed: bool) -> None:
    assert (policy.refused(method, path, roles) is None) is allowed


@pytest.mark.parametrize(
    ("method", "path", "body", "rule"),
    [
        ("PUT", "/volume/v3/0123456789abcdef0123456789abcdef/volumes/v", None, "volume:update"),
        ("PUT", "/volume/v3/volumes/v/metadata", None, "volume:update_volume_metadata"),
        ("POST", "/volume/v3/attachments", None, "volume:attachment_create"),
        ("POST", "/compute/v2.1/servers/s/action", b'{"os-stop": null}', "os_compute_api:servers:stop"),
        ("POST", "/compute/v2.1/servers/s/action", b"not json", "os_compute_api:servers:action"),
        ("DELETE", "/compute/v2.1/servers/s/tags", None, "os_compute_api:os-server-tags:delete_all"),
        ("PUT", "/compute/v2.1/servers/s/tags/t", None, "os_compute_api:os-server-tags:update"),
        ("POST", "/compute/v2.1/servers/s/os-interface", None, "os_compute_api:os-attach-interfaces:create"),
        ("PUT", "/compute/v2.1/os-quota-sets/p", None, "os_compute_api:os-quota-sets:update"),
    ],
)
def test_rule_names(method: str, path: str, body: bytes | None, rule: str) -> None:
    denied = policy.refused(method, path, ("reader",), body)
    assert denied is not None and denied.message == f"Policy doesn't allow {rule} to be performed."

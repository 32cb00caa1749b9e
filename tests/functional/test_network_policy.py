"""Refuse, don't drop (issue 16, item 8): Neutron's admin-only network attributes are a 403 for
members (the match rule as the message), and port security is stored, shown and honoured."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Api

N = "/network/v2.0"


def _policy_403(r: httpx.Response, message: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {"NeutronError": {"type": "PolicyNotAuthorized", "message": message, "detail": ""}}, (
        r.text
    )


def _create(stack: Api, member: str, body: dict[str, Any], as_: str = "demo") -> dict[str, Any]:
    r = stack.post(f"{N}/{member.replace('_', '-')}s", json={member: body}, as_=as_)
    assert r.status_code == 201, r.text
    return r.json()[member]  # type: ignore[no-any-return]


def _names(stack: Api) -> list[str]:
    return [n["name"] for n in stack.get(f"{N}/networks").json()["networks"]]


def test_member_provider_attributes_are_403_not_dropped(stack: Api) -> None:
    before = _names(stack)
    r = stack.post(f"{N}/networks", json={"network": {"name": "p1", "provider:network_type": "vlan"}})
    _policy_403(
        r, "(rule:create_network and rule:create_network:provider:network_type) is disallowed by policy"
    )
    body = {
        "name": "p2",
        "provider:network_type": "vlan",
        "provider:physical_network": "physnet1",
        "provider:segmentation_id": 101,
    }
    _policy_403(
        stack.post(f"{N}/networks", json={"network": body}),
        "(((rule:create_network and rule:create_network:provider:network_type) and "
        "rule:create_network:provider:physical_network) and rule:create_network:provider:segmentation_id) "
        "is disallowed by policy",
    )
    _policy_403(
        stack.post(f"{N}/networks", json={"network": {"name": "p3", "shared": True}}),
        "(rule:create_network and rule:create_network:shared) is disallowed by policy",
    )
    _policy_403(
        stack.post(f"{N}/networks", json={"network": {"name": "p4", "router:external": True}}),
        "(rule:create_network and rule:create_network:router:external) is disallowed by policy",
    )
    assert _names(stack) == before  # nothing was created
    # an admin-only attribute at its default is not checked on create (Neutron)
    net = _create(stack, "network", {"name": "p5", "shared": False, "router:external": False})
    assert "provider:network_type" not in net  # get_network:provider:* is admin-only
    # on update any admin-only attribute present is checked, whatever its value
    _policy_403(
        stack.put(f"{N}/networks/{net['id']}", json={"network": {"provider:physical_network": "x"}}),
        "(rule:update_network and rule:update_network:provider:physical_network) is disallowed by policy",
    )
    _policy_403(
        stack.put(f"{N}/networks/{net['id']}", json={"network": {"shared": False}}),
        "(rule:update_network and rule:update_network:shared) is disallowed by policy",
    )
    # with a member-settable attribute beside it, the match rule names both
    _policy_403(
        stack.put(
            f"{N}/networks/{net['id']}",
            json={"network": {"provider:network_type": "flat", "port_security_enabled": False}},
        ),
        "((rule:update_network and rule:update_network:provider:network_type) and "
        "rule:update_network:port_security_enabled) is disallowed by policy",
    )
    assert stack.get(f"{N}/networks/{net['id']}").json()["network"]["port_security_enabled"] is True


def test_admin_provider_attributes_are_stored_and_shown_to_admins_only(stack: Api) -> None:
    body = {
        "name": "phys",
        "shared": True,
        "provider:network_type": "vlan",
        "provider:physical_network": "physnet1",
        "provider:segmentation_id": 3000000000,
    }
    net = _create(stack, "network", body, as_="admin")
    wanted = {k: v for k, v in body.items() if k.startswith("provider:")}
    assert {k: net[k] for k in wanted} == wanted
    shown = stack.get(f"{N}/networks/{net['id']}", as_="admin").json()["network"]
    assert {k: shown[k] for k in wanted} == wanted
    listed = [n for n in stack.get(f"{N}/networks", as_="admin").json()["networks"] if n["id"] == net["id"]]
    assert {k: listed[0][k] for k in wanted} == wanted
    r = stack.put(f"{N}/networks/{net['id']}", json={"network": {"provider:segmentation_id": 7}}, as_="admin")
    assert r.status_code == 200 and r.json()["network"]["provider:segmentation_id"] == 7
    seen = stack.get(f"{N}/networks/{net['id']}").json()["network"]  # the member sees the shared network
    assert not [k for k in seen if k.startswith("provider:")]


def test_network_port_security_is_stored_and_inherited(stack: Api) -> None:
    net = _create(stack, "network", {"name": "insecure", "port_security_enabled": False})
    assert net["port_security_enabled"] is False
    assert stack.get(f"{N}/networks/{net['id']}").json()["network"]["port_security_enabled"] is False
    _create(stack, "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24"})
    port = _create(stack, "port", {"network_id": net["id"]})
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    sg = _create(stack, "security_group", {"name": "web"})
    r = stack.post(f"{N}/ports", json={"port": {"network_id": net["id"], "security_groups": [sg["id"]]}})
    assert r.status_code == 400, r.text
    assert r.json()["NeutronError"]["type"] == "PortSecurityAndIPRequiredForSecurityGroups"
    r = stack.put(f"{N}/ports/{port['id']}", json={"port": {"security_groups": [sg["id"]]}})
    assert r.status_code == 409, r.text
    assert r.json()["NeutronError"]["type"] == "PortSecurityAndIPRequiredForSecurityGroups"
    # a port may still ask for port security on such a network; then it gets the default group
    secure = _create(stack, "port", {"network_id": net["id"], "port_security_enabled": True})
    assert secure["port_security_enabled"] is True and len(secure["security_groups"]) == 1
    # the network's flag changes; ports made before keep theirs
    r = stack.put(f"{N}/networks/{net['id']}", json={"network": {"port_security_enabled": True}})
    assert r.status_code == 200 and r.json()["network"]["port_security_enabled"] is True
    assert stack.get(f"{N}/ports/{port['id']}").json()["port"]["port_security_enabled"] is False
    assert _create(stack, "port", {"network_id": net["id"]})["port_security_enabled"] is True


def test_port_security_disabled_port(stack: Api) -> None:
    net = _create(stack, "network", {"name": "n"})
    _create(stack, "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.78.0.0/24"})
    port = _create(stack, "port", {"network_id": net["id"], "port_security_enabled": False})
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    shown = stack.get(f"{N}/ports/{port['id']}").json()["port"]
    assert shown["port_security_enabled"] is False
    grouped = _create(stack, "port", {"network_id": net["id"]})
    assert grouped["security_groups"]
    r = stack.put(f"{N}/ports/{grouped['id']}", json={"port": {"port_security_enabled": False}})
    assert r.status_code == 409, r.text
    r = stack.put(
        f"{N}/ports/{grouped['id']}", json={"port": {"port_security_enabled": False, "security_groups": []}}
    )
    assert r.status_code == 200 and r.json()["port"]["port_security_enabled"] is False


def test_port_security_on_another_projects_shared_network_is_403(stack: Api) -> None:
    net = _create(stack, "network", {"name": "shared", "shared": True}, as_="admin")
    _create(stack, "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": "10.79.0.0/24"}, as_="admin")
    r = stack.post(f"{N}/ports", json={"port": {"network_id": net["id"], "port_security_enabled": False}})
    _policy_403(r, "(rule:create_port and rule:create_port:port_security_enabled) is disallowed by policy")
    port = _create(stack, "port", {"network_id": net["id"]})
    r = stack.put(f"{N}/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    _policy_403(r, "(rule:update_port and rule:update_port:port_security_enabled) is disallowed by policy")


def test_member_creating_for_another_project_names_the_plain_rule(stack: Api) -> None:
    body = {"network": {"name": "theirs", "project_id": stack.ids["admin_project"]}}
    _policy_403(stack.post(f"{N}/networks", json=body), "rule:create_network is disallowed by policy")

"""Embedded Neutron v2.0 subset through HTTP: discovery, seeded networks, CRUD, IPAM,
security groups, quotas, isolation between projects, and the Neutron error envelope."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.conftest import Api

N = "/network/v2.0"


def _create(
    stack: Api, collection: str, resource: str, body: dict[str, Any], as_: str = "demo"
) -> dict[str, Any]:
    r = stack.post(f"{N}/{collection}", json={resource: body}, as_=as_)
    assert r.status_code == 201, r.text
    return r.json()[resource]  # type: ignore[no-any-return]


def _network_with_subnet(stack: Api, cidr: str = "10.9.0.0/29", as_: str = "demo") -> tuple[str, str]:
    net = _create(stack, "networks", "network", {"name": "n1"}, as_=as_)
    sub = _create(
        stack, "subnets", "subnet", {"network_id": net["id"], "ip_version": 4, "cidr": cidr}, as_=as_
    )
    return net["id"], sub["id"]


def _neutron_error(r: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    if kind:
        assert err["type"] == kind, err
    return err  # type: ignore[no-any-return]


def test_version_documents_and_extensions(stack: Api) -> None:
    r = stack.client.get("/network/")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v2.0"
    assert r.json()["versions"][0]["links"][0]["href"] == "http://testserver/network/v2.0/"
    r = stack.get(f"{N}/extensions")
    aliases = {e["alias"] for e in r.json()["extensions"]}
    assert {"security-group", "quotas", "external-net", "binding"} <= aliases
    assert stack.get(f"{N}/extensions/security-group").json()["extension"]["alias"] == "security-group"
    _neutron_error(stack.get(f"{N}/extensions/nope"), 404)
    token = stack.post(
        "/identity/v3/auth/tokens",
        as_=None,
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "demo", "domain": {"name": "Default"}, "password": "demo-secret"}
                    },
                },
                "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
            }
        },
    ).json()["token"]
    network = next(c for c in token["catalog"] if c["type"] == "network")
    assert network["endpoints"][0]["url"] == "http://testserver/network"


def test_requires_a_token(stack: Api) -> None:
    r = stack.client.get(f"{N}/networks")
    # keystonemiddleware answers before Neutron: Keystone's envelope, naming the Identity endpoint
    assert r.status_code == 401, r.text
    assert r.json() == {
        "error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }
    }
    assert r.headers["WWW-Authenticate"] == 'Keystone uri="http://testserver/identity"'


def test_seeded_networks_and_default_group(stack: Api) -> None:
    nets = stack.get(f"{N}/networks").json()["networks"]
    names = sorted(n["name"] for n in nets)
    assert names == ["private", "public"]
    public = next(n for n in nets if n["name"] == "public")
    assert public["router:external"] is True and public["project_id"] == stack.ids["admin_project"]
    private = next(n for n in nets if n["name"] == "private")
    assert private["project_id"] == stack.ids["demo_project"]
    subnets = stack.get(f"{N}/subnets", params={"network_id": private["id"]}).json()["subnets"]
    assert sorted(s["cidr"] for s in subnets) == ["10.0.0.0/26", "fd00::/64"]
    v4 = next(s for s in subnets if s["ip_version"] == 4)
    assert v4["gateway_ip"] == "10.0.0.1"
    assert v4["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.62"}]
    groups = stack.get(f"{N}/security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    rules = groups[0]["security_group_rules"]
    assert sorted((r["direction"], r["ethertype"], r["remote_group_id"] is not None) for r in rules) == [
        ("egress", "IPv4", False),
        ("egress", "IPv6", False),
        ("ingress", "IPv4", True),
        ("ingress", "IPv6", True),
    ]
    # admin sees every project's private network
    admin_names = sorted(n["name"] for n in stack.get(f"{N}/networks", as_="admin").json()["networks"])
    assert admin_names == ["private", "private", "public"]


def test_a_tenant_network_gets_the_vxlan_mtu_an_external_one_the_underlays(stack: Api) -> None:
    """Neutron on a 1500-byte underlay: 1450 for a tenant network (its hosts are joined by VXLAN,
    50 bytes of headers), 1500 for the external one; an explicit mtu is kept (issue 20)."""
    assert _create(stack, "networks", "network", {"name": "t1"})["mtu"] == 1450
    assert _create(stack, "networks", "network", {"name": "t2", "mtu": 1300})["mtu"] == 1300
    public = stack.get(f"{N}/networks", params={"name": "public"}).json()["networks"]
    assert [n["mtu"] for n in public] == [1500]


def test_network_crud_and_name_lookup_is_404(stack: Api) -> None:
    net = _create(stack, "networks", "network", {"name": "n1", "description": "d"})
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True and net["shared"] is False
    assert net["project_id"] == net["tenant_id"] == stack.ids["demo_project"]
    _neutron_error(stack.get(f"{N}/networks/n1"), 404, "NetworkNotFound")
    found = stack.get(f"{N}/networks", params={"name": "n1"}).json()["networks"]
    assert [n["id"] for n in found] == [net["id"]]
    r = stack.put(f"{N}/networks/{net['id']}", json={"network": {"name": "n2", "mtu": 1400}})
    assert r.status_code == 200 and r.json()["network"]["name"] == "n2" and r.json()["network"]["mtu"] == 1400
    shown = stack.get(f"{N}/networks/{net['id']}", params={"fields": ["id", "name"]}).json()["network"]
    assert shown == {"id": net["id"], "name": "n2"}
    assert stack.delete(f"{N}/networks/{net['id']}").status_code == 204
    _neutron_error(stack.get(f"{N}/networks/{net['id']}"), 404, "NetworkNotFound")


def test_list_filters_sorting_and_paging(stack: Api) -> None:
    for name in ("b", "a", "c"):
        _create(stack, "networks", "network", {"name": name, "admin_state_up": name != "c"})
    r = stack.get(f"{N}/networks", params={"admin_state_up": "false"})
    assert [n["name"] for n in r.json()["networks"]] == ["c"]
    r = stack.get(f"{N}/networks", params=[("name", "a"), ("name", "b")])
    assert sorted(n["name"] for n in r.json()["networks"]) == ["a", "b"]
    r = stack.get(f"{N}/networks", params={"sort_key": "name", "sort_dir": "desc", "fields": "name"})
    assert [n["name"] for n in r.json()["networks"]] == ["public", "private", "c", "b", "a"]
    page = stack.get(f"{N}/networks", params={"sort_key": "name", "sort_dir": "asc", "limit": 2}).json()
    assert [n["name"] for n in page["networks"]] == ["a", "b"]
    nxt = next(link for link in page["networks_links"] if link["rel"] == "next")["href"]
    page2 = stack.get(nxt.replace("http://testserver", "")).json()
    assert [n["name"] for n in page2["networks"]] == ["c", "private"]
    _neutron_error(stack.get(f"{N}/networks", params={"limit": "x"}), 400)
    _neutron_error(stack.get(f"{N}/networks", params={"sort_key": "nope", "sort_dir": "asc"}), 400)
    _neutron_error(stack.get(f"{N}/networks", params={"marker": "missing"}), 404)


def test_ipam_first_free_and_reuse_after_release(stack: Api) -> None:
    net_id, sub_id = _network_with_subnet(stack, "10.9.0.0/29")  # pool .2-.6
    ips = []
    for i in range(5):
        port = _create(stack, "ports", "port", {"network_id": net_id, "name": f"p{i}"})
        assert port["mac_address"].startswith("fa:16:3e:")
        assert port["status"] == "DOWN"
        ips.append((port["id"], port["fixed_ips"][0]["ip_address"]))
    assert [ip for _, ip in ips] == [f"10.9.0.{i}" for i in range(2, 7)]
    r = stack.post(f"{N}/ports", json={"port": {"network_id": net_id}})
    _neutron_error(r, 409, "IpAddressGenerationFailure")
    assert stack.delete(f"{N}/ports/{ips[1][0]}").status_code == 204
    again = _create(stack, "ports", "port", {"network_id": net_id})
    assert again["fixed_ips"] == [{"subnet_id": sub_id, "ip_address": "10.9.0.3"}]


def test_fixed_ip_requests(stack: Api) -> None:
    net_id, sub_id = _network_with_subnet(stack, "10.9.0.0/24")
    port = _create(stack, "ports", "port", {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.50"}]})
    assert port["fixed_ips"] == [{"subnet_id": sub_id, "ip_address": "10.9.0.50"}]
    r = stack.post(
        f"{N}/ports", json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.50"}]}}
    )
    _neutron_error(r, 409, "IpAddressAlreadyAllocated")
    r = stack.post(
        f"{N}/ports", json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "10.8.0.5"}]}}
    )
    _neutron_error(r, 400)
    r = stack.post(f"{N}/ports", json={"port": {"network_id": net_id, "fixed_ips": [{"subnet_id": "nope"}]}})
    _neutron_error(r, 400)
    filtered = stack.get(f"{N}/ports", params={"fixed_ips": "ip_address=10.9.0.50"}).json()["ports"]
    assert [p["id"] for p in filtered] == [port["id"]]
    # changing the address frees the old one
    r = stack.put(f"{N}/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.9.0.60"}]}})
    assert r.status_code == 200 and r.json()["port"]["fixed_ips"][0]["ip_address"] == "10.9.0.60"
    _create(stack, "ports", "port", {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.50"}]})


def test_dual_stack_port_on_seeded_private_network(stack: Api) -> None:
    private = stack.get(f"{N}/networks", params={"name": "private"}).json()["networks"][0]
    port = _create(stack, "ports", "port", {"network_id": private["id"]})
    by_version = {(":" in ip["ip_address"]): ip["ip_address"] for ip in port["fixed_ips"]}
    assert by_version[False] == "10.0.0.2"
    v6 = by_version[True]
    # SLAAC address: the /64 prefix and the MAC's EUI-64 (compared as addresses: the text form drops
    # leading zeros, so a MAC ending in 08:7d gives ...:87d)
    octets = [int(x, 16) for x in port["mac_address"].split(":")]
    octets[0] ^= 0x02
    eui64 = int.from_bytes(bytes(octets[:3] + [0xFF, 0xFE] + octets[3:]), "big")
    assert ipaddress.IPv6Address(v6) == ipaddress.IPv6Address(int(ipaddress.IPv6Address("fd00::")) | eui64)
    default = stack.get(f"{N}/security-groups", params={"name": "default"}).json()["security_groups"][0]
    assert port["security_groups"] == [default["id"]]


def test_subnet_validation(stack: Api) -> None:
    net = _create(stack, "networks", "network", {"name": "n"})
    bad = [
        {"network_id": net["id"], "ip_version": 4, "cidr": "not-a-cidr"},
        {"network_id": net["id"], "ip_version": 6, "cidr": "10.0.0.0/24"},
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.5/24"},
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": "10.1.0.1"},
        {
            "network_id": net["id"],
            "ip_version": 4,
            "cidr": "10.0.0.0/24",
            "allocation_pools": [{"start": "10.0.0.200", "end": "10.0.1.5"}],
        },
        {"network_id": net["id"], "ip_version": 6, "cidr": "fd01::/80", "ipv6_address_mode": "slaac"},
        {"network_id": net["id"], "ip_version": 5, "cidr": "10.0.0.0/24"},
        {"network_id": net["id"], "cidr": "10.0.0.0/24"},
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24", "bogus": 1},
    ]
    for body in bad:
        _neutron_error(stack.post(f"{N}/subnets", json={"subnet": body}), 400)
    _create(
        stack,
        "subnets",
        "subnet",
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": None},
    )
    overlap = {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.128/25"}
    _neutron_error(stack.post(f"{N}/subnets", json={"subnet": overlap}), 400)
    missing = {"network_id": "nope", "ip_version": 4, "cidr": "10.0.0.0/24"}
    _neutron_error(stack.post(f"{N}/subnets", json={"subnet": missing}), 404, "NetworkNotFound")


def test_network_and_subnet_in_use(stack: Api) -> None:
    net_id, sub_id = _network_with_subnet(stack)
    port = _create(stack, "ports", "port", {"network_id": net_id})
    _neutron_error(stack.delete(f"{N}/subnets/{sub_id}"), 409, "SubnetInUse")
    _neutron_error(stack.delete(f"{N}/networks/{net_id}"), 409, "NetworkInUse")
    assert stack.delete(f"{N}/ports/{port['id']}").status_code == 204
    assert stack.delete(f"{N}/networks/{net_id}").status_code == 204
    _neutron_error(stack.get(f"{N}/subnets/{sub_id}"), 404, "SubnetNotFound")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"network": "x"}',
        b'{"network": {"name": 5}}',
        b'{"network": {"name": "' + b"x" * 300 + b'"}}',
        b'{"network": {"admin_state_up": "maybe"}}',
        b'{"network": {"mtu": "big"}}',
        b'{"network": {"unknown": 1}}',
        b'{"network": {"mtu": 99999999999999999999999}}',
    ],
)
def test_bad_network_bodies_are_400(stack: Api, body: bytes) -> None:
    r = stack.post(f"{N}/networks", content=body, headers={"Content-Type": "application/json"})
    _neutron_error(r, 400)


def test_bad_port_and_rule_bodies_are_4xx_never_500(stack: Api) -> None:
    net_id, _ = _network_with_subnet(stack)
    bodies = [
        {"port": {"network_id": net_id, "fixed_ips": "x"}},
        {"port": {"network_id": net_id, "fixed_ips": [5]}},
        {"port": {"network_id": net_id, "mac_address": "zz"}},
        {"port": {"network_id": net_id, "security_groups": 3}},
        {"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "nope"}]}},
        {"port": {}},
        {"port": {"network_id": net_id, "binding:vnic_type": "weird"}},
    ]
    for body in bodies:
        r = stack.post(f"{N}/ports", json=body)
        assert r.status_code == 400, (body, r.text)
    r = stack.post(f"{N}/ports", json={"port": {"network_id": net_id, "security_groups": ["missing"]}})
    _neutron_error(r, 404, "SecurityGroupNotFound")


def test_isolation_between_projects(stack: Api) -> None:
    net_id, sub_id = _network_with_subnet(stack, as_="demo")
    port = _create(stack, "ports", "port", {"network_id": net_id})
    admin_net = _create(stack, "networks", "network", {"name": "adminonly"}, as_="admin")
    assert "adminonly" not in [n["name"] for n in stack.get(f"{N}/networks").json()["networks"]]
    _neutron_error(stack.get(f"{N}/networks/{admin_net['id']}"), 404, "NetworkNotFound")
    _neutron_error(stack.delete(f"{N}/networks/{admin_net['id']}"), 404)
    r = stack.post(f"{N}/ports", json={"port": {"network_id": admin_net["id"]}})
    _neutron_error(r, 404, "NetworkNotFound")
    # admin sees and may manage demo's resources
    assert stack.get(f"{N}/ports/{port['id']}", as_="admin").status_code == 200
    admin_groups = stack.get(f"{N}/security-groups", as_="admin").json()["security_groups"]
    demo_groups = stack.get(f"{N}/security-groups").json()["security_groups"]
    assert len(demo_groups) == 1 and len(admin_groups) >= 2
    admin_default = next(g for g in admin_groups if g["project_id"] == stack.ids["admin_project"])
    _neutron_error(stack.get(f"{N}/security-groups/{admin_default['id']}"), 404, "SecurityGroupNotFound")
    # the external network is visible but not writable by a member
    public = stack.get(f"{N}/networks", params={"name": "public"}).json()["networks"][0]
    _neutron_error(stack.put(f"{N}/networks/{public['id']}", json={"network": {"name": "x"}}), 403)
    _neutron_error(stack.post(f"{N}/networks", json={"network": {"name": "s", "shared": True}}), 403)


def test_security_groups_and_rules(stack: Api) -> None:
    sg = _create(stack, "security-groups", "security_group", {"name": "sg1", "description": "web"})
    assert [(r["direction"], r["ethertype"]) for r in sg["security_group_rules"]] == [
        ("egress", "IPv4"),
        ("egress", "IPv6"),
    ]
    rule = _create(
        stack,
        "security-group-rules",
        "security_group_rule",
        {
            "security_group_id": sg["id"],
            "direction": "ingress",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "remote_ip_prefix": "0.0.0.0/0",
            "ethertype": "IPv4",
        },
    )
    assert rule["protocol"] == "tcp" and rule["port_range_min"] == 22
    dup = {
        "security_group_id": sg["id"],
        "direction": "ingress",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
    }
    _neutron_error(
        stack.post(f"{N}/security-group-rules", json={"security_group_rule": dup}),
        409,
        "SecurityGroupRuleExists",
    )
    bad_rules = [
        {"direction": "sideways"},
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 30, "port_range_max": 20},
        {"direction": "ingress", "port_range_min": 22},
        {"direction": "ingress", "protocol": "gre", "port_range_min": 1},
        {"direction": "ingress", "protocol": "bogus"},
        {"direction": "ingress", "remote_ip_prefix": "::/0"},
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 70000},
    ]
    for extra in bad_rules:
        body = {"security_group_rule": dict(extra, security_group_id=sg["id"])}
        _neutron_error(stack.post(f"{N}/security-group-rules", json=body), 400)
    shown = stack.get(f"{N}/security-groups/{sg['id']}").json()["security_group"]
    assert len(shown["security_group_rules"]) == 3
    assert stack.delete(f"{N}/security-group-rules/{rule['id']}").status_code == 204
    _neutron_error(stack.get(f"{N}/security-group-rules/{rule['id']}"), 404, "SecurityGroupRuleNotFound")
    _neutron_error(stack.post(f"{N}/security-groups", json={"security_group": {"name": "default"}}), 409)
    default = stack.get(f"{N}/security-groups", params={"name": "default"}).json()["security_groups"][0]
    _neutron_error(stack.delete(f"{N}/security-groups/{default['id']}"), 409)


def test_rule_changes_move_the_group_revision(stack: Api) -> None:
    sg = _create(stack, "security-groups", "security_group", {"name": "sg-rev"})
    rule = _create(
        stack,
        "security-group-rules",
        "security_group_rule",
        {
            "security_group_id": sg["id"],
            "direction": "ingress",
            "protocol": "udp",
            "port_range_min": 53,
            "port_range_max": 53,
        },
    )
    added = stack.get(f"{N}/security-groups/{sg['id']}").json()["security_group"]["revision_number"]
    assert added > sg["revision_number"]
    assert stack.delete(f"{N}/security-group-rules/{rule['id']}").status_code == 204
    removed = stack.get(f"{N}/security-groups/{sg['id']}").json()["security_group"]["revision_number"]
    assert removed > added
    net_id, _ = _network_with_subnet(stack)
    port = _create(stack, "ports", "port", {"network_id": net_id, "security_groups": [sg["id"]]})
    assert port["security_groups"] == [sg["id"]]
    _neutron_error(stack.delete(f"{N}/security-groups/{sg['id']}"), 409, "SecurityGroupInUse")
    assert stack.put(f"{N}/ports/{port['id']}", json={"port": {"security_groups": []}}).status_code == 200
    assert stack.delete(f"{N}/security-groups/{sg['id']}").status_code == 204


def test_default_group_created_lazily_for_a_new_project(stack: Api) -> None:
    pid = stack.post(
        "/identity/v3/projects", as_="admin", json={"project": {"name": "p2", "domain_id": "default"}}
    ).json()["project"]["id"]
    groups = stack.get(f"{N}/security-groups", as_="admin", params={"project_id": pid}).json()[
        "security_groups"
    ]
    assert groups == []
    net = _create(stack, "networks", "network", {"name": "p2net", "project_id": pid}, as_="admin")
    _create(
        stack,
        "subnets",
        "subnet",
        {"network_id": net["id"], "ip_version": 4, "cidr": "10.5.0.0/24"},
        as_="admin",
    )
    port = _create(stack, "ports", "port", {"network_id": net["id"], "project_id": pid}, as_="admin")
    groups = stack.get(f"{N}/security-groups", as_="admin", params={"project_id": pid}).json()[
        "security_groups"
    ]
    assert [g["name"] for g in groups] == ["default"] and port["security_groups"] == [groups[0]["id"]]


def test_quotas_show_update_and_409(stack: Api) -> None:
    pid = stack.ids["demo_project"]
    quota = stack.get(f"{N}/quotas/{pid}").json()["quota"]
    assert quota == {
        "network": 100,
        "subnet": 100,
        "port": 500,
        "security_group": 10,
        "security_group_rule": 100,
        "router": 10,
        "floatingip": 50,
    }
    details = stack.get(f"{N}/quotas/{pid}/details").json()["quota"]
    assert details["network"]["used"] == 1 and details["security_group"]["used"] == 1
    _neutron_error(stack.put(f"{N}/quotas/{pid}", json={"quota": {"network": 2}}), 403)
    _neutron_error(stack.get(f"{N}/quotas/{stack.ids['admin_project']}"), 403)
    r = stack.put(f"{N}/quotas/{pid}", as_="admin", json={"quota": {"network": 2, "port": 1}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 2
    _neutron_error(stack.put(f"{N}/quotas/{pid}", as_="admin", json={"quota": {"network": "x"}}), 400)
    _neutron_error(stack.put(f"{N}/quotas/{pid}", as_="admin", json={"quota": {"nope": 1}}), 400)
    _create(stack, "networks", "network", {"name": "second"})
    err = _neutron_error(stack.post(f"{N}/networks", json={"network": {"name": "third"}}), 409, "OverQuota")
    assert err["message"] == "Quota exceeded for resources: ['network']."
    private = stack.get(f"{N}/networks", params={"name": "private"}).json()["networks"][0]
    _create(stack, "ports", "port", {"network_id": private["id"]})
    _neutron_error(stack.post(f"{N}/ports", json={"port": {"network_id": private["id"]}}), 409, "OverQuota")
    assert stack.delete(f"{N}/quotas/{pid}", as_="admin").status_code == 204
    assert stack.get(f"{N}/quotas/{pid}").json()["quota"]["network"] == 100
    _create(stack, "networks", "network", {"name": "third"})


# The Python contract the compute side uses (nova-create-pipeline.md §2.2 step 5.3-5.4).


def test_compute_contract_validate_requested_networks(stack: Api) -> None:
    from novalite.errors import BadRequest, Conflict, Forbidden
    from novalite.network import service as network

    demo, admin = stack.ids["demo_project"], stack.ids["admin_project"]
    db = stack.runtime.db  # type: ignore[attr-defined]
    with db.session() as s:
        assert [n.name for n in network.list_available_networks(s, demo)] == ["private"]
        assert network.validate_requested_networks(s, project_id=demo, requested=None, max_count=3) == 3
        assert network.validate_requested_networks(s, project_id=demo, requested="none", max_count=3) == 3
        private = network.list_available_networks(s, demo)[0]
        req = [network.RequestedNetwork(network_id=private.id)]
        assert network.validate_requested_networks(s, project_id=demo, requested=req, max_count=2) == 2
        with pytest.raises(BadRequest) as exc:
            network.validate_requested_networks(
                s, project_id=demo, requested=[network.RequestedNetwork(network_id="missing")], max_count=1
            )
        assert exc.value.kind == "NetworkNotFound"
        admin_private = next(n for n in network.list_available_networks(s, admin) if n.name == "private")
        with pytest.raises(BadRequest):  # another project's private network is not visible
            network.validate_requested_networks(
                s,
                project_id=demo,
                requested=[network.RequestedNetwork(network_id=admin_private.id)],
                max_count=1,
            )
    net_id, _ = _network_with_subnet(stack)
    with db.session() as s:
        with pytest.raises(Conflict) as conflict:
            network.validate_requested_networks(s, project_id=demo, requested="auto", max_count=1)
        assert conflict.value.kind == "NetworkAmbiguous"
    empty = _create(stack, "networks", "network", {"name": "empty"})
    with db.session() as s:
        with pytest.raises(BadRequest) as exc:
            network.validate_requested_networks(
                s, project_id=demo, requested=[network.RequestedNetwork(network_id=empty["id"])], max_count=1
            )
        assert exc.value.kind == "NetworkRequiresSubnet"
    stack.put(f"{N}/quotas/{demo}", as_="admin", json={"quota": {"port": 3}})
    with db.session() as s:  # 3 ports free, 2 per instance -> 1 instance
        both = [network.RequestedNetwork(network_id=net_id), network.RequestedNetwork(network_id=private.id)]
        assert network.validate_requested_networks(s, project_id=demo, requested=both, max_count=5) == 1
    stack.put(f"{N}/quotas/{demo}", as_="admin", json={"quota": {"port": -1}})
    for _ in range(4):
        _create(stack, "ports", "port", {"network_id": net_id})
    stack.put(f"{N}/quotas/{demo}", as_="admin", json={"quota": {"port": 3}})
    with db.session() as s, pytest.raises(Forbidden) as over:
        network.validate_requested_networks(s, project_id=demo, requested=both, max_count=1)
    assert over.value.kind == "PortLimitExceeded"


def test_compute_contract_ports_and_security_groups(stack: Api) -> None:
    from novalite.errors import BadRequest, Conflict
    from novalite.network import service as network

    demo = stack.ids["demo_project"]
    db = stack.runtime.db  # type: ignore[attr-defined]
    net_id, sub_id = _network_with_subnet(stack, "10.9.0.0/29")
    sg = _create(stack, "security-groups", "security_group", {"name": "web"})
    _create(stack, "security-groups", "security_group", {"name": "dup"})
    _create(stack, "security-groups", "security_group", {"name": "dup"})
    with db.session() as s:
        assert network.resolve_security_group(s, demo, "web") == sg["id"]
        assert network.resolve_security_group(s, demo, sg["id"]) == sg["id"]
        with pytest.raises(BadRequest) as missing:
            network.resolve_security_group(s, demo, "nope")
        assert missing.value.kind == "SecurityGroupNotFound"
        with pytest.raises(Conflict) as dup:
            network.resolve_security_group(s, demo, "dup")
        assert dup.value.kind == "NoUniqueMatch"
        port = network.allocate_port(
            s,
            project_id=demo,
            network_id=net_id,
            device_id="vm-1",
            device_owner="compute:nova",
            host="host1",
            security_group_ids=[sg["id"]],
        )
        assert port.fixed_ips[0].ip_address == "10.9.0.2" and port.status == "ACTIVE"
        assert port.security_group_ids == (sg["id"],) and port.network_name == "n1"
        fixed = network.allocate_port(
            s,
            project_id=demo,
            network_id=net_id,
            device_id="vm-1",
            device_owner="compute:nova",
            host="host1",
            fixed_ip="10.9.0.5",
        )
        assert fixed.fixed_ips[0].ip_address == "10.9.0.5"
        assert network.instance_addresses(s, "vm-1")["n1"][0]["addr"] == "10.9.0.2"
    user_port = _create(stack, "ports", "port", {"network_id": net_id, "name": "mine"})
    with db.session() as s:
        with pytest.raises(BadRequest) as in_use:
            network.validate_requested_networks(
                s,
                project_id=demo,
                requested=[network.RequestedNetwork(network_id=net_id, fixed_ip="10.9.0.5")],
                max_count=1,
            )
        assert in_use.value.kind == "FixedIpAlreadyInUse"
        bound = network.bind_port(s, user_port["id"], host="host1", device_id="vm-1")
        assert bound.device_id == "vm-1"
        with pytest.raises(Conflict) as port_in_use:
            network.validate_requested_networks(
                s, project_id=demo, requested=[network.RequestedNetwork(port_id=user_port["id"])], max_count=1
            )
        assert port_in_use.value.kind == "PortInUse"
        released = network.release_ports_for_device(s, "vm-1", keep=[user_port["id"]])
        assert len(released) == 3
        assert network.release_ports_for_device(s, "vm-2") == []
    kept = stack.get(f"{N}/ports/{user_port['id']}").json()["port"]
    assert kept["device_id"] == "" and kept["fixed_ips"][0]["ip_address"] == "10.9.0.3"
    reused = _create(stack, "ports", "port", {"network_id": net_id})
    assert reused["fixed_ips"][0]["ip_address"] == "10.9.0.2"
    with db.session() as s:
        assert network.get_port(s, user_port["id"]) is not None
        assert network.get_network(s, demo, net_id) is not None
        assert network.get_network(s, demo, "missing") is None


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_concurrent_allocations_never_share_an_address(stack_factory: Any, postgres: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from novalite.network import service as network

    api = stack_factory(postgres=postgres)
    demo = api.ids["demo_project"]
    net_id, _ = _network_with_subnet(api, "10.9.0.0/28")  # 13 addresses in the pool
    db = api.runtime.db

    def allocate(i: int) -> str:
        with db.session() as s:
            port = network.allocate_port(
                s,
                project_id=demo,
                network_id=net_id,
                device_id=f"vm-{i}",
                device_owner="compute:nova",
                host="h",
            )
            return port.fixed_ips[0].ip_address

    with ThreadPoolExecutor(max_workers=6) as pool:
        addresses = list(pool.map(allocate, range(12)))
    assert len(set(addresses)) == 12
    assert set(addresses) <= {f"10.9.0.{i}" for i in range(2, 15)}
    groups = api.get(f"{N}/security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]


def test_bulk_create_is_all_or_nothing(stack: Api) -> None:
    net_id, _ = _network_with_subnet(stack, "10.9.0.0/24")
    r = stack.post(
        f"{N}/ports",
        json={"ports": [{"network_id": net_id, "name": "b1"}, {"network_id": net_id, "name": "b2"}]},
    )
    assert r.status_code == 201, r.text
    assert [p["name"] for p in r.json()["ports"]] == ["b1", "b2"]
    r = stack.post(
        f"{N}/ports",
        json={"ports": [{"network_id": net_id, "name": "b3"}, {"network_id": "missing", "name": "b4"}]},
    )
    _neutron_error(r, 404, "NetworkNotFound")
    names = [p["name"] for p in stack.get(f"{N}/ports", params={"network_id": net_id}).json()["ports"]]
    assert names == ["b1", "b2"]
    _neutron_error(stack.post(f"{N}/networks", json={"networks": []}), 400)
    r = stack.post(f"{N}/networks", json={"networks": [{"name": "x1"}, {"name": "x2"}]})
    assert r.status_code == 201 and len(r.json()["networks"]) == 2


def test_port_filter_by_ip_substring(stack: Api) -> None:
    net_id, _ = _network_with_subnet(stack, "10.9.0.0/24")
    port = _create(
        stack, "ports", "port", {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.123"}]}
    )
    _create(stack, "ports", "port", {"network_id": net_id})
    found = stack.get(f"{N}/ports", params={"fixed_ips": "ip_address_substr=0.12"}).json()["ports"]
    assert [p["id"] for p in found] == [port["id"]]


def test_allowed_address_pairs_and_extra_dhcp_options(stack: Api) -> None:
    net_id, _ = _network_with_subnet(stack, "10.9.0.0/24")
    opts = [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "tftp-server", "opt_value": "10.1.1.1"},
    ]
    port = _create(
        stack,
        "ports",
        "port",
        {
            "network_id": net_id,
            "extra_dhcp_opts": opts,
            "allowed_address_pairs": [{"ip_address": "10.9.0.200/30"}],
        },
    )
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.9.0.200/30", "mac_address": port["mac_address"]}
    ]
    assert {(o["opt_name"], o["opt_value"]) for o in port["extra_dhcp_opts"]} == {
        ("bootfile-name", "pxelinux.0"),
        ("tftp-server", "10.1.1.1"),
    }
    r = stack.put(
        f"{N}/ports/{port['id']}",
        json={
            "port": {
                "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": None}],
                "allowed_address_pairs": [],
            }
        },
    )
    assert r.status_code == 200
    assert [o["opt_name"] for o in r.json()["port"]["extra_dhcp_opts"]] == ["bootfile-name"]
    assert r.json()["port"]["allowed_address_pairs"] == []
    bad = {"network_id": net_id, "allowed_address_pairs": [{"ip_address": "nope"}]}
    _neutron_error(stack.post(f"{N}/ports", json={"port": bad}), 400)
    insecure = {
        "network_id": net_id,
        "port_security_enabled": False,
        "security_groups": [],
        "allowed_address_pairs": [{"ip_address": "10.9.0.9"}],
    }
    _neutron_error(stack.post(f"{N}/ports", json={"port": insecure}), 409)


def test_rule_port_messages_follow_neutron(stack: Api) -> None:
    sg = _create(stack, "security-groups", "security_group", {"name": "ports"})
    cases = [
        ("tcp", -16, 80, "Invalid value for port -16"),
        ("tcp", 80, 79, "port_range_min must be <= port_range_max"),
        ("tcp", 80, 65536, "Invalid value for port 65536"),
        ("tcp", None, 6, "port_range_min must be <= port_range_max"),
        ("icmp", 1, 256, "Invalid value for ICMP code"),
        ("icmp", None, 6, "ICMP type (port-range-min) is missing"),
        ("icmp", 300, 1, "Invalid value for ICMP type"),
    ]
    for protocol, low, high, message in cases:
        body = {
            "security_group_rule": {
                "security_group_id": sg["id"],
                "direction": "ingress",
                "protocol": protocol,
                "port_range_min": low,
                "port_range_max": high,
            }
        }
        err = _neutron_error(stack.post(f"{N}/security-group-rules", json=body), 400)
        assert message in err["message"], (protocol, low, high, err)
    r = stack.put(f"{N}/security-groups/{sg['id']}", json={"security_group": {"name": "default"}})
    _neutron_error(r, 409)


def test_tags_on_networks_ports_and_groups(stack: Api) -> None:
    net_id, sub_id = _network_with_subnet(stack)
    r = stack.put(f"{N}/networks/{net_id}/tags", json={"tags": ["red", "blue"]})
    assert r.status_code == 200 and r.json() == {"tags": ["blue", "red"]}
    assert stack.put(f"{N}/networks/{net_id}/tags/green").status_code == 201
    assert stack.get(f"{N}/networks/{net_id}/tags/green").status_code == 204
    _neutron_error(stack.get(f"{N}/networks/{net_id}/tags/black"), 404)
    assert stack.get(f"{N}/networks/{net_id}").json()["network"]["tags"] == ["blue", "green", "red"]
    assert stack.delete(f"{N}/networks/{net_id}/tags/green").status_code == 204
    _neutron_error(stack.delete(f"{N}/networks/{net_id}/tags/green"), 404)
    other = _create(stack, "networks", "network", {"name": "other"})
    stack.put(f"{N}/networks/{other['id']}/tags", json={"tags": ["red"]})

    def names(**params: str) -> list[str]:
        return sorted(n["name"] for n in stack.get(f"{N}/networks", params=params).json()["networks"])

    assert names(tags="red,blue") == ["n1"]
    assert names(**{"tags-any": "blue,red"}) == ["n1", "other"]
    assert names(**{"not-tags": "red,blue"}) == ["other", "private", "public"]
    assert names(**{"not-tags-any": "red"}) == ["private", "public"]
    stack.put(f"{N}/subnets/{sub_id}/tags", json={"tags": ["s"]})
    assert stack.get(f"{N}/subnets/{sub_id}").json()["subnet"]["tags"] == ["s"]
    _neutron_error(stack.put(f"{N}/networks/{net_id}/tags", json={"tags": ["a,b"]}), 400)
    _neutron_error(stack.put(f"{N}/networks/{net_id}/tags", json={"tags": "x"}), 400)
    _neutron_error(stack.put(f"{N}/routers/{net_id}/tags", json={"tags": []}), 404)
    public = stack.get(f"{N}/networks", params={"name": "public"}).json()["networks"][0]
    _neutron_error(stack.put(f"{N}/networks/{public['id']}/tags/mine"), 403)
    assert stack.delete(f"{N}/networks/{net_id}/tags").status_code == 204
    assert stack.get(f"{N}/networks/{net_id}/tags").json() == {"tags": []}


def test_sorting_by_any_attribute_never_fails(stack: Api) -> None:
    _network_with_subnet(stack)
    for key in ("mtu", "subnets", "availability_zones", "shared", "description", "router:external"):
        for direction in ("asc", "desc"):
            r = stack.get(f"{N}/networks", params={"sort_key": key, "sort_dir": direction})
            assert r.status_code == 200, (key, r.text)
    for key in ("fixed_ips", "binding:profile", "security_groups"):
        assert stack.get(f"{N}/ports", params={"sort_key": key, "sort_dir": "asc"}).status_code == 200


def test_port_binding_is_admin_only(stack: Api) -> None:
    net_id, _ = _network_with_subnet(stack)
    _neutron_error(
        stack.post(f"{N}/ports", json={"port": {"network_id": net_id, "binding:host_id": "h1"}}), 403
    )
    port = _create(stack, "ports", "port", {"network_id": net_id})
    _neutron_error(stack.put(f"{N}/ports/{port['id']}", json={"port": {"binding:host_id": "h1"}}), 403)
    r = stack.put(
        f"{N}/ports/{port['id']}",
        as_="admin",
        json={"port": {"binding:host_id": "h1", "binding:profile": {"k": "v"}}},
    )
    assert r.status_code == 200
    bound = r.json()["port"]
    assert bound["binding:host_id"] == "h1" and bound["binding:profile"] == {"k": "v"}
    assert bound["status"] == "ACTIVE" and bound["binding:vif_type"] == "ovs"


def test_network_api_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(postgres=True)
    net_id, sub_id = _network_with_subnet(api, "10.9.0.0/29")
    first = _create(api, "ports", "port", {"network_id": net_id})
    second = _create(api, "ports", "port", {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.6"}]})
    assert (first["fixed_ips"][0]["ip_address"], second["fixed_ips"][0]["ip_address"]) == (
        "10.9.0.2",
        "10.9.0.6",
    )
    r = api.post(
        f"{N}/ports", json={"port": {"network_id": net_id, "fixed_ips": [{"ip_address": "10.9.0.6"}]}}
    )
    _neutron_error(r, 409, "IpAddressAlreadyAllocated")
    sg = _create(api, "security-groups", "security_group", {"name": "pg"})
    _create(
        api,
        "security-group-rules",
        "security_group_rule",
        {
            "security_group_id": sg["id"],
            "direction": "ingress",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
        },
    )
    assert api.put(f"{N}/networks/{net_id}/tags", json={"tags": ["pg"]}).json() == {"tags": ["pg"]}
    assert [n["id"] for n in api.get(f"{N}/networks", params={"tags": "pg"}).json()["networks"]] == [net_id]
    assert api.get(f"{N}/quotas/{api.ids['demo_project']}/details").json()["quota"]["port"]["used"] == 2
    for port in (first, second):
        assert api.delete(f"{N}/ports/{port['id']}").status_code == 204
    assert api.delete(f"{N}/networks/{net_id}").status_code == 204
    _neutron_error(api.get(f"{N}/subnets/{sub_id}"), 404)

"""The authorization table (issue 16): every route of every API, sent as each persona (no token, a
garbage token, a reader of project A, a member of project B, a member of A, an admin) against
real resources of project A, compared with what a current OpenStack cloud answers by default.
The expectation comes from the route's rule in api.policies:

* no token or a garbage one: 401, except the routes that need none (version documents, logging in);
* a role below the rule (a reader writing, a member on an admin API): refused, 403 on its own
  project's resources;
* a member of another project on A's resources (and on A's quota, user, key pair...): refused
  (Nova, Cinder, Neutron and Glance answer 404 where they hide it, 403 or 400 elsewhere);
* otherwise allowed: anything but 401/403 (a body this test does not fill in may be a 400).

The assertion the issue asks for: no persona that should be refused gets a 2xx. And no 500
anywhere. Writes go after reads and deletes last, so the targets are still there when read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from novalite.api.policies import TABLE, Check, Rule, app_routes
from tests.conftest import Api

PERSONAS = ("none", "garbage", "reader", "other", "member", "admin")
MV = "volume 3.60"
BELOW_MEMBER = (Check.MEMBER, Check.MANAGER, Check.SERVICE, Check.ADMIN)
# path parameters naming a resource (or the project) of A: another project's member is refused
OF_PROJECT_A = {
    "server_id",
    "image_id",
    "network_id",
    "port_id",
    "subnet_id",
    "group_id",
    "rule_id",
    "volume_id",
    "attachment_id",
    "snapshot_id",
    "backup_id",
    "resource_id",
    "project_id",
    "url_project_id",
    "user_id",
    "request_id",
    "router_id",
    "floatingip_id",
    "floating_ip_id",
    "network",
    "tenant_id",
}
# OWNER routes: who owns the target this test names (the member's key pair, user and token; A)
OWNERS = {
    "/compute/v2.1/os-keypairs/{name}": {"member"},
    "/identity/v3/users/{user_id}": {"member"},
    "/identity/v3/users/{user_id}/projects": {"member"},
    "/identity/v3/projects/{project_id}": {"member", "reader"},
    "/identity/v3/auth/tokens": {"member"},
}
# stricter than upstream (refused where OpenStack allows): not a security problem, listed here
STRICTER = {
    ("GET", "/placement/usages"): "admin-only in novalite; upstream a project's reader reads its own",
}


@dataclass
class World:
    api: Api
    ids: dict[str, str]


def _ok(r: httpx.Response, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201, 202, 204)), r.text
    return r.json() if r.content else None


def _user(api: Api, name: str, project: str, role: str) -> tuple[str, str]:
    user = _ok(
        api.post("/identity/v3/users", as_="admin", json={"user": {"name": name, "password": "pw-" + name}})
    )
    uid = user["user"]["id"]
    role_id = api.get(f"/identity/v3/roles?name={role}", as_="admin").json()["roles"][0]["id"]
    _ok(api.put(f"/identity/v3/projects/{project}/users/{uid}/roles/{role_id}", as_="admin"))
    return uid, role_id


def _world(api: Api) -> World:
    """Project A (demo) with one of each resource; a reader of A; project B with a member."""
    a = api.ids["demo_project"]
    b = _ok(api.post("/identity/v3/projects", as_="admin", json={"project": {"name": "authz-b"}}))["project"][
        "id"
    ]
    _user(api, "authz-reader", a, "reader")
    _, member_role = _user(api, "authz-other", b, "member")
    api.tokens["reader"] = api.token_for("authz-reader", "pw-authz-reader", "demo")
    api.tokens["other"] = api.token_for("authz-other", "pw-authz-other", "authz-b")
    api.tokens["member"] = api.tokens["demo"]
    api.tokens["garbage"] = "gAAAAABgarbage-token-that-decodes-to-nothing"
    ids: dict[str, str] = {"project_id": a, "url_project_id": a, "project_b": b, "role_id": member_role}
    me = api.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": api.tokens["demo"]}).json()
    ids["user_id"] = me["token"]["user"]["id"]
    ids["subject"] = api.token_for("demo", "demo-secret", "demo")  # a spare token of the member's
    image = api.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    ids["tiny_image"] = image
    # compute
    server = _ok(
        api.post(
            "/compute/v2.1/servers", json={"server": {"name": "a-vm", "imageRef": image, "flavorRef": "1"}}
        )
    )
    ids["server_id"] = server["server"]["id"]
    api.wait_for(
        f"/compute/v2.1/servers/{ids['server_id']}", lambda r: r.json()["server"]["status"] == "ACTIVE"
    )
    _ok(api.put(f"/compute/v2.1/servers/{ids['server_id']}/metadata/k1", json={"meta": {"k1": "v"}}))
    _ok(api.put(f"/compute/v2.1/servers/{ids['server_id']}/tags/t1", version="2.26"))
    actions = api.get(f"/compute/v2.1/servers/{ids['server_id']}/os-instance-actions").json()
    ids["request_id"] = actions["instanceActions"][0]["request_id"]
    flavor = {"flavor": {"name": "authz-f", "ram": 64, "vcpus": 1, "disk": 1}}
    ids["flavor_id"] = _ok(api.post("/compute/v2.1/flavors", as_="admin", json=flavor))["flavor"]["id"]
    _ok(
        api.post(
            f"/compute/v2.1/flavors/{ids['flavor_id']}/os-extra_specs",
            as_="admin",
            json={"extra_specs": {"k1": "v"}},
        )
    )
    _ok(api.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "a-kp"}}))
    group = {"server_group": {"name": "a-g", "policies": ["affinity"]}}
    ids["group_id"] = _ok(api.post("/compute/v2.1/os-server-groups", json=group))["server_group"]["id"]
    agg = {"aggregate": {"name": "authz-agg"}}
    ids["agg_id"] = str(
        _ok(api.post("/compute/v2.1/os-aggregates", as_="admin", json=agg))["aggregate"]["id"]
    )
    hyp = api.get("/compute/v2.1/os-hypervisors", as_="admin").json()["hypervisors"][0]
    ids["hypervisor_id"], ids["pattern"] = str(hyp["id"]), hyp["hypervisor_hostname"]
    # network
    net = _ok(api.post("/network/v2.0/networks", json={"network": {"name": "a-net"}}))["network"]["id"]
    ids["network_id"] = ids["resource_id"] = net
    sub = {"subnet": {"network_id": net, "cidr": "10.77.0.0/24", "ip_version": 4}}
    ids["subnet_id"] = _ok(api.post("/network/v2.0/subnets", json=sub))["subnet"]["id"]
    ids["port_id"] = _ok(api.post("/network/v2.0/ports", json={"port": {"network_id": net}}))["port"]["id"]
    sg = _ok(api.post("/network/v2.0/security-groups", json={"security_group": {"name": "a-sg"}}))
    ids["sg_id"] = sg["security_group"]["id"]
    rule = {
        "security_group_rule": {"security_group_id": ids["sg_id"], "direction": "ingress", "protocol": "tcp"}
    }
    ids["rule_id"] = _ok(api.post("/network/v2.0/security-group-rules", json=rule))["security_group_rule"][
        "id"
    ]
    _ok(api.put(f"/network/v2.0/networks/{net}/tags/t1"))
    router = _ok(api.post("/network/v2.0/routers", json={"router": {"name": "a-router"}}))
    ids["router_id"] = router["router"]["id"]
    public = api.get("/network/v2.0/networks?name=public").json()["networks"][0]["id"]
    fip = _ok(api.post("/network/v2.0/floatingips", json={"floatingip": {"floating_network_id": public}}))
    ids["floatingip_id"] = ids["floating_ip_id"] = fip["floatingip"]["id"]
    # block storage
    vh = {"OpenStack-API-Version": MV}
    vol = _ok(api.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": "a-vol"}}, headers=vh))
    ids["volume_id"] = vol["volume"]["id"]
    _ok(
        api.post(
            f"/volume/v3/volumes/{ids['volume_id']}/metadata", json={"metadata": {"k1": "v"}}, headers=vh
        )
    )
    vtype = _ok(
        api.post("/volume/v3/types", as_="admin", json={"volume_type": {"name": "authz-t"}}, headers=vh)
    )
    ids["type_id"] = vtype["volume_type"]["id"]
    specs = {"extra_specs": {"k1": "v"}}
    _ok(api.post(f"/volume/v3/types/{ids['type_id']}/extra_specs", as_="admin", json=specs, headers=vh))
    snap = {"snapshot": {"volume_id": ids["volume_id"], "name": "a-snap", "metadata": {"k1": "v"}}}
    ids["snapshot_id"] = _ok(api.post("/volume/v3/snapshots", json=snap, headers=vh))["snapshot"]["id"]
    backup = {"backup": {"volume_id": ids["volume_id"], "name": "a-backup"}}
    ids["backup_id"] = _ok(api.post("/volume/v3/backups", json=backup, headers=vh))["backup"]["id"]
    # image (project A's own, not public)
    img = {"name": "a-img", "disk_format": "raw", "container_format": "bare", "k1": "v"}
    ids["image_id"] = _ok(api.post("/image/v2/images", json=img))["id"]
    data = {"Content-Type": "application/octet-stream"}
    _ok(api.put(f"/image/v2/images/{ids['image_id']}/file", content=b"a-img", headers=data))
    # placement: a provider of the test's own, with an inventory and a trait
    rp = _ok(
        api.post(
            "/placement/resource_providers",
            as_="admin",
            json={"name": "authz-rp"},
            headers={"OpenStack-API-Version": "placement 1.20"},
        )
    )
    ids["uuid"] = rp["uuid"]
    _ok(
        api.put(
            "/placement/traits/CUSTOM_AUTHZ", as_="admin", headers={"OpenStack-API-Version": "placement 1.6"}
        )
    )
    # throwaways for the identity deletes and the dangerous admin writes
    ids["victim_project"] = _ok(
        api.post("/identity/v3/projects", as_="admin", json={"project": {"name": "authz-victim"}})
    )["project"]["id"]
    ids["victim_user"] = _ok(
        api.post("/identity/v3/users", as_="admin", json={"user": {"name": "authz-victim"}})
    )["user"]["id"]
    ids["victim_role"] = _ok(
        api.post("/identity/v3/roles", as_="admin", json={"role": {"name": "authz-victim"}})
    )["role"]["id"]
    return World(api=api, ids=ids)


def _params(world: World, method: str, path: str) -> dict[str, str]:
    ids = world.ids
    out = dict(ids)
    out.update(
        key="k1",
        tag="t1",
        name="a-kp",
        class_name="default",
        network="a-net",
        collection="networks",
        alias="security-group",
        domain_id="default",
        other="v3",
        action="deactivate",
        rc="VCPU",
        consumer_uuid=str(uuid.uuid4()),
        attachment_id=str(uuid.uuid4()),
        service_id=str(uuid.uuid4()),  # never the real compute service
        endpoint_id=str(uuid.uuid4()),  # nor a real catalog endpoint
        region_id="RegionOne",
        member_id=str(uuid.uuid4()),  # an image member that is not one
        tenant_id=ids["project_id"],  # os-simple-tenant-usage/{tenant_id}: project A's usage
        before="2026-01-01 00:00:00",  # os-instance_usage_audit_log/{before}
        host_name="authz-host",  # os-hosts/{host_name}: none such (a real one is 501: no driver can)
        migration_id="1",  # a migration id (none exists: a 404 or 400 behind the gate)
        console_token=str(uuid.uuid4()),  # os-console-auth-tokens/{console_token}: none such
        share_id=str(uuid.uuid4()),  # /servers/{id}/shares/{share_id}: none such (no Manila)
    )
    if path.startswith("/compute/v2.1/os-security-groups") or "/os-security-group-rules" in path:
        out["group_id"] = ids["sg_id"]
    elif path.startswith("/network/v2.0/security-groups"):
        out["group_id"] = ids["sg_id"]
    if path.startswith("/compute/v2.1/images"):
        out["image_id"] = ids["image_id"]
    if path.startswith("/placement/traits/"):
        out["name"] = "CUSTOM_AUTHZ"
    if path.startswith("/placement/resource_classes/"):
        out["name"] = "VCPU"
    if path.startswith("/openapi/"):
        out["name"] = "compute.json"
    if path.startswith("/identity/") and method in ("PATCH", "DELETE", "PUT"):
        out.update(project_id=ids["victim_project"], user_id=ids["victim_user"], role_id=ids["victim_role"])
    if path.startswith("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"):
        out.update(project_id=ids["victim_project"], user_id=ids["victim_user"])
    return out


def _body(world: World, method: str, path: str) -> Any:
    i = world.ids
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/compute/v2.1/servers"): {
            "server": {"name": "authz-vm", "imageRef": i["tiny_image"], "flavorRef": "1"}
        },
        ("PUT", "/compute/v2.1/servers/{server_id}"): {"server": {"name": "renamed"}},
        ("POST", "/compute/v2.1/servers/{server_id}/action"): {"os-getConsoleOutput": {"length": 1}},
        ("POST", "/compute/v2.1/servers/{server_id}/metadata"): {"metadata": {"k2": "v"}},
        ("PUT", "/compute/v2.1/servers/{server_id}/metadata"): {"metadata": {"k1": "v"}},
        ("PUT", "/compute/v2.1/servers/{server_id}/metadata/{key}"): {"meta": {"k1": "w"}},
        ("PUT", "/compute/v2.1/servers/{server_id}/tags"): {"tags": ["t1"]},
        ("POST", "/compute/v2.1/flavors"): {"flavor": {"name": "authz-f2", "ram": 64, "vcpus": 1, "disk": 1}},
        ("POST", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs"): {"extra_specs": {"k2": "v"}},
        ("PUT", "/compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}"): {"k1": "w"},
        ("POST", "/compute/v2.1/flavors/{flavor_id}/action"): {"addTenantAccess": {"tenant": i["project_b"]}},
        ("POST", "/compute/v2.1/os-keypairs"): {"keypair": {"name": "authz-kp"}},
        ("PUT", "/compute/v2.1/os-quota-sets/{project_id}"): {"quota_set": {"instances": 20}},
        ("PUT", "/compute/v2.1/os-quota-class-sets/{class_name}"): {"quota_class_set": {"instances": 20}},
        ("POST", "/compute/v2.1/os-server-groups"): {
            "server_group": {"name": "g2", "policies": ["affinity"]}
        },
        ("POST", "/compute/v2.1/os-aggregates"): {"aggregate": {"name": "authz-agg2"}},
        ("PUT", "/compute/v2.1/os-aggregates/{agg_id}"): {"aggregate": {"name": "authz-agg"}},
        ("POST", "/compute/v2.1/os-aggregates/{agg_id}/action"): {"set_metadata": {"metadata": {"a": "b"}}},
        ("POST", "/compute/v2.1/servers/{server_id}/os-interface"): {
            "interfaceAttachment": {"net_id": i["network_id"]}
        },
        ("POST", "/compute/v2.1/os-server-external-events"): {
            "events": [{"name": "network-changed", "server_uuid": i["server_id"]}]
        },
        ("POST", "/compute/v2.1/os-security-groups"): {"security_group": {"name": "x", "description": "d"}},
        ("POST", "/network/v2.0/networks"): {"network": {"name": "n2"}},
        ("PUT", "/network/v2.0/networks/{network_id}"): {"network": {"name": "a-net"}},
        ("POST", "/network/v2.0/ports"): {"port": {"network_id": i["network_id"]}},
        ("PUT", "/network/v2.0/ports/{port_id}"): {"port": {"name": "p"}},
        ("POST", "/network/v2.0/security-groups"): {"security_group": {"name": "sg2"}},
        ("PUT", "/network/v2.0/security-groups/{group_id}"): {"security_group": {"name": "a-sg"}},
        ("PUT", "/network/v2.0/subnets/{subnet_id}"): {"subnet": {"name": "s"}},
        ("PUT", "/network/v2.0/routers/{router_id}"): {"router": {"name": "a-router"}},
        ("PUT", "/network/v2.0/floatingips/{floatingip_id}"): {"floatingip": {"description": "d"}},
        ("PUT", "/network/v2.0/{collection}/{resource_id}/tags"): {"tags": ["t1"]},
        ("PUT", "/network/v2.0/quotas/{project_id}"): {"quota": {"network": 50}},
        ("POST", "/volume/v3/volumes"): {"volume": {"size": 1}},
        ("PUT", "/volume/v3/volumes/{volume_id}"): {"volume": {"name": "a-vol"}},
        ("POST", "/volume/v3/volumes/{volume_id}/metadata"): {"metadata": {"k2": "v"}},
        ("PUT", "/volume/v3/volumes/{volume_id}/metadata"): {"metadata": {"k1": "v"}},
        ("PUT", "/volume/v3/volumes/{volume_id}/metadata/{key}"): {"meta": {"k1": "w"}},
        ("POST", "/volume/v3/volumes/{volume_id}/action"): {"os-set_bootable": {"bootable": False}},
        ("POST", "/volume/v3/types"): {"volume_type": {"name": "authz-t2"}},
        ("PUT", "/volume/v3/types/{type_id}"): {"volume_type": {"description": "d"}},
        ("POST", "/volume/v3/types/{type_id}/extra_specs"): {"extra_specs": {"k2": "v"}},
        ("PUT", "/volume/v3/types/{type_id}/extra_specs/{key}"): {"k1": "w"},
        ("POST", "/volume/v3/types/{type_id}/action"): {"addProjectAccess": {"project": i["project_b"]}},
        ("POST", "/volume/v3/attachments/{attachment_id}/action"): {"os-complete": {}},
        ("PUT", "/volume/v3/snapshots/{snapshot_id}"): {"snapshot": {"name": "a-snap"}},
        ("POST", "/volume/v3/backups/{backup_id}/restore"): {"restore": {}},
        ("PUT", "/volume/v3/backups/{backup_id}"): {"backup": {"name": "a-backup"}},
        ("POST", "/volume/v3/snapshots/{snapshot_id}/metadata"): {"metadata": {"k2": "v"}},
        ("PUT", "/volume/v3/snapshots/{snapshot_id}/metadata"): {"metadata": {"k1": "v"}},
        ("PUT", "/volume/v3/snapshots/{snapshot_id}/metadata/{key}"): {"meta": {"k1": "w"}},
        ("POST", "/volume/v3/snapshots/{snapshot_id}/action"): {"os-reset_status": {"status": "available"}},
        ("POST", "/volume/v3/backups/{backup_id}/action"): {"os-reset_status": {"status": "available"}},
        ("PUT", "/volume/v3/os-quota-sets/{project_id}"): {"quota_set": {"volumes": 20}},
        ("POST", "/image/v2/images"): {"name": "i2", "disk_format": "raw", "container_format": "bare"},
        ("POST", "/placement/resource_providers"): {"name": "authz-rp2"},
        ("PUT", "/placement/resource_providers/{uuid}"): {"name": "authz-rp"},
        ("POST", "/identity/v3/projects"): {"project": {"name": "authz-p2"}},
        ("POST", "/identity/v3/users"): {"user": {"name": "authz-u2"}},
        ("POST", "/identity/v3/roles"): {"role": {"name": "authz-r2"}},
    }
    key = (method, path.replace("/volume/v3/{url_project_id}", "/volume/v3"))
    if key in bodies:
        return bodies[key]
    return {} if method in ("POST", "PUT", "PATCH") else None


def _refusal(persona: str, path: str, rule: Rule) -> frozenset[int] | None:
    """The statuses a default OpenStack cloud refuses ``persona`` with on this route (the route's
    parameters naming A's resources), or None when it lets the persona in."""
    if rule.check is Check.ANONYMOUS or persona == "admin":
        return None
    if persona in ("none", "garbage"):
        return frozenset({401})
    check = rule.check
    if rule.actions:
        check = rule.actions[_BODY_KEYS[path]].check
    if persona == "reader" and check in BELOW_MEMBER:
        return frozenset({403})  # a role too low on its own project
    if persona in ("member", "other") and check in (Check.SERVICE, Check.ADMIN):
        return frozenset({403})
    if check is Check.OWNER and path in OWNERS:
        # someone else's key pair is not found (404); someone else's user or token is 403
        return None if persona in OWNERS[path] else frozenset({403, 404})
    if persona == "other" and check in (Check.READER, Check.MEMBER, Check.MANAGER):
        if OF_PROJECT_A & set(_param_names(path)):
            # hidden (404), a quota or user of A (403), a URL naming A's project (400)
            return frozenset({400, 403, 404})
    return None


# the action each .../action route is sent (its body's key)
_BODY_KEYS = {
    "/compute/v2.1/servers/{server_id}/action": "os-getConsoleOutput",
    "/compute/v2.1/flavors/{flavor_id}/action": "addTenantAccess",
    "/compute/v2.1/os-aggregates/{agg_id}/action": "set_metadata",
    "/volume/v3/volumes/{volume_id}/action": "os-set_bootable",
    "/volume/v3/{url_project_id}/volumes/{volume_id}/action": "os-set_bootable",
    "/volume/v3/types/{type_id}/action": "addProjectAccess",
    "/volume/v3/{url_project_id}/types/{type_id}/action": "addProjectAccess",
    "/volume/v3/attachments/{attachment_id}/action": "os-complete",
    "/volume/v3/{url_project_id}/attachments/{attachment_id}/action": "os-complete",
    "/volume/v3/snapshots/{snapshot_id}/action": "os-reset_status",
    "/volume/v3/{url_project_id}/snapshots/{snapshot_id}/action": "os-reset_status",
    "/volume/v3/backups/{backup_id}/action": "os-reset_status",
    "/volume/v3/{url_project_id}/backups/{backup_id}/action": "os-reset_status",
}


def _param_names(path: str) -> Iterator[str]:
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            yield part[1:-1]


def _request(world: World, persona: str, method: str, path: str) -> httpx.Response:
    params = _params(world, method, path)
    url = path.format(**params)
    headers: dict[str, str] = {}
    if persona != "none":
        headers["X-Auth-Token"] = world.api.tokens[persona]
    if path.startswith("/volume"):
        headers["OpenStack-API-Version"] = MV
    if path.startswith("/placement"):
        headers["OpenStack-API-Version"] = "placement 1.39"
    if path == "/identity/v3/auth/tokens" and method != "POST":
        headers["X-Subject-Token"] = world.ids["subject"]
    if path == "/placement/usages":
        url += f"?project_id={world.ids['project_id']}"
    body = _body(world, method, path)
    if method == "PATCH" and path.startswith("/image/"):
        headers["Content-Type"] = "application/openstack-images-v2.1-json-patch"
        return world.api.client.request(
            method, url, json=[{"op": "replace", "path": "/name", "value": "a-img"}], headers=headers
        )
    if method == "PUT" and path.endswith(("/file", "/stage")):
        headers["Content-Type"] = "application/octet-stream"
        return world.api.client.request(method, url, content=b"x", headers=headers)
    return world.api.client.request(method, url, json=body, headers=headers)


def _order(route: tuple[str, str]) -> tuple[int, str]:
    method, path = route
    return ({"GET": 0, "HEAD": 0, "DELETE": 2}.get(method, 1), path)


def test_every_route_as_every_persona(stack: Api) -> None:
    world = _world(stack)
    routes = sorted(
        {(m, p) for m, p, _ in app_routes(stack.client.app.router.routes) if (m, p) in TABLE}, key=_order
    )
    assert len(routes) > 300
    unexpected_2xx, errors, wrong = [], [], []
    for method, path in routes:
        rule = TABLE[(method, path)]
        for persona in PERSONAS:
            r = _request(world, persona, method, path)
            what = f"{persona:8} {method} {path} -> {r.status_code} {r.text[:160]}"
            if r.status_code >= 500:
                errors.append(what)
                continue
            refusal = _refusal(persona, path, rule)
            if refusal is not None and r.status_code < 300:
                unexpected_2xx.append(what)
            elif refusal is not None and r.status_code not in refusal:
                wrong.append(what + f" (expected {sorted(refusal)})")
            elif refusal is None and r.status_code in (401, 403) and (method, path) not in STRICTER:
                wrong.append(what + " (expected to be allowed)")
    size = len(routes) * len(PERSONAS)
    print(f"authorization table: {len(routes)} routes x {len(PERSONAS)} personas = {size}")
    assert not errors, "500s:\n" + "\n".join(errors)
    assert not unexpected_2xx, f"{len(unexpected_2xx)} unexpected 2xx:\n" + "\n".join(unexpected_2xx)
    assert not wrong, "\n".join(wrong)


def test_what_the_tables_newly_refuse_names_the_rule_in_each_envelope(stack: Api) -> None:
    """Gaps the tables closed (docs/trust.md "Policy"): a reader downloading an image or reading
    its network quota, a member listing roles or domains; each refused as its service words it."""
    world = _world(stack)
    image = world.ids["image_id"]
    r = stack.get(f"/image/v2/images/{image}/file", as_="reader", headers={"Accept": "application/json"})
    assert r.status_code == 403, r.text
    assert "You are not authorized to complete download_image action." in r.json()["message"]
    assert stack.get(f"/image/v2/images/{image}/file", as_="member").content == b"a-img"
    r = stack.get(f"/network/v2.0/quotas/{world.ids['project_id']}", as_="reader")
    assert r.status_code == 403, r.text
    assert r.json()["NeutronError"]["message"] == "rule:get_quota is disallowed by policy"
    assert stack.get(f"/network/v2.0/quotas/{world.ids['project_id']}", as_="member").status_code == 200
    for path, rule in (
        ("/identity/v3/roles", "identity:list_roles"),
        ("/identity/v3/domains", "identity:list_domains"),
    ):
        r = stack.get(path, as_="member")
        assert r.status_code == 403, r.text
        assert r.json()["error"] == {
            "code": 403,
            "title": "Forbidden",
            "message": f"You are not authorized to perform the requested action: {rule}.",
        }
        assert stack.get(path, as_="admin").status_code == 200

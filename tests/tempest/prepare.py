"""Prepare a Tempest run against a running novalite: accounts file and tempest.conf.

Usage: ``python tests/tempest/prepare.py URL ADMIN_PASSWORD DEMO_PASSWORD WORKSPACE``

Tempest runs with pre-provisioned credentials (``use_dynamic_credentials = false``): the demo
user in the demo project is the member account and ``admin`` the admin account. With
``--concurrency 2`` every worker holds a member, a reader, an alt and an admin account at the
same time (Tempest locks one account per hash), so a second set is created through the
Identity API: ``tempest-member2`` (project ``tempest-2``), reader users in both member projects,
two alt users in projects of their own, and a second admin. Creating them is idempotent.
Each extra project gets a ``private`` network like demo's. Classes that force tenant isolation
(admin quota tests) create their own accounts through the Identity API with the
``[auth] admin_*`` credentials.

``[service_available]`` and ``[compute-feature-enabled]`` say what novalite implements: a
service is "available" only when it is in the catalog, and a feature flag is on only when
the compute API serves it. ``build_interval`` is an integer option in Tempest 47, so 1 s is
the shortest poll interval it accepts (0 would make the waiters spin).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx

ACCOUNT_PASSWORD = "tempest-secret"

# (user, project, roles in Keystone, roles written to the accounts file)
EXTRA_ACCOUNTS = [
    ("tempest-reader1", "demo", ["reader"], ["reader"]),
    ("tempest-member2", "tempest-2", ["member"], ["member"]),
    ("tempest-reader2", "tempest-2", ["reader"], ["reader"]),
    ("tempest-alt1", "tempest-alt1", ["member"], []),
    ("tempest-alt2", "tempest-alt2", ["member"], []),
    # a project manager in each member project (MigrationsAdminTest, LiveMigrationTest ask for one
    # in the primary's project): member as well, as Nova's manager rules are enforced as a member's
    ("tempest-manager1", "demo", ["member", "manager"], ["manager"]),
    ("tempest-manager2", "tempest-2", ["member", "manager"], ["manager"]),
    ("tempest-admin2", "admin", ["admin", "service"], ["admin", "service"]),
    ("tempest-admin3", "admin", ["admin", "service"], ["admin", "service"]),
    ("tempest-admin4", "admin", ["admin", "service"], ["admin", "service"]),
]
# Every admin account also has the service role: ServerExternalEventsTest asks for an admin
# and a ['admin', 'service'] account at once, and Tempest hands out admin accounts in random
# order, so any admin account must be able to serve as the service user.
ADMIN_ROLES = ["admin", "service"]

# Every [compute-feature-enabled] switch of a Nova cloud with the fake driver is on. Off:
# unified_limits (a quota mode, not a feature: novalite enforces Nova's legacy per-project quotas,
# and with it on Tempest skips the legacy quota tests) and vtpm_live_migration (needs Barbican).
FEATURES_ON = [
    "disk_config",
    "hostname_fqdn_sanitization",
    "change_password",
    "console_output",
    "resize",
    "pause",
    "shelve",
    "shelve_migrate",
    "suspend",
    "cold_migration",
    "live_migration",
    "live_migrate_back_and_forth",
    "metadata_service",
    "block_migration_for_live_migration",
    "can_migrate_between_any_hosts",
    "vnc_console",
    "spice_console",
    "serial_console",
    "rescue",
    "stable_rescue",
    "enable_instance_password",
    "interface_attach",
    "snapshot",
    "personality",
    "attach_encrypted_volume",
    "config_drive",
    "swap_volume",
    "volume_backed_live_migration",
    "volume_multiattach",
    "ide_bus",
]
FEATURES_OFF = [
    "unified_limits",
    "vtpm_live_migration",
]


def token(client: httpx.Client, user: str, password: str, project: str) -> tuple[str, dict[str, Any]]:
    """Password-authenticate; return the token and the token body."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    r = client.post("/identity/v3/auth/tokens", json=body)
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"]


def _find(client: httpx.Client, kind: str, name: str) -> str | None:
    r = client.get(f"/identity/v3/{kind}", params={"name": name})
    r.raise_for_status()
    items = [i for i in r.json()[kind] if i["name"] == name]
    return items[0]["id"] if items else None


def ensure_account(client: httpx.Client, user: str, project: str, roles: list[str]) -> None:
    """Create the project, the user, the roles and the role assignments when missing."""
    project_id = _find(client, "projects", project)
    if project_id is None:
        r = client.post("/identity/v3/projects", json={"project": {"name": project, "domain_id": "default"}})
        r.raise_for_status()
        project_id = r.json()["project"]["id"]
    user_id = _find(client, "users", user)
    if user_id is None:
        r = client.post(
            "/identity/v3/users",
            json={
                "user": {
                    "name": user,
                    "password": ACCOUNT_PASSWORD,
                    "domain_id": "default",
                    "default_project_id": project_id,
                }
            },
        )
        r.raise_for_status()
        user_id = r.json()["user"]["id"]
    for role in roles:
        role_id = _find(client, "roles", role)
        if role_id is None:
            r = client.post("/identity/v3/roles", json={"role": {"name": role}})
            r.raise_for_status()
            role_id = r.json()["role"]["id"]
        r = client.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}")
        r.raise_for_status()


def ensure_private_network(client: httpx.Client, project: str) -> None:
    """A ``private`` network with an IPv4 subnet in ``project``, as novalite seeds for demo:
    below 2.37 a server created without ``networks`` gets a port on it (Nova's behaviour with
    exactly one available network), which Tempest's address tests expect."""
    project_id = _find(client, "projects", project)
    r = client.get("/network/v2.0/networks", params={"name": "private", "project_id": project_id})
    r.raise_for_status()
    if r.json()["networks"]:
        return
    r = client.post("/network/v2.0/networks", json={"network": {"name": "private", "project_id": project_id}})
    r.raise_for_status()
    net_id = r.json()["network"]["id"]
    r = client.post(
        "/network/v2.0/subnets",
        json={
            "subnet": {
                "name": "private-subnet",
                "network_id": net_id,
                "ip_version": 4,
                "cidr": "10.0.0.0/26",
                "project_id": project_id,
            }
        },
    )
    r.raise_for_status()


def ensure_router(client: httpx.Client, project: str) -> str:
    """A ``router1`` in ``project`` joining its ``private`` subnet to the external ``public``
    network, as DevStack sets up: floating IPs can then be mapped to the project's servers.
    Returns the public network's id (Tempest's ``public_network_id``)."""
    project_id = _find(client, "projects", project)
    r = client.get("/network/v2.0/networks", params={"name": "public", "router:external": "true"})
    r.raise_for_status()
    public_id = str(r.json()["networks"][0]["id"])
    r = client.get("/network/v2.0/routers", params={"name": "router1", "project_id": project_id})
    r.raise_for_status()
    if r.json()["routers"]:
        return public_id
    r = client.get("/network/v2.0/subnets", params={"name": "private-subnet", "project_id": project_id})
    r.raise_for_status()
    subnet_id = r.json()["subnets"][0]["id"]
    gateway = {"network_id": public_id}
    body = {"router": {"name": "router1", "project_id": project_id, "external_gateway_info": gateway}}
    r = client.post("/network/v2.0/routers", json=body)
    r.raise_for_status()
    router_id = r.json()["router"]["id"]
    r = client.put(f"/network/v2.0/routers/{router_id}/add_router_interface", json={"subnet_id": subnet_id})
    r.raise_for_status()
    return public_id


def accounts_yaml(admin_password: str, demo_password: str) -> str:
    """The pre-provisioned accounts file (YAML written by hand: no quoting surprises)."""
    extra = [(u, p, ACCOUNT_PASSWORD, roles) for u, p, _, roles in EXTRA_ACCOUNTS]
    # Tempest takes the first free role-less account as "alt": list those first so that alt is
    # never a reader in the primary's own project.
    rows = [r for r in extra if not r[3]]
    rows += [("demo", "demo", demo_password, ["member"]), ("admin", "admin", admin_password, ADMIN_ROLES)]
    rows += [r for r in extra if r[3]]
    out = []
    for user, project, password, roles in rows:
        out.append(
            f"- username: '{user}'\n  project_name: '{project}'\n  password: '{password}'\n"
            "  user_domain_name: 'Default'\n  project_domain_name: 'Default'\n"
        )
        if roles:
            out.append(f"  roles: [{', '.join(roles)}]\n")
    return "".join(out)


def catalog_types(token_body: dict[str, Any]) -> set[str]:
    return {entry["type"] for entry in token_body.get("catalog", [])}


def image_id(client: httpx.Client, name: str) -> str:
    r = client.get("/image/v2/images", params={"name": name})
    r.raise_for_status()
    images = r.json()["images"]
    if not images:
        raise SystemExit(f"image {name!r} not found")
    return str(images[0]["id"])


def ensure_alt_image(client: httpx.Client, source_id: str, name: str) -> str:
    """A second public image with the default image's bytes (Tempest wants image_ref_alt distinct)."""
    r = client.get("/image/v2/images", params={"name": name})
    r.raise_for_status()
    if r.json()["images"]:
        return str(r.json()["images"][0]["id"])
    source = client.get(f"/image/v2/images/{source_id}")
    source.raise_for_status()
    meta = source.json()
    created = client.post(
        "/image/v2/images",
        json={
            "name": name,
            "visibility": "public",
            "disk_format": meta["disk_format"],
            "container_format": meta["container_format"],
        },
    )
    created.raise_for_status()
    new_id = str(created.json()["id"])
    data = client.get(f"/image/v2/images/{source_id}/file")
    data.raise_for_status()
    put = client.put(
        f"/image/v2/images/{new_id}/file",
        content=data.content,
        headers={"Content-Type": "application/octet-stream"},
    )
    put.raise_for_status()
    return new_id


MULTIATTACH_TYPE = "multiattach"


def ensure_multiattach_type(client: httpx.Client, project_id: str) -> str:
    """A public volume type whose volumes can be attached to several servers, as DevStack
    creates it (extra spec ``multiattach = <is> True``); Tempest's ``volume_type_multiattach``."""
    base = f"/volume/v3/{project_id}/types"
    r = client.get(base)
    r.raise_for_status()
    if not any(t["name"] == MULTIATTACH_TYPE for t in r.json()["volume_types"]):
        body = {"volume_type": {"name": MULTIATTACH_TYPE, "extra_specs": {"multiattach": "<is> True"}}}
        client.post(base, json=body).raise_for_status()
    return MULTIATTACH_TYPE


def max_microversion(client: httpx.Client) -> str:
    r = client.get("/compute/v2.1")
    r.raise_for_status()
    return str(r.json()["version"]["version"])


def volume_microversions(client: httpx.Client) -> tuple[str, str]:
    """The block-storage API's (min, max) microversion from its version document."""
    r = client.get("/volume/")
    doc = r.json()["versions"][0]
    return str(doc["min_version"]), str(doc["version"])


def tempest_conf(
    url: str,
    workspace: Path,
    *,
    image: str,
    image_alt: str,
    max_version: str,
    services: set[str],
    admin_password: str,
    public_network_id: str = "",
    volume_versions: tuple[str, str] = ("", ""),
    multiattach_type: str = "",
) -> str:
    """tempest.conf for this novalite."""
    neutron = "network" in services
    cinder = "volumev3" in services
    features = "\n".join([f"{f} = true" for f in FEATURES_ON] + [f"{f} = false" for f in FEATURES_OFF])
    return f"""[DEFAULT]
log_file = {workspace}/tempest.log
debug = false

[oslo_concurrency]
lock_path = {workspace}/locks

[auth]
use_dynamic_credentials = false
test_accounts_file = {workspace}/etc/accounts.yaml
create_isolated_networks = false
admin_username = admin
admin_password = {admin_password}
admin_project_name = admin
admin_domain_name = Default

[identity]
uri_v3 = {url}/identity/v3
auth_version = v3
region = RegionOne
disable_ssl_certificate_validation = true

[identity-feature-enabled]
api_v2 = false

[enforce_scope]
nova = false

[compute]
image_ref = {image}
image_ref_alt = {image_alt}
flavor_ref = 1
flavor_ref_alt = 2
min_microversion = 2.1
min_compute_nodes = 3
max_microversion = {max_version}
build_interval = 1
build_timeout = 60
region = RegionOne
endpoint_type = publicURL
fixed_network_name = {"private" if neutron else ""}

[compute-feature-enabled]
{features}
scheduler_enabled_filters = {os.environ.get("NOVALITE_ENABLED_FILTERS", "")}

[image]
region = RegionOne
build_interval = 1
build_timeout = 60

[image-feature-enabled]
api_v1 = false

[network]
region = RegionOne
public_network_id = {public_network_id}
floating_network_name = public
build_interval = 1
build_timeout = 60

[volume]
region = RegionOne
catalog_type = volumev3
min_microversion = {volume_versions[0]}
max_microversion = {volume_versions[1]}
volume_type_multiattach = {multiattach_type}
build_interval = 1
build_timeout = 60

[validation]
run_validation = false

[service_available]
nova = true
glance = {str("image" in services).lower()}
neutron = {str(neutron).lower()}
cinder = {str(cinder).lower()}
swift = false
horizon = false
"""


def main(argv: list[str]) -> None:
    url, admin_password, demo_password, workspace = argv[1], argv[2], argv[3], Path(argv[4])
    with httpx.Client(base_url=url, timeout=30) as client:
        admin_token, body = token(client, "admin", admin_password, "admin")
        client.headers["X-Auth-Token"] = admin_token
        ensure_account(client, "admin", "admin", ADMIN_ROLES)
        for user, project, roles, _ in EXTRA_ACCOUNTS:
            ensure_account(client, user, project, roles)
        public_network_id = ""
        if "network" in catalog_types(body):
            for project in sorted({p for _, p, _, _ in EXTRA_ACCOUNTS} - {"demo", "admin"}):
                ensure_private_network(client, project)
            for project in sorted({p for _, p, _, _ in EXTRA_ACCOUNTS} | {"demo"}):
                public_network_id = ensure_router(client, project)
        image = image_id(client, "novalite-tiny")
        image_alt = ensure_alt_image(client, image, "novalite-tiny-alt")
        max_version = max_microversion(client)
        volume_versions = volume_microversions(client) if "volumev3" in catalog_types(body) else ("", "")
        multiattach_type = ""
        if "volumev3" in catalog_types(body):
            multiattach_type = ensure_multiattach_type(client, body["project"]["id"])
    etc = workspace / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (workspace / "locks").mkdir(exist_ok=True)
    (etc / "accounts.yaml").write_text(accounts_yaml(admin_password, demo_password))
    (etc / "tempest.conf").write_text(
        tempest_conf(
            url,
            workspace,
            image=image,
            image_alt=image_alt,
            max_version=max_version,
            services=catalog_types(body),
            admin_password=admin_password,
            public_network_id=public_network_id,
            volume_versions=volume_versions,
            multiattach_type=multiattach_type,
        )
    )
    print(
        f"tempest.conf written: image {image}, max microversion {max_version}, "
        f"catalog {sorted(catalog_types(body))}"
    )


if __name__ == "__main__":
    main(sys.argv)

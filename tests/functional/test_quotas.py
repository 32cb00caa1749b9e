"""Quotas (limits resolution, counting, instance/metadata/file checks), quota sets and quota classes,
GET /limits and availability zones."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from novalite.context import RequestContext
from novalite.db.models.compute import Instance
from novalite.errors import OverQuota
from novalite.services import quotas
from tests.conftest import Api

QS = "/compute/v2.1/os-quota-sets"
QC = "/compute/v2.1/os-quota-class-sets"
CORE = {"instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups", "server_group_members"}
INJECTED = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
LEGACY = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
FLAVOR = {"vcpus": 2, "memory_mb": 4096}


def _servers(
    stack: Api, count: int, *, vcpus: int = 1, ram: int = 512, user: str = "demo_user", deleted: bool = False
) -> None:
    """Existing servers of the demo project, as the create pipeline leaves them in the database."""
    with stack.runtime.db.session() as s:  # type: ignore[attr-defined]
        for _ in range(count):
            s.add(
                Instance(
                    uuid=str(uuid.uuid4()),
                    project_id=stack.ids["demo_project"],
                    user_id=stack.ids[user],
                    display_name="vm",
                    reservation_id="r-x",
                    flavor_id="1",
                    flavor={},
                    memory_mb=ram,
                    vcpus=vcpus,
                    root_gb=1,
                    vm_state="active",
                    deleted=deleted,
                )
            )


def _demo_ctx(stack: Api) -> RequestContext:
    return RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )


def _set(stack: Api, version: str = "2.1", user_id: str | None = None, **values: Any) -> Any:
    query = f"?user_id={user_id}" if user_id else ""
    return stack.put(
        f"{QS}/{stack.ids['demo_project']}{query}", as_="admin", version=version, json={"quota_set": values}
    )


def _check(stack: Api, min_count: int, max_count: int, flavor: dict[str, int] = FLAVOR) -> int:
    with stack.runtime.db.serialized("quota:test") as s:  # type: ignore[attr-defined]
        return quotas.check_instance_quota(s, _demo_ctx(stack), flavor, min_count, max_count)


# --- instance quota ------------------------------------------------------------------------


def test_instance_quota_message_and_partial_create(stack: Api) -> None:
    _servers(stack, 9)
    _servers(stack, 3, deleted=True)  # deleted servers do not count
    with pytest.raises(OverQuota) as exc:
        _check(stack, 3, 3)
    assert (
        exc.value.message == "Quota exceeded for instances: Requested 3, but already used 9 of 10 instances"
    )
    assert exc.value.status == 403
    with pytest.raises(OverQuota) as exc:
        _check(stack, 2, 4)
    assert (
        exc.value.message == "Quota exceeded for instances: Requested 2-4, but already used 9 of 10 instances"
    )
    assert _check(stack, 1, 4) == 1
    assert _check(stack, 1, 1) == 1


def test_cores_and_ram_are_listed_together(stack: Api) -> None:
    _servers(stack, 2, vcpus=9, ram=20480)  # 18 of 20 cores, 40960 of 51200 MB
    with pytest.raises(OverQuota) as exc:
        _check(stack, 2, 2, {"vcpus": 2, "memory_mb": 8192})
    assert exc.value.message == (
        "Quota exceeded for cores, ram: Requested 2, but already used 18, 40960 of 20, 51200 cores, ram"
    )
    assert _check(stack, 1, 5, {"vcpus": 2, "memory_mb": 8192}) == 1


def test_unlimited_and_per_user_limits(stack: Api) -> None:
    _servers(stack, 9)
    assert _set(stack, instances=-1).status_code == 200
    assert _check(stack, 5, 5, {"vcpus": 1, "memory_mb": 1}) == 5
    # a per-user row applies to that user's own servers only
    assert _set(stack, user_id=stack.ids["demo_user"], instances=10).status_code == 200
    with pytest.raises(OverQuota) as exc:
        _check(stack, 2, 2, {"vcpus": 1, "memory_mb": 1})
    assert (
        exc.value.message == "Quota exceeded for instances: Requested 2, but already used 9 of 10 instances"
    )


def test_recheck_after_insert(stack: Api) -> None:
    _servers(stack, 11)
    with stack.runtime.db.session() as s:  # type: ignore[attr-defined]
        with pytest.raises(OverQuota):
            quotas.recheck_instance_quota(
                s, stack.ids["demo_project"], stack.ids["demo_user"], {"vcpus": 1, "memory_mb": 512}, 2
            )
        quotas.recheck_instance_quota(
            s, stack.ids["admin_project"], stack.ids["admin_user"], {"vcpus": 1, "memory_mb": 512}, 2
        )


def test_metadata_and_injected_file_limits(stack: Api) -> None:
    project = stack.ids["demo_project"]
    with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
        quotas.check_metadata_quota(s, project, {f"k{i}": "v" for i in range(128)})
        with pytest.raises(OverQuota, match="^Maximum number of metadata items exceeds 128$"):
            quotas.check_metadata_quota(s, project, {f"k{i}": "v" for i in range(129)})
        quotas.check_injected_files(s, project, [("/a", b"x" * 10240)] * 5)
        with pytest.raises(OverQuota, match="^Personality file limit exceeded$"):
            quotas.check_injected_files(s, project, [("/a", "x")] * 6)
        with pytest.raises(OverQuota, match="^Personality file path exceeds maximum 255$"):
            quotas.check_injected_files(s, project, [("/" + "p" * 255, "x")])
        with pytest.raises(OverQuota, match="^Personality file content exceeds maximum 10240$"):
            quotas.check_injected_files(s, project, [("/a", "x" * 10241)])


def test_registered_counters_feed_usage(stack: Api) -> None:
    quotas.register_counter("server_group_members", lambda s, project_id, user_id: 3)
    try:
        with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
            assert quotas.count_usage(s, stack.ids["demo_project"])["server_group_members"] == 3
    finally:
        quotas._COUNTERS.pop("server_group_members", None)


# --- quota sets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version,keys",
    [
        ("2.1", CORE | INJECTED | LEGACY),
        ("2.35", CORE | INJECTED | LEGACY),
        ("2.36", CORE | INJECTED),
        ("2.56", CORE | INJECTED),
        ("2.57", CORE),
    ],
)
def test_quota_set_keys_per_version(stack: Api, version: str, keys: set[str]) -> None:
    project = stack.ids["demo_project"]
    body = stack.get(f"{QS}/{project}", version=version).json()["quota_set"]
    assert set(body) == keys | {"id"}
    assert body["id"] == project
    assert body["instances"] == 10 and body["cores"] == 20 and body["ram"] == 51200
    if "floating_ips" in keys:
        assert body["floating_ips"] == -1
    defaults = stack.get(f"{QS}/{project}/defaults", version=version).json()["quota_set"]
    assert set(defaults) == keys | {"id"}
    detail = stack.get(f"{QS}/{project}/detail", version=version).json()["quota_set"]
    assert set(detail) == keys | {"id"}
    assert detail["instances"] == {"limit": 10, "in_use": 0, "reserved": 0}


def test_quota_set_access_rules(stack: Api) -> None:
    admin_project = stack.ids["admin_project"]
    assert stack.get(f"{QS}/{admin_project}").status_code == 403
    assert stack.get(f"{QS}/{admin_project}/detail").status_code == 403
    assert stack.get(f"{QS}/{admin_project}/defaults").status_code == 200
    assert (
        stack.put(f"{QS}/{stack.ids['demo_project']}", json={"quota_set": {"instances": 1}}).status_code
        == 403
    )
    assert stack.delete(f"{QS}/{stack.ids['demo_project']}").status_code == 403


def test_update_show_and_reset(stack: Api) -> None:
    project = stack.ids["demo_project"]
    r = _set(stack, instances=5, cores="7", ram=-1)
    assert r.status_code == 200, r.text
    body = r.json()["quota_set"]
    assert "id" not in body and set(body) == CORE | INJECTED | LEGACY
    assert (body["instances"], body["cores"], body["ram"]) == (5, 7, -1)
    shown = stack.get(f"{QS}/{project}").json()["quota_set"]
    assert (shown["instances"], shown["cores"], shown["ram"]) == (5, 7, -1)
    assert stack.get(f"{QS}/{project}/defaults").json()["quota_set"]["instances"] == 10
    assert stack.delete(f"{QS}/{project}", as_="admin").status_code == 202
    assert stack.get(f"{QS}/{project}").json()["quota_set"]["instances"] == 10


@pytest.mark.parametrize(
    "values",
    [
        {"instances": -2},
        {"instances": "many"},
        {"instances": 2**31},
        {"bogus": 1},
        {"force": "perhaps"},
        {"instances": 1.5},
    ],
)
def test_invalid_updates_are_400(stack: Api, values: dict[str, Any]) -> None:
    assert _set(stack, **values).status_code == 400


def test_resources_removed_by_microversion_cannot_be_updated(stack: Api) -> None:
    assert _set(stack, version="2.35", floating_ips=10).status_code == 200
    assert _set(stack, version="2.36", floating_ips=10).status_code == 400
    assert _set(stack, version="2.56", injected_files=2).status_code == 200
    assert _set(stack, version="2.57", injected_files=2).status_code == 400


def test_update_below_usage_needs_force(stack: Api) -> None:
    _servers(stack, 3)
    r = _set(stack, instances=2)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == (
        "Quota limit 2 for instances must be greater than or equal to already used and reserved 3."
    )
    assert _set(stack, instances=2, force=True).status_code == 200
    assert stack.get(f"{QS}/{stack.ids['demo_project']}/detail").json()["quota_set"]["instances"] == {
        "limit": 2,
        "in_use": 3,
        "reserved": 0,
    }


def test_per_user_quota(stack: Api) -> None:
    demo_user = stack.ids["demo_user"]
    project = stack.ids["demo_project"]
    key = {"keypair": {"name": "k"}}
    assert stack.post("/compute/v2.1/os-keypairs", version="2.2", json=key).status_code == 201
    r = _set(stack, user_id=demo_user, key_pairs=0)
    assert r.status_code == 400
    assert "already used and reserved 1" in r.json()["badRequest"]["message"]
    r = _set(stack, user_id=demo_user, key_pairs=500)
    assert r.status_code == 400
    assert (
        r.json()["badRequest"]["message"]
        == "Quota limit 500 for key_pairs must be less than or equal to 100."
    )
    assert _set(stack, user_id=demo_user, key_pairs=3).status_code == 200
    assert stack.get(f"{QS}/{project}?user_id={demo_user}").json()["quota_set"]["key_pairs"] == 3
    assert stack.get(f"{QS}/{project}").json()["quota_set"]["key_pairs"] == 100
    detail = stack.get(f"{QS}/{project}/detail?user_id={demo_user}").json()["quota_set"]
    assert detail["key_pairs"] == {"limit": 3, "in_use": 1, "reserved": 0}
    assert stack.delete(f"{QS}/{project}?user_id={demo_user}", as_="admin").status_code == 202
    assert stack.get(f"{QS}/{project}?user_id={demo_user}").json()["quota_set"]["key_pairs"] == 100


def test_unknown_project_update_is_400(stack: Api) -> None:
    r = stack.put(f"{QS}/no-such-project", as_="admin", json={"quota_set": {"instances": 1}})
    assert r.status_code == 400


# --- quota classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version,keys",
    [
        ("2.1", CORE - {"server_groups", "server_group_members"} | INJECTED | LEGACY),
        ("2.49", CORE - {"server_groups", "server_group_members"} | INJECTED | LEGACY),
        ("2.50", CORE | INJECTED),
        ("2.56", CORE | INJECTED),
        ("2.57", CORE),
    ],
)
def test_quota_class_keys_per_version(stack: Api, version: str, keys: set[str]) -> None:
    body = stack.get(f"{QC}/default", as_="admin", version=version).json()["quota_class_set"]
    assert set(body) == keys | {"id"}
    assert body["id"] == "default"


def test_default_class_changes_project_defaults(stack: Api) -> None:
    project = stack.ids["demo_project"]
    assert stack.get(f"{QC}/default").status_code == 403
    assert stack.put(f"{QC}/default", json={"quota_class_set": {"instances": 3}}).status_code == 403
    r = stack.put(f"{QC}/default", as_="admin", version="2.50", json={"quota_class_set": {"instances": 3}})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "quota_class_set": {
            "instances": 3,
            "cores": 20,
            "ram": 51200,
            "metadata_items": 128,
            "key_pairs": 100,
            "server_groups": 10,
            "server_group_members": 10,
            "injected_files": 5,
            "injected_file_content_bytes": 10240,
            "injected_file_path_bytes": 255,
        }
    }
    assert stack.get(f"{QS}/{project}").json()["quota_set"]["instances"] == 3
    assert stack.get(f"{QS}/{project}/defaults").json()["quota_set"]["instances"] == 3
    # a project row still wins over the class
    _set(stack, instances=4)
    assert stack.get(f"{QS}/{project}").json()["quota_set"]["instances"] == 4
    r = stack.put(
        f"{QC}/default", as_="admin", version="2.57", json={"quota_class_set": {"injected_files": 1}}
    )
    assert r.status_code == 400


# --- limits --------------------------------------------------------------------------------

ABS_257 = {
    "maxTotalRAMSize",
    "maxTotalInstances",
    "maxTotalCores",
    "maxTotalKeypairs",
    "maxServerMeta",
    "maxServerGroups",
    "maxServerGroupMembers",
    "totalRAMUsed",
    "totalCoresUsed",
    "totalInstancesUsed",
    "totalServerGroupsUsed",
}
ABS_239 = ABS_257 | {"maxPersonality", "maxPersonalitySize"}
ABS_236 = ABS_239 | {"maxImageMeta"}
ABS_21 = ABS_236 | {
    "maxTotalFloatingIps",
    "maxSecurityGroups",
    "maxSecurityGroupRules",
    "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
}


@pytest.mark.parametrize(
    "version,keys",
    [
        ("2.1", ABS_21),
        ("2.35", ABS_21),
        ("2.36", ABS_236),
        ("2.38", ABS_236),
        ("2.39", ABS_239),
        ("2.56", ABS_239),
        ("2.57", ABS_257),
    ],
)
def test_limits_keys_per_version(stack: Api, version: str, keys: set[str]) -> None:
    r = stack.get("/compute/v2.1/limits", version=version)
    assert r.status_code == 200
    assert set(r.json()["limits"]) == {"rate", "absolute"}
    assert r.json()["limits"]["rate"] == []
    assert set(r.json()["limits"]["absolute"]) == keys


def test_limits_reflect_quotas_and_usage(stack: Api) -> None:
    _servers(stack, 2, vcpus=2, ram=1024)
    _set(stack, instances=7)
    absolute = stack.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert absolute["maxTotalInstances"] == 7 and absolute["maxTotalCores"] == 20
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"], absolute["totalRAMUsed"]) == (
        2,
        4,
        2048,
    )
    assert absolute["maxTotalFloatingIps"] == -1 and absolute["totalFloatingIpsUsed"] == 0
    own = stack.get("/compute/v2.1/limits", as_="admin").json()["limits"]["absolute"]
    assert own["totalInstancesUsed"] == 0
    other = stack.get(f"/compute/v2.1/limits?tenant_id={stack.ids['demo_project']}", as_="admin").json()
    assert other["limits"]["absolute"]["totalInstancesUsed"] == 2
    assert stack.get(f"/compute/v2.1/limits?tenant_id={stack.ids['admin_project']}").status_code == 403
    assert stack.get("/compute/v2.1/limits?bogus=1", version="2.74").status_code == 200
    assert stack.get("/compute/v2.1/limits?bogus=1", version="2.75").status_code == 400


# --- availability zones ----------------------------------------------------------------------


def test_availability_zones(stack: Api) -> None:
    r = stack.get("/compute/v2.1/os-availability-zone")
    assert r.status_code == 200
    assert r.json() == {
        "availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    }
    assert stack.get("/compute/v2.1/os-availability-zone/detail").status_code == 403
    r = stack.get("/compute/v2.1/os-availability-zone/detail", as_="admin")
    assert r.status_code == 200
    zones = {z["zoneName"]: z for z in r.json()["availabilityZoneInfo"]}
    assert set(zones) == {"nova", "internal"}
    internal_hosts = zones["internal"]["hosts"]
    services = next(iter(internal_hosts.values()))
    assert set(services) == {"nova-conductor", "nova-scheduler"}
    assert set(services["nova-conductor"]) == {"available", "active", "updated_at"}


def test_catalog_on_postgresql(stack_factory: Any) -> None:
    api = stack_factory(postgres=True)
    demo_project = api.ids["demo_project"]
    r = api.post(
        "/compute/v2.1/flavors",
        as_="admin",
        json={
            "flavor": {
                "name": "pg",
                "id": "pg1",
                "ram": 64,
                "vcpus": 1,
                "disk": 0,
                "os-flavor-access:is_public": False,
            }
        },
    )
    assert r.status_code == 200, r.text
    assert (
        api.post(
            "/compute/v2.1/flavors/pg1/action",
            as_="admin",
            json={"addTenantAccess": {"tenant": demo_project}},
        ).status_code
        == 200
    )
    assert "pg" in {f["name"] for f in api.get("/compute/v2.1/flavors").json()["flavors"]}
    assert (
        api.post("/compute/v2.1/os-keypairs", version="2.2", json={"keypair": {"name": "k"}}).status_code
        == 201
    )
    assert (
        api.post("/compute/v2.1/os-keypairs", version="2.2", json={"keypair": {"name": "k"}}).status_code
        == 409
    )
    _servers(api, 2, vcpus=2)
    assert _set(api, instances=1).status_code == 400
    assert _set(api, instances=3, force="True").status_code == 200
    detail = api.get(f"{QS}/{demo_project}/detail?user_id={api.ids['demo_user']}").json()["quota_set"]
    assert detail["instances"]["in_use"] == 2 and detail["key_pairs"]["in_use"] == 1
    assert api.get("/compute/v2.1/limits").json()["limits"]["absolute"]["totalCoresUsed"] == 4
    assert _check(api, 1, 5, {"vcpus": 1, "memory_mb": 1}) == 1
    # PostgreSQL refuses NUL in text: such requests must stay 4xx, never 500
    for path in ("os-keypairs/a%00b", "flavors/a%00b", "os-quota-sets/a%00b", "os-quota-class-sets/a%00b"):
        assert api.get(f"/compute/v2.1/{path}", as_="admin").status_code == 404, path
    r = api.post(
        "/compute/v2.1/os-keypairs",
        as_="admin",
        version="2.10",
        json={"keypair": {"name": "n", "user_id": "a\x00b"}},
    )
    assert r.status_code == 400
    for path in ("os-keypairs?user_id=a%00b", "limits?tenant_id=a%00", "flavors?marker=%00"):
        assert api.get(f"/compute/v2.1/{path}", as_="admin", version="2.35").status_code == 400, path


def test_quota_set_query_is_strict_from_275(stack: Api) -> None:
    project = stack.ids["demo_project"]
    assert stack.get(f"{QS}/{project}?bogus=1", version="2.74").status_code == 200
    assert stack.get(f"{QS}/{project}?bogus=1", version="2.75").status_code == 400
    assert stack.get(f"{QS}/{project}?user_id={stack.ids['demo_user']}", version="2.75").status_code == 200


def test_every_class_value_round_trips_at_21(stack: Api) -> None:
    """As Tempest's default-quota-class update does: every shown value + 100, read back."""
    body = stack.get(f"{QC}/default", as_="admin").json()["quota_class_set"]
    assert body.pop("id") == "default"
    wanted = {k: v + 100 for k, v in body.items()}
    r = stack.put(f"{QC}/default", as_="admin", json={"quota_class_set": wanted})
    assert r.status_code == 200
    assert r.json()["quota_class_set"] == wanted
    shown = stack.get(f"{QC}/default", as_="admin").json()["quota_class_set"]
    assert shown == {"id": "default", **wanted}
    assert shown["floating_ips"] == 99
    # legacy values are stored but never enforced; they also show in 2.1 limits
    assert stack.get("/compute/v2.1/limits").json()["limits"]["absolute"]["maxTotalFloatingIps"] == 99

"""Placement resource classes (issue 19, item 10): ``openstack resource class create/set/delete``
send ``POST /resource_classes``, ``PUT /resource_classes/{name}`` and ``DELETE``; they used to
answer 405. Placement's microversion rules: PUT renames at 1.2-1.6 and creates-or-confirms from
1.7; standard classes cannot be changed (400), a class with inventory cannot go (409)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

P = "/placement"
RC = P + "/resource_classes"


def h(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"placement {version}"}


@pytest.fixture
def cloud(stack_factory: Any) -> Api:
    return stack_factory(fake_hosts=1)  # type: ignore[no-any-return]


def names(api: Api) -> list[str]:
    r = api.get(RC, as_="admin", headers=h("1.2"))
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["resource_classes"]]


def error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    return str(r.json()["errors"][0]["detail"])


def test_create_show_and_delete_a_custom_class(cloud: Api) -> None:
    r = cloud.post(RC, as_="admin", headers=h("1.2"), json={"name": "CUSTOM_FPGA_X"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "http://testserver/placement/resource_classes/CUSTOM_FPGA_X"
    assert r.content == b""
    assert "CUSTOM_FPGA_X" in names(cloud) and names(cloud)[0] == "VCPU"
    shown = cloud.get(f"{RC}/CUSTOM_FPGA_X", as_="admin", headers=h("1.2")).json()
    assert shown == {
        "name": "CUSTOM_FPGA_X",
        "links": [{"rel": "self", "href": "/placement/resource_classes/CUSTOM_FPGA_X"}],
    }
    assert "already exists: CUSTOM_FPGA_X" in error(
        cloud.post(RC, as_="admin", headers=h("1.2"), json={"name": "CUSTOM_FPGA_X"}), 409
    )
    assert cloud.delete(f"{RC}/CUSTOM_FPGA_X", as_="admin", headers=h("1.2")).status_code == 204
    assert "No such resource class CUSTOM_FPGA_X" in error(
        cloud.get(f"{RC}/CUSTOM_FPGA_X", as_="admin", headers=h("1.2")), 404
    )
    assert "No such resource class" in error(
        cloud.delete(f"{RC}/CUSTOM_FPGA_X", as_="admin", headers=h("1.2")), 404
    )


@pytest.mark.parametrize(
    "body", [{"name": "VCPU"}, {"name": "CUSTOM_lower"}, {"name": "CUSTOM_" + "X" * 250}, {}, {"name": 1}]
)
def test_create_refuses_names_that_are_not_custom(cloud: Api, body: dict[str, Any]) -> None:
    error(cloud.post(RC, as_="admin", headers=h("1.2"), json=body), 400)


def test_writes_follow_microversions_and_need_admin(cloud: Api) -> None:
    # before 1.2 there are no resource classes at all
    assert cloud.post(RC, as_="admin", headers=h("1.1"), json={"name": "CUSTOM_A"}).status_code == 404
    assert cloud.post(RC, headers=h("1.2"), json={"name": "CUSTOM_A"}).status_code == 403
    assert cloud.put(f"{RC}/CUSTOM_A", headers=h("1.7")).status_code == 403
    assert cloud.delete(f"{RC}/VCPU", headers=h("1.7")).status_code == 403
    assert "CUSTOM_A" not in names(cloud)


def test_put_creates_or_confirms_from_1_7(cloud: Api) -> None:
    r = cloud.put(f"{RC}/CUSTOM_NEW", as_="admin", headers=h("1.7"))
    assert r.status_code == 201 and r.content == b""
    assert r.headers["location"].endswith("/placement/resource_classes/CUSTOM_NEW")
    assert cloud.put(f"{RC}/CUSTOM_NEW", as_="admin", headers=h("1.7")).status_code == 204
    error(cloud.put(f"{RC}/VCPU", as_="admin", headers=h("1.7")), 400)
    error(cloud.put(f"{RC}/custom_low", as_="admin", headers=h("1.7")), 400)
    assert "CUSTOM_NEW" in names(cloud)


def test_put_renames_before_1_7(cloud: Api) -> None:
    cloud.post(RC, as_="admin", headers=h("1.2"), json={"name": "CUSTOM_OLD"})
    r = cloud.put(f"{RC}/CUSTOM_OLD", as_="admin", headers=h("1.6"), json={"name": "CUSTOM_RENAMED"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "CUSTOM_RENAMED"
    assert "CUSTOM_OLD" not in names(cloud) and "CUSTOM_RENAMED" in names(cloud)
    assert "Cannot update standard resource class VCPU" in error(
        cloud.put(f"{RC}/VCPU", as_="admin", headers=h("1.6"), json={"name": "CUSTOM_V"}), 400
    )
    cloud.post(RC, as_="admin", headers=h("1.2"), json={"name": "CUSTOM_TAKEN"})
    error(
        cloud.put(f"{RC}/CUSTOM_RENAMED", as_="admin", headers=h("1.6"), json={"name": "CUSTOM_TAKEN"}), 409
    )
    error(cloud.put(f"{RC}/CUSTOM_NOPE", as_="admin", headers=h("1.6"), json={"name": "CUSTOM_Z"}), 404)
    error(cloud.put(f"{RC}/CUSTOM_RENAMED", as_="admin", headers=h("1.6"), json={}), 400)


def test_standard_and_in_use_classes_cannot_be_deleted(cloud: Api) -> None:
    assert "Cannot delete standard resource class VCPU" in error(
        cloud.delete(f"{RC}/VCPU", as_="admin", headers=h("1.2")), 400
    )
    cloud.post(RC, as_="admin", headers=h("1.2"), json={"name": "CUSTOM_GPU"})
    rp = cloud.get(f"{P}/resource_providers", as_="admin", headers=h("1.2")).json()["resource_providers"][0]
    inv = f"{P}/resource_providers/{rp['uuid']}/inventories"
    current = cloud.get(inv, as_="admin").json()
    new = {**current["inventories"], "CUSTOM_GPU": {"total": 2}}
    gen = current["resource_provider_generation"]
    r = cloud.put(inv, as_="admin", json={"resource_provider_generation": gen, "inventories": new})
    assert r.status_code == 200, r.text
    assert "Class is in use in inventory" in error(
        cloud.delete(f"{RC}/CUSTOM_GPU", as_="admin", headers=h("1.2")), 409
    )
    assert cloud.delete(f"{inv}/CUSTOM_GPU", as_="admin").status_code == 204
    assert cloud.delete(f"{RC}/CUSTOM_GPU", as_="admin", headers=h("1.2")).status_code == 204
    assert "CUSTOM_GPU" not in names(cloud)

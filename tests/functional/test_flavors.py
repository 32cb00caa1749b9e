"""Flavors through the compute API: exact views per microversion, visibility, filters, paging,
admin management, extra specs and project access."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from novalite.db.models.catalog import Flavor
from tests.conftest import Api

FL = "/compute/v2.1/flavors"
DETAIL_21 = {
    "id",
    "name",
    "links",
    "ram",
    "disk",
    "swap",
    "vcpus",
    "OS-FLV-EXT-DATA:ephemeral",
    "os-flavor-access:is_public",
    "OS-FLV-DISABLED:disabled",
    "rxtx_factor",
}


def _create(stack: Api, name: str, version: str = "2.1", **fields: Any) -> Any:
    body = {"name": name, "ram": 256, "vcpus": 1, "disk": 1, **fields}
    return stack.post(FL, as_="admin", version=version, json={"flavor": body})


def _names(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [f["name"] for f in r.json()["flavors"]]


def test_classic_flavors_are_seeded(stack: Api) -> None:
    r = stack.get(f"{FL}/detail")
    sizes = {f["id"]: (f["name"], f["ram"], f["vcpus"], f["disk"]) for f in r.json()["flavors"]}
    assert sizes == {
        "1": ("m1.tiny", 512, 1, 1),
        "2": ("m1.small", 2048, 1, 20),
        "3": ("m1.medium", 4096, 2, 40),
        "4": ("m1.large", 8192, 4, 80),
        "5": ("m1.xlarge", 16384, 8, 160),
    }
    tiny = stack.get(f"{FL}/1").json()["flavor"]
    assert tiny["links"] == [
        {"rel": "self", "href": "http://testserver/compute/v2.1/flavors/1"},
        {"rel": "bookmark", "href": "http://testserver/compute/flavors/1"},
    ]


@pytest.mark.parametrize(
    "version,extra",
    [
        ("2.1", set()),
        ("2.54", set()),
        ("2.55", {"description"}),
        ("2.60", {"description"}),
        ("2.61", {"description", "extra_specs"}),
        ("2.96", {"description", "extra_specs"}),
    ],
)
def test_detail_view_keys_per_version(stack: Api, version: str, extra: set[str]) -> None:
    for flavor in stack.get(f"{FL}/detail", version=version).json()["flavors"]:
        assert set(flavor) == DETAIL_21 | extra
    assert set(stack.get(f"{FL}/2", version=version).json()["flavor"]) == DETAIL_21 | extra


@pytest.mark.parametrize(
    "version,keys", [("2.54", {"id", "name", "links"}), ("2.55", {"id", "name", "links", "description"})]
)
def test_summary_view_keys(stack: Api, version: str, keys: set[str]) -> None:
    assert all(set(f) == keys for f in stack.get(FL, version=version).json()["flavors"])


def test_swap_is_empty_string_before_275(stack: Api) -> None:
    assert stack.get(f"{FL}/1", version="2.74").json()["flavor"]["swap"] == ""
    assert stack.get(f"{FL}/1", version="2.75").json()["flavor"]["swap"] == 0
    assert _create(stack, "swappy", swap=512).status_code == 200
    swappy = [f for f in stack.get(f"{FL}/detail", version="2.74").json()["flavors"] if f["name"] == "swappy"]
    assert swappy[0]["swap"] == 512


def test_show_by_name_or_unknown_is_plain_404(stack: Api) -> None:
    r = stack.get(f"{FL}/m1.tiny", version="2.61")
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {"code": 404, "message": "Flavor m1.tiny could not be found."}}


def test_admin_creates_and_deletes(stack: Api) -> None:
    r = _create(
        stack,
        "custom",
        version="2.61",
        id="c1",
        ram="1024",
        vcpus=2,
        disk=10,
        **{"OS-FLV-EXT-DATA:ephemeral": 5, "swap": 128, "rxtx_factor": 2.0},
    )
    assert r.status_code == 200, r.text
    flavor = r.json()["flavor"]
    assert (flavor["id"], flavor["ram"], flavor["vcpus"], flavor["disk"]) == ("c1", 1024, 2, 10)
    assert flavor["OS-FLV-EXT-DATA:ephemeral"] == 5 and flavor["swap"] == 128 and flavor["rxtx_factor"] == 2.0
    assert flavor["extra_specs"] == {} and flavor["description"] is None
    assert "custom" in _names(stack.get(FL))
    assert stack.delete(f"{FL}/c1").status_code == 403
    assert stack.delete(f"{FL}/c1", as_="admin").status_code == 202
    assert stack.get(f"{FL}/c1").status_code == 404
    assert stack.delete(f"{FL}/c1", as_="admin").status_code == 404


def test_create_without_id_gets_a_uuid_and_numeric_id_becomes_string(stack: Api) -> None:
    r = _create(stack, "auto")
    assert len(r.json()["flavor"]["id"]) == 36
    assert _create(stack, "numeric", id=42).json()["flavor"]["id"] == "42"


def test_duplicates_are_409(stack: Api) -> None:
    r = _create(stack, "m1.tiny")
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == "Flavor with name m1.tiny already exists."
    r = _create(stack, "other", id="1")
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == "Flavor with ID 1 already exists."


def test_member_cannot_manage_flavors(stack: Api) -> None:
    r = stack.post(FL, json={"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}})
    assert r.status_code == 403
    assert "os_compute_api:os-flavor-manage:create" in r.json()["forbidden"]["message"]


@pytest.mark.parametrize(
    "fields",
    [
        {"ram": "abc"},
        {"ram": 0},
        {"ram": -1},
        {"vcpus": 0},
        {"disk": -1},
        {"ram": ""},
        {"ram": 2**31},
        {"name": ""},
        {"name": "x" * 256},
        {"name": " lead"},
        {"name": "trail "},
        {"id": "bad/id"},
        {"rxtx_factor": 0},
        {"rxtx_factor": "fast"},
        {"swap": -5},
        {"os-flavor-access:is_public": "maybe"},
        {"unknown": 1},
        {"description": "not before 2.55"},
        {"ram": True},
    ],
)
def test_invalid_create_bodies_are_400(stack: Api, fields: dict[str, Any]) -> None:
    body = {"name": "bad", "ram": 64, "vcpus": 1, "disk": 1, **fields}
    r = stack.post(FL, as_="admin", json={"flavor": body})
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["code"] == 400


def test_missing_fields_and_malformed_json_are_400(stack: Api) -> None:
    assert (
        stack.post(FL, as_="admin", json={"flavor": {"name": "x", "ram": 1, "vcpus": 1}}).status_code == 400
    )
    assert stack.post(FL, as_="admin", json={}).status_code == 400
    r = stack.post(FL, as_="admin", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_description_from_255_and_update(stack: Api) -> None:
    r = _create(stack, "described", version="2.55", id="d1", description="first")
    assert r.status_code == 200, r.text
    assert r.json()["flavor"]["description"] == "first"
    body = {"flavor": {"description": "second"}}
    assert stack.put(f"{FL}/d1", as_="admin", version="2.54", json=body).status_code == 404
    r = stack.put(f"{FL}/d1", as_="admin", version="2.55", json=body)
    assert r.status_code == 200 and r.json()["flavor"]["description"] == "second"
    assert stack.put(f"{FL}/d1", version="2.55", json=body).status_code == 403
    assert (
        stack.put(f"{FL}/d1", as_="admin", version="2.55", json={"flavor": {"name": "x"}}).status_code == 400
    )
    listed = {f["id"]: f["description"] for f in stack.get(FL, version="2.55").json()["flavors"]}
    assert listed["d1"] == "second" and listed["1"] is None


def test_private_flavor_visibility_and_access(stack: Api) -> None:
    demo = stack.ids["demo_project"]
    assert _create(stack, "secret", id="p1", **{"os-flavor-access:is_public": False}).status_code == 200
    assert "secret" not in _names(stack.get(FL))
    assert stack.get(f"{FL}/p1").status_code == 404
    assert stack.get(f"{FL}/p1/os-flavor-access", as_="admin").json() == {"flavor_access": []}
    add = {"addTenantAccess": {"tenant": demo}}
    assert stack.post(f"{FL}/p1/action", json=add).status_code == 403
    r = stack.post(f"{FL}/p1/action", as_="admin", json=add)
    assert r.status_code == 200, r.text
    assert r.json() == {"flavor_access": [{"flavor_id": "p1", "tenant_id": demo}]}
    assert "secret" in _names(stack.get(FL))
    assert stack.get(f"{FL}/p1").status_code == 200
    r = stack.post(f"{FL}/p1/action", as_="admin", json=add)
    assert r.status_code == 409
    remove = {"removeTenantAccess": {"tenant": demo}}
    assert stack.post(f"{FL}/p1/action", as_="admin", json=remove).json() == {"flavor_access": []}
    assert stack.post(f"{FL}/p1/action", as_="admin", json=remove).status_code == 404
    assert stack.get(f"{FL}/p1").status_code == 404


def test_access_errors(stack: Api) -> None:
    r = stack.get(f"{FL}/1/os-flavor-access", as_="admin")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Access list not available for public flavors."
    assert stack.get(f"{FL}/1/os-flavor-access").status_code == 403
    demo = stack.ids["demo_project"]
    add = {"addTenantAccess": {"tenant": demo}}
    # 2.7: access to a public flavor is a conflict (before: accepted)
    assert stack.post(f"{FL}/1/action", as_="admin", version="2.6", json=add).status_code == 200
    assert stack.post(f"{FL}/2/action", as_="admin", version="2.7", json=add).status_code == 409
    r = stack.post(f"{FL}/1/action", as_="admin", json={"addTenantAccess": {"tenant": "no-such-project"}})
    assert r.status_code == 400
    assert stack.post(f"{FL}/1/action", as_="admin", json={"addTenantAccess": {}}).status_code == 400
    assert stack.post(f"{FL}/1/action", as_="admin", json={"fly": {}}).status_code == 400
    assert stack.post(f"{FL}/nope/action", as_="admin", json=add).status_code == 404


def test_admin_is_public_filter(stack: Api) -> None:
    _create(stack, "hidden", **{"os-flavor-access:is_public": False})
    assert "hidden" not in _names(stack.get(FL, as_="admin"))
    assert _names(stack.get(f"{FL}?is_public=false", as_="admin")) == ["hidden"]
    assert "hidden" in _names(stack.get(f"{FL}?is_public=None", as_="admin"))
    assert len(_names(stack.get(f"{FL}?is_public=None", as_="admin"))) == 6
    assert stack.get(f"{FL}?is_public=perhaps", as_="admin").status_code == 400
    # members always get public + granted, whatever they ask
    assert "hidden" not in _names(stack.get(f"{FL}?is_public=false"))
    assert len(_names(stack.get(f"{FL}?is_public=None"))) == 5


def test_disabled_flavors_leave_member_lists_only(stack: Api) -> None:
    with stack.runtime.db.session() as s:  # type: ignore[attr-defined]
        s.execute(update(Flavor).where(Flavor.flavorid == "5").values(disabled=True))
    assert "m1.xlarge" not in _names(stack.get(FL))
    assert "m1.xlarge" in _names(stack.get(FL, as_="admin"))
    r = stack.get(f"{FL}/5")
    assert r.status_code == 200 and r.json()["flavor"]["OS-FLV-DISABLED:disabled"] is True


def test_min_ram_min_disk_sorting(stack: Api) -> None:
    assert _names(stack.get(f"{FL}?minRam=4096&minDisk=50")) == ["m1.large", "m1.xlarge"]
    assert stack.get(f"{FL}?minRam=lots").status_code == 400
    assert stack.get(f"{FL}?minDisk=1.5").status_code == 400
    assert _names(stack.get(f"{FL}?minRam={10**30}")) == []
    assert len(_names(stack.get(f"{FL}?minDisk=-{10**30}"))) == 5
    assert _names(stack.get(f"{FL}?sort_key=memory_mb&sort_dir=desc"))[0] == "m1.xlarge"
    assert _names(stack.get(f"{FL}?sort_key=name")) == [
        "m1.large",
        "m1.medium",
        "m1.small",
        "m1.tiny",
        "m1.xlarge",
    ]
    assert stack.get(f"{FL}?sort_key=colour").status_code == 400
    assert stack.get(f"{FL}?sort_dir=up").status_code == 400


def test_paging_links(stack: Api) -> None:
    r = stack.get(f"{FL}/detail?limit=2")
    body = r.json()
    assert [f["id"] for f in body["flavors"]] == ["1", "2"]
    href = body["flavors_links"][0]["href"]
    assert href.startswith("http://testserver/compute/v2.1/flavors/detail?") and "marker=2" in href
    body = stack.get(f"{FL}?limit=2&marker=4").json()
    assert [f["id"] for f in body["flavors"]] == ["5"] and "flavors_links" not in body
    assert stack.get(f"{FL}?marker=zzz").status_code == 400
    assert stack.get(f"{FL}?limit=-1").status_code == 400
    assert stack.get(f"{FL}?limit=abc").status_code == 400


def test_unknown_query_parameters_from_275(stack: Api) -> None:
    assert stack.get(f"{FL}?colour=red", version="2.74").status_code == 200
    r = stack.get(f"{FL}?colour=red", version="2.75")
    assert r.status_code == 400


def test_extra_specs_crud(stack: Api) -> None:
    base = f"{FL}/1/os-extra_specs"
    assert stack.get(base).json() == {"extra_specs": {}}
    r = stack.post(base, as_="admin", json={"extra_specs": {"hw:cpu_policy": "dedicated", "k2": 5}})
    assert r.status_code == 200
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "dedicated", "k2": "5"}}
    assert stack.get(base).json()["extra_specs"] == {"hw:cpu_policy": "dedicated", "k2": "5"}
    assert stack.get(f"{base}/k2").json() == {"k2": "5"}
    r = stack.put(f"{base}/k2", as_="admin", json={"k2": "six"})
    assert r.status_code == 200 and r.json() == {"k2": "six"}
    r = stack.put(f"{base}/k2", as_="admin", json={"k3": "x"})
    assert r.status_code == 400
    assert stack.put(f"{base}/k2", as_="admin", json={"k2": "a", "k3": "b"}).status_code == 400
    assert stack.get(f"{FL}/1", version="2.61").json()["flavor"]["extra_specs"]["k2"] == "six"
    r = stack.delete(f"{base}/k2", as_="admin")
    assert r.status_code == 200
    r = stack.get(f"{base}/k2")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "Flavor 1 has no extra specs with key k2."
    assert stack.delete(f"{base}/k2", as_="admin").status_code == 404
    assert stack.post(base, json={"extra_specs": {"a": "b"}}).status_code == 403
    assert stack.put(f"{base}/a", json={"a": "b"}).status_code == 403
    assert stack.delete(f"{base}/hw:cpu_policy").status_code == 403
    assert stack.post(base, as_="admin", json={"extra_specs": {"bad/key": "v"}}).status_code == 400
    assert stack.post(base, as_="admin", json={"extra_specs": {"k": "v" * 256}}).status_code == 400
    assert stack.get(f"{FL}/nope/os-extra_specs").status_code == 404


def test_known_extra_specs_are_validated_from_286(stack: Api) -> None:
    base = f"{FL}/1/os-extra_specs"
    body = {"extra_specs": {"hw:cpu_policy": "bogus"}}
    assert stack.post(base, as_="admin", version="2.85", json=body).status_code == 200
    assert stack.post(base, as_="admin", version="2.86", json=body).status_code == 400
    ok = {"extra_specs": {"trait:HW_CPU_X86_AVX": "required", "resources:VGPU": "1", "custom:thing": "x"}}
    assert stack.post(base, as_="admin", version="2.86", json=ok).status_code == 200
    bad = {"extra_specs": {"trait:HW_CPU_X86_AVX": "please"}}
    assert stack.post(base, as_="admin", version="2.86", json=bad).status_code == 400


def test_numeric_ids_must_still_be_valid_ids(stack: Api) -> None:
    assert _create(stack, "huge", id=10**300).status_code == 400
    assert _create(stack, "float", id=1.5).json()["flavor"]["id"] == "1.5"

"""Our responses against Tempest's own response schemas: versions, flavors, key pairs, limits,
quotas, availability zones, the image proxy and error envelopes.

Every call goes through Tempest's unmodified compute service client (tests/functional/
tempest_inprocess.py), which picks the schema for the requested microversion from the client's
``schema_versions_info``, checks the exact status code and the echoed
``X-OpenStack-Nova-API-Version``, validates the body (``additionalProperties: false``) and
maps error statuses to Tempest's exceptions. A schema violation raises
``InvalidHTTPResponseBody``; a wrong status ``InvalidHttpSuccessCode``.
Servers, server groups and the admin APIs are in test_tempest_schemas_servers.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.services.compute.availability_zone_client import AvailabilityZoneClient
from tempest.lib.services.compute.flavors_client import FlavorsClient
from tempest.lib.services.compute.images_client import ImagesClient
from tempest.lib.services.compute.keypairs_client import KeyPairsClient
from tempest.lib.services.compute.limits_client import LimitsClient
from tempest.lib.services.compute.quota_classes_client import QuotaClassesClient
from tempest.lib.services.compute.quotas_client import QuotasClient
from tempest.lib.services.compute.versions_client import VersionsClient
from tempest.lib.services.image.v2.images_client import ImagesClient as GlanceImagesClient

from tests.functional.tempest_inprocess import microversion, tempest_client


def test_version_documents_match_tempest(stack: Any) -> None:
    client = tempest_client(stack, VersionsClient)
    with microversion(None):
        versions = client.list_versions()["versions"]
        assert versions[0]["id"] == "v2.0"
        for version in versions:
            self_link = next(link["href"] for link in version["links"] if link["rel"] == "self")
            doc = client.get_version_by_url(self_link)["version"]
            assert doc["id"] == version["id"]
            assert doc["media-types"]


@pytest.mark.parametrize("version", ["2.1", "2.55", "2.61", "2.75"])
def test_flavors_match_tempest(stack: Any, version: str) -> None:
    demo = tempest_client(stack, FlavorsClient)
    admin = tempest_client(stack, FlavorsClient, as_="admin")
    with microversion(version):
        assert {f["id"] for f in demo.list_flavors()["flavors"]} >= {"1", "2"}
        detail = demo.list_flavors(detail=True)["flavors"]
        assert any(f["id"] == "1" and f["ram"] == 512 for f in detail)
        assert demo.show_flavor("1")["flavor"]["name"] == "m1.tiny"
        extra = {"description": "for tempest"} if version != "2.1" else {}
        created = admin.create_flavor(name="tempest-f", ram=64, vcpus=1, disk=1, id="9001", **extra)["flavor"]
        assert created["id"] == "9001"
        if version != "2.1":
            updated = admin.update_flavor("9001", description="changed")["flavor"]
            assert updated["description"] == "changed"
        assert admin.set_flavor_extra_spec("9001", **{"hw:numa_nodes": "1"})["extra_specs"] == {
            "hw:numa_nodes": "1"
        }
        assert admin.list_flavor_extra_specs("9001")["extra_specs"] == {"hw:numa_nodes": "1"}
        assert admin.show_flavor_extra_spec("9001", "hw:numa_nodes") == {"hw:numa_nodes": "1"}
        assert admin.update_flavor_extra_spec("9001", "hw:numa_nodes", **{"hw:numa_nodes": "2"}) == {
            "hw:numa_nodes": "2"
        }
        admin.unset_flavor_extra_spec("9001", "hw:numa_nodes")
        if version >= "2.61":
            assert admin.show_flavor("9001")["flavor"]["extra_specs"] == {}
        admin.delete_flavor("9001")
        with pytest.raises(lib_exc.NotFound):
            demo.show_flavor("9001")


@pytest.mark.parametrize("version", ["2.1", "2.55", "2.61", "2.75"])
def test_flavor_access_matches_tempest(stack: Any, version: str) -> None:
    admin = tempest_client(stack, FlavorsClient, as_="admin")
    demo = tempest_client(stack, FlavorsClient)
    demo_project = stack.ids["demo_project"]
    with microversion(version):
        admin.create_flavor(
            name="private-f", ram=64, vcpus=1, disk=1, id="9002", **{"os-flavor-access:is_public": False}
        )
        with pytest.raises(lib_exc.NotFound):
            demo.show_flavor("9002")
        added = admin.add_flavor_access("9002", demo_project)["flavor_access"]
        assert {"flavor_id": "9002", "tenant_id": demo_project} in added
        assert admin.list_flavor_access("9002")["flavor_access"] == added
        assert demo.show_flavor("9002")["flavor"]["os-flavor-access:is_public"] is False
        assert admin.remove_flavor_access("9002", demo_project)["flavor_access"] == []


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.10", "2.35"])
def test_keypairs_match_tempest(stack: Any, version: str) -> None:
    demo = tempest_client(stack, KeyPairsClient)
    admin = tempest_client(stack, KeyPairsClient, as_="admin")
    typed = {} if version == "2.1" else {"type": "ssh"}
    with microversion(version):
        generated = demo.create_keypair(name="kp-gen", **typed)["keypair"]
        assert generated["private_key"].startswith("-----BEGIN")
        imported = demo.create_keypair(name="kp-imp", public_key=generated["public_key"], **typed)["keypair"]
        assert imported["fingerprint"] == generated["fingerprint"]
        names = {k["keypair"]["name"] for k in demo.list_keypairs()["keypairs"]}
        assert names == {"kp-gen", "kp-imp"}
        assert demo.show_keypair("kp-imp")["keypair"]["public_key"] == generated["public_key"]
        demo.delete_keypair("kp-imp")
        if version in ("2.10", "2.35"):
            user = stack.ids["demo_user"]
            made = admin.create_keypair(name="kp-admin", user_id=user, **typed)["keypair"]
            assert made["user_id"] == user
            assert admin.show_keypair("kp-admin", user_id=user)["keypair"]["name"] == "kp-admin"
            admin.delete_keypair("kp-admin", user_id=user)
        if version == "2.35":
            # Nova adds keypairs_links to a short page; Tempest's schema has no such key (and no
            # Tempest test pages key pairs), so the page is checked without the client.
            page = stack.get("/compute/v2.1/os-keypairs?limit=1", version=version).json()
            assert [k["keypair"]["name"] for k in page["keypairs"]] == ["kp-gen"]
            assert page["keypairs_links"][0]["rel"] == "next"
        with pytest.raises(lib_exc.NotFound):
            demo.show_keypair("kp-imp")


@pytest.mark.parametrize("version", ["2.1", "2.36", "2.39", "2.57"])
def test_limits_match_tempest(stack: Any, version: str) -> None:
    with microversion(version):
        absolute = tempest_client(stack, LimitsClient).show_limits()["limits"]["absolute"]
    assert absolute["maxTotalInstances"] > 0
    assert ("maxImageMeta" in absolute) == (version < "2.39")
    assert ("maxPersonality" in absolute) == (version < "2.57")
    assert ("maxSecurityGroups" in absolute) == (version < "2.36")


@pytest.mark.parametrize("version", ["2.1", "2.36", "2.57"])
def test_quota_sets_match_tempest(stack: Any, version: str) -> None:
    demo = tempest_client(stack, QuotasClient)
    admin = tempest_client(stack, QuotasClient, as_="admin")
    project, user = stack.ids["demo_project"], stack.ids["demo_user"]
    with microversion(version):
        shown = demo.show_quota_set(project)["quota_set"]
        assert shown["id"] == project
        assert demo.show_default_quota_set(project)["quota_set"]["instances"] == shown["instances"]
        detail = demo.show_quota_set(project, detail=True)["quota_set"]
        assert detail["instances"]["in_use"] == 0
        assert demo.show_quota_set(project, user_id=user)["quota_set"]["cores"] == shown["cores"]
        updated = admin.update_quota_set(project, instances=7, cores=13)["quota_set"]
        assert (updated["instances"], updated["cores"]) == (7, 13)
        assert admin.update_quota_set(project, user_id=user, instances=5)["quota_set"]["instances"] == 5
        admin.delete_quota_set(project)
        assert demo.show_quota_set(project)["quota_set"]["instances"] == shown["instances"]
        with pytest.raises(lib_exc.Forbidden):
            demo.update_quota_set(project, instances=100)


@pytest.mark.parametrize("version", ["2.1", "2.50", "2.57"])
def test_quota_classes_match_tempest(stack: Any, version: str) -> None:
    admin = tempest_client(stack, QuotaClassesClient, as_="admin")
    with microversion(version):
        default = admin.show_quota_class_set("default")["quota_class_set"]
        assert default["id"] == "default"
        updated = admin.update_quota_class_set("default", instances=default["instances"] + 1)[
            "quota_class_set"
        ]
        assert updated["instances"] == default["instances"] + 1
        assert "id" not in updated


def test_availability_zones_match_tempest(stack: Any) -> None:
    with microversion("2.1"):
        zones = tempest_client(stack, AvailabilityZoneClient).list_availability_zones()[
            "availabilityZoneInfo"
        ]
        assert [z["zoneName"] for z in zones] == ["nova"]
        detail = tempest_client(stack, AvailabilityZoneClient, as_="admin").list_availability_zones(
            detail=True
        )["availabilityZoneInfo"]
        assert {z["zoneName"] for z in detail} >= {"nova", "internal"}


@pytest.mark.parametrize("version", ["2.1", "2.35"])
def test_image_proxy_matches_tempest(stack: Any, version: str) -> None:
    demo = tempest_client(stack, ImagesClient)
    admin = tempest_client(stack, ImagesClient, as_="admin")
    with microversion(version):
        images = demo.list_images()["images"]
        image_id = next(i["id"] for i in images if i["name"] == "novalite-tiny")
        detail = demo.list_images(detail=True)["images"]
        assert any(i["id"] == image_id and i["status"] == "ACTIVE" for i in detail)
        assert demo.show_image(image_id)["image"]["minDisk"] >= 0
        admin.set_image_metadata(image_id, {"a": "1"})
        assert (
            admin.update_image_metadata(image_id, {"b": "2"})["metadata"].items()
            >= {"a": "1", "b": "2"}.items()
        )
        assert admin.list_image_metadata(image_id)["metadata"].items() >= {"a": "1", "b": "2"}.items()
        assert admin.show_image_metadata_item(image_id, "a")["meta"] == {"a": "1"}
        assert admin.set_image_metadata_item(image_id, "a", {"a": "3"})["meta"] == {"a": "3"}
        admin.delete_image_metadata_item(image_id, "a")
        with pytest.raises(lib_exc.NotFound):
            admin.show_image_metadata_item(image_id, "a")
        with pytest.raises(lib_exc.Forbidden):
            demo.set_image_metadata_item(image_id, "c", {"c": "1"})
    with microversion("2.36"), pytest.raises(lib_exc.NotFound):
        demo.list_images()


ERROR_CASES = [
    ("GET", "/compute/v2.1/os-keypairs/missing", None, 404, "itemNotFound"),
    ("POST", "/compute/v2.1/os-keypairs", {"keypair": {}}, 400, "badRequest"),
    ("POST", "/compute/v2.1/os-keypairs", "not json", 400, "badRequest"),
    ("GET", "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000", None, 404, "itemNotFound"),
    ("POST", "/compute/v2.1/servers", {"server": {"name": "x"}}, 400, "badRequest"),
    ("GET", "/compute/v2.1/os-hypervisors", None, 403, "forbidden"),
    # an unknown path, or a method the path does not serve, is Nova's 404 (not a 405)
    ("POST", "/compute/v2.1/os-no-such-api", {"x": {}}, 404, "itemNotFound"),
    ("DELETE", "/compute/v2.1/os-keypairs", None, 404, "itemNotFound"),
    ("DELETE", "/compute/v2.1/servers/", None, 404, "itemNotFound"),
    (
        "POST",
        "/compute/v2.1/flavors",
        {"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 1}},
        403,
        "forbidden",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "envelope"), ERROR_CASES)
def test_errors_have_tempest_content_type_and_envelope(
    stack: Any, method: str, path: str, body: Any, status: int, envelope: str
) -> None:
    kw: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    r = stack.request(method, path, version="2.1", **kw)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/json"
    assert r.headers["x-openstack-request-id"].startswith("req-")
    doc = r.json()
    assert list(doc) == [envelope]
    assert doc[envelope]["code"] == status and doc[envelope]["message"]


def test_keypair_conflict_is_tempest_conflict(stack: Any) -> None:
    demo = tempest_client(stack, KeyPairsClient)
    with microversion("2.2"):
        demo.create_keypair(name="twice")
        with pytest.raises(lib_exc.Conflict):
            demo.create_keypair(name="twice")
        with pytest.raises(lib_exc.BadRequest):
            demo.create_keypair(name="bad/name")


def test_glance_blank_image_id_is_tempest_not_found(stack: Any) -> None:
    """Tempest's ImagesNegativeTest: ``/v2/images/`` with a blank id is a 404, not the list."""
    glance = tempest_client(stack, GlanceImagesClient, service="image")
    assert any(i["name"] == "novalite-tiny" for i in glance.list_images()["images"])
    with pytest.raises(lib_exc.NotFound):
        glance.show_image("")
    with pytest.raises(lib_exc.NotFound):
        glance.delete_image("")


def test_glance_image_tasks_are_empty_for_tempest_waiters(stack: Any) -> None:
    """Tempest waits on ``GET /v2/images/{id}/tasks`` after each snapshot: no tasks, 200."""
    glance = tempest_client(stack, GlanceImagesClient, service="image")
    image_id = next(i["id"] for i in glance.list_images()["images"] if i["name"] == "novalite-tiny")
    assert glance.show_image_tasks(image_id)["tasks"] == []
    with pytest.raises(lib_exc.NotFound):
        glance.show_image_tasks("00000000-0000-0000-0000-000000000000")

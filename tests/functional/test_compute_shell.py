"""Compute API shell: version documents, negotiation, headers, fault envelope (§0)."""

from __future__ import annotations

import pytest

from tests.conftest import Api


def test_root_lists_v20_first(stack: Api) -> None:
    r = stack.client.get("/compute/")
    assert r.status_code == 200
    versions = r.json()["versions"]
    assert [v["id"] for v in versions] == ["v2.0", "v2.1"]
    assert versions[1]["min_version"] == "2.1"
    assert all(any(link["rel"] == "self" for link in v["links"]) for v in versions)
    assert "openstack-api-version" not in r.headers


def test_versioned_documents(stack: Api) -> None:
    for path in ("/compute/v2.1", "/compute/v2.1/", "/compute/v2/"):
        r = stack.get(path)
        assert r.status_code == 200, path
        assert "media-types" in r.json()["version"]


@pytest.mark.parametrize(
    "header,expected",
    [
        ({"X-OpenStack-Nova-API-Version": "2.10"}, "2.10"),
        ({"OpenStack-API-Version": "compute 2.53"}, "2.53"),
        ({"OpenStack-API-Version": "compute latest"}, None),
        ({}, "2.1"),
    ],
)
def test_negotiation_echoes_version(stack: Api, header: dict, expected: str | None) -> None:
    r = stack.get("/compute/v2.1", headers=header)
    assert r.status_code == 200
    max_version = stack.client.get("/compute/v2.1").json()["version"]["version"]
    want = expected or max_version
    assert r.headers["x-openstack-nova-api-version"] == want
    assert r.headers["openstack-api-version"] == f"compute {want}"
    assert "X-OpenStack-Nova-API-Version" in r.headers["vary"]
    assert r.headers["x-openstack-request-id"].startswith("req-")
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]


def test_bad_version_strings(stack: Api) -> None:
    r = stack.get("/compute/v2.1", headers={"X-OpenStack-Nova-API-Version": "2.x"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["code"] == 400
    r = stack.get("/compute/v2.1", headers={"X-OpenStack-Nova-API-Version": "3.0"})
    assert r.status_code == 406
    r = stack.get("/compute/v2.1", headers={"X-OpenStack-Nova-API-Version": "2.999"})
    assert r.status_code == 406
    assert r.headers["content-type"].startswith("application/json")


def test_unknown_path_is_404_in_nova_envelope(stack: Api) -> None:
    r = stack.get("/compute/v2.1/no-such-thing")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["code"] == 404

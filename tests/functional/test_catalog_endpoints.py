"""Keystone's catalog through HTTP: the volume service under ``block-storage`` with the
``volumev3`` and ``volume`` aliases; services, endpoints and regions listed and filtered; admin
writes (a new endpoint is in the next token's catalog, a disabled or deleted one is gone); members
refused with Keystone's 403; bad input 400, unknown ids 404."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_PW, Api

K = "/identity/v3"


def _token_catalog(stack: Api) -> list[dict[str, Any]]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PW}},
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = stack.client.post(f"{K}/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]["catalog"]  # type: ignore[no-any-return]


def test_block_storage_and_its_aliases_in_the_token(stack: Api) -> None:
    entries = _token_catalog(stack)
    types = [e["type"] for e in entries]
    for wanted in (
        "identity",
        "compute",
        "image",
        "network",
        "placement",
        "block-storage",
        "volumev3",
        "volume",
    ):
        assert wanted in types, types
    for alias in ("block-storage", "volumev3", "volume"):
        entry = next(e for e in entries if e["type"] == alias)
        assert {ep["interface"] for ep in entry["endpoints"]} == {"public", "internal", "admin"}
        assert {ep["url"] for ep in entry["endpoints"]} == {"http://testserver/volume/v3"}
        assert all(ep["region"] == ep["region_id"] == "RegionOne" for ep in entry["endpoints"])
    assert next(e for e in entries if e["type"] == "block-storage")["name"] == "cinder"
    compute = next(e for e in entries if e["type"] == "compute")
    assert compute["endpoints"][0]["url"] == "http://testserver/compute/v2.1"
    r = stack.get(f"{K}/auth/catalog")
    assert r.status_code == 200 and {e["type"] for e in r.json()["catalog"]} == set(types)


def test_services_and_endpoints_listed_and_filtered(stack: Api) -> None:
    services = stack.get(f"{K}/services", as_="admin").json()["services"]
    by_type = {s["type"]: s for s in services}
    assert by_type["compute"]["name"] == "nova" and by_type["compute"]["enabled"] is True
    assert by_type["block-storage"]["links"]["self"].endswith(f"/services/{by_type['block-storage']['id']}")
    assert [
        s["type"]
        for s in stack.get(f"{K}/services", params={"type": "image"}, as_="admin").json()["services"]
    ] == ["image"]
    sid = by_type["compute"]["id"]
    assert stack.get(f"{K}/services/{sid}", as_="admin").json()["service"]["type"] == "compute"
    endpoints = stack.get(f"{K}/endpoints", as_="admin").json()["endpoints"]
    assert len(endpoints) == 3 * len(services)
    public = stack.get(
        f"{K}/endpoints", params={"interface": "public", "service_id": sid}, as_="admin"
    ).json()
    assert [(e["interface"], e["url"]) for e in public["endpoints"]] == [
        ("public", "http://testserver/compute/v2.1")
    ]
    one = public["endpoints"][0]
    assert stack.get(f"{K}/endpoints/{one['id']}", as_="admin").json()["endpoint"] == one
    assert (
        stack.get(f"{K}/endpoints", params={"region_id": "Elsewhere"}, as_="admin").json()["endpoints"] == []
    )
    regions = stack.get(f"{K}/regions").json()["regions"]
    assert [r["id"] for r in regions] == ["RegionOne"]
    assert stack.get(f"{K}/regions/RegionOne").status_code == 200
    assert stack.get(f"{K}/regions/Nowhere").status_code == 404


def test_admin_writes_change_new_tokens_catalogs(stack: Api) -> None:
    r = stack.post(f"{K}/services", json={"service": {"type": "object-store", "name": "swift"}}, as_="admin")
    assert r.status_code == 201, r.text
    svc = r.json()["service"]
    ep = {
        "endpoint": {
            "service_id": svc["id"],
            "interface": "public",
            "url": "http://swift.example/v1",
            "region_id": "RegionTwo",
        }
    }
    r = stack.post(f"{K}/endpoints", json=ep, as_="admin")
    assert r.status_code == 201, r.text
    endpoint = r.json()["endpoint"]
    assert endpoint["region_id"] == "RegionTwo" and endpoint["enabled"] is True
    entry = next(e for e in _token_catalog(stack) if e["type"] == "object-store")
    assert entry["name"] == "swift" and [e["url"] for e in entry["endpoints"]] == ["http://swift.example/v1"]
    assert "RegionTwo" in [r["id"] for r in stack.get(f"{K}/regions").json()["regions"]]
    r = stack.patch(
        f"{K}/endpoints/{endpoint['id']}", json={"endpoint": {"url": "http://swift2.example/v1"}}, as_="admin"
    )
    assert r.status_code == 200 and r.json()["endpoint"]["url"] == "http://swift2.example/v1"
    r = stack.patch(f"{K}/endpoints/{endpoint['id']}", json={"endpoint": {"enabled": False}}, as_="admin")
    assert r.status_code == 200
    entry = next(e for e in _token_catalog(stack) if e["type"] == "object-store")
    assert entry["endpoints"] == []
    r = stack.patch(
        f"{K}/services/{svc['id']}", json={"service": {"name": "swift-2", "enabled": False}}, as_="admin"
    )
    assert r.status_code == 200 and r.json()["service"]["name"] == "swift-2"
    assert "object-store" not in [e["type"] for e in _token_catalog(stack)]
    # pinning a built-in endpoint's URL
    compute = stack.get(f"{K}/services", params={"type": "compute"}, as_="admin").json()["services"][0]
    internal = stack.get(
        f"{K}/endpoints", params={"service_id": compute["id"], "interface": "internal"}, as_="admin"
    ).json()["endpoints"][0]
    body = {"endpoint": {"url": "http://10.0.0.1:8774/v2.1"}}
    assert stack.patch(f"{K}/endpoints/{internal['id']}", json=body, as_="admin").status_code == 200
    urls = {
        e["interface"]: e["url"]
        for e in next(c for c in _token_catalog(stack) if c["type"] == "compute")["endpoints"]
    }
    assert urls == {
        "public": "http://testserver/compute/v2.1",
        "internal": "http://10.0.0.1:8774/v2.1",
        "admin": "http://testserver/compute/v2.1",
    }
    assert stack.delete(f"{K}/endpoints/{endpoint['id']}", as_="admin").status_code == 204
    assert stack.get(f"{K}/endpoints/{endpoint['id']}", as_="admin").status_code == 404
    assert stack.delete(f"{K}/services/{svc['id']}", as_="admin").status_code == 204
    r = stack.get(f"{K}/services/{svc['id']}", as_="admin")
    assert r.status_code == 404 and r.json()["error"]["message"] == f"Could not find service: {svc['id']}."


def test_refusals(stack: Api) -> None:
    for method, path in (("GET", "/services"), ("GET", "/endpoints"), ("POST", "/services")):
        r = stack.request(method, f"{K}{path}", json={"service": {"type": "x"}})
        assert r.status_code == 403, r.text
        assert "identity:" in r.json()["error"]["message"]
    assert stack.post(f"{K}/services", json={"service": {}}, as_="admin").status_code == 400
    assert stack.post(f"{K}/services", json={"service": {"type": 5}}, as_="admin").status_code == 400
    assert stack.post(f"{K}/services", json=[], as_="admin").status_code == 400
    sid = stack.get(f"{K}/services", as_="admin").json()["services"][0]["id"]
    bad = {"endpoint": {"service_id": sid, "interface": "sideways", "url": "http://x"}}
    assert stack.post(f"{K}/endpoints", json=bad, as_="admin").status_code == 400
    missing = {"endpoint": {"service_id": "nope", "interface": "public", "url": "http://x"}}
    r = stack.post(f"{K}/endpoints", json=missing, as_="admin")
    assert r.status_code == 404 and r.json()["error"]["message"] == "Could not find service: nope."
    assert (
        stack.post(f"{K}/endpoints", json={"endpoint": {"service_id": sid}}, as_="admin").status_code == 400
    )
    assert stack.patch(f"{K}/endpoints/nope", json={"endpoint": {}}, as_="admin").status_code == 404
    assert stack.delete(f"{K}/services/nope", as_="admin").status_code == 404

"""The compute API's read-only corners that clients and Tempest call (issue 19, item 4):
``os-simple-tenant-usage``, ``os-instance_usage_audit_log``, server diagnostics, ``os-hosts``,
``/extensions`` and ``os-tenant-networks`` — plus the regression where
``GET /servers/{id}/os-security-groups`` answered 404 from microversion 2.36 on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

V21 = "/compute/v2.1"
SERVERS = V21 + "/servers"


def boot(api: Api, name: str = "vm", *, as_: str = "demo", flavor: str = "1") -> str:
    image = api.get("/image/v2/images?name=novalite-tiny", as_=as_).json()["images"][0]["id"]
    server = {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}
    r = api.post(SERVERS, as_=as_, version="2.37", json={"server": server})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    api.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"), as_=as_)
    assert api.get(f"{SERVERS}/{sid}", as_=as_).json()["server"]["status"] == "ACTIVE"
    return sid


def fault(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    return str(next(iter(r.json().values()))["message"])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One stack for the module (each boot costs a little): two fake hosts, one demo server."""
    from fastapi.testclient import TestClient

    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade
    from tests.conftest import ADMIN_PW, DEMO_PW, make_settings

    settings = make_settings(tmp_path_factory.mktemp("reads"), fake_hosts=2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    rt = build_runtime(settings)
    report = bootstrap(rt)
    client = TestClient(create_app(rt), raise_server_exceptions=False)
    client.__enter__()
    api = Api(client=client, ids=dict(report.ids))
    api.tokens["admin"] = api.token_for("admin", ADMIN_PW, "admin")
    api.tokens["demo"] = api.token_for("demo", DEMO_PW, "demo")
    api.runtime = rt  # type: ignore[attr-defined]
    api.ids["server"] = boot(api)
    yield api
    client.__exit__(None, None, None)
    rt.db.dispose()


# --- regression: servers/{id}/os-security-groups ----------------------------------------------


@pytest.mark.parametrize("version", ["2.1", "2.36", "2.90"])
def test_server_security_groups_of_a_server_without_ports_is_an_empty_list(cloud: Api, version: str) -> None:
    """Tempest's server tests list a port-less server's groups at the newest microversion:
    Nova answers ``[]``; novalite answered 404 from 2.36 on, where only the ``os-security-groups``
    proxy (not this server sub-resource) is removed."""
    r = cloud.get(f"{SERVERS}/{cloud.ids['server']}/os-security-groups", version=version)
    assert r.status_code == 200, r.text
    assert r.json() == {"security_groups": []}
    assert cloud.get(V21 + "/os-security-groups", version=version).status_code == (
        404 if version != "2.1" else 200
    )
    fault(cloud.get(f"{SERVERS}/no-such-server/os-security-groups", version=version), 404)

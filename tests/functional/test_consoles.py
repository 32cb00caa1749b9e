"""Remote consoles (issue 19, item 5): ``POST /servers/{id}/remote-consoles`` (2.6+), the legacy
``os-get*Console`` actions (2.1-2.5), ``GET /os-console-auth-tokens/{token}`` and the serial
console proxy, a websocket that reaches the fake driver's serial port (it greets with a banner
naming the server, then echoes)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Api
from tests.functional.test_usage_and_reads import boot, delete_server, fault

V21 = "/compute/v2.1"
SERVERS = V21 + "/servers"
TOKENS = V21 + "/os-console-auth-tokens"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fastapi.testclient import TestClient

    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade
    from tests.conftest import ADMIN_PW, DEMO_PW, make_settings

    settings = make_settings(tmp_path_factory.mktemp("consoles"))
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
    api.ids["server"] = boot(api, "console-vm")
    yield api
    client.__exit__(None, None, None)
    rt.db.dispose()


def remote_console(api: Api, sid: str, protocol: str, kind: str, version: str = "2.6") -> Any:
    body = {"remote_console": {"protocol": protocol, "type": kind}}
    return api.post(f"{SERVERS}/{sid}/remote-consoles", version=version, json=body)


def token_of(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    if "path" in query:  # noVNC: the token is inside the path parameter
        query = parse_qs(urlsplit(unquote(query["path"][0])).query)
    return query["token"][0]


def test_novnc_and_serial_urls_and_their_tokens(cloud: Api) -> None:
    sid = cloud.ids["server"]
    r = remote_console(cloud, sid, "vnc", "novnc")
    assert r.status_code == 200, r.text
    console = r.json()["remote_console"]
    assert console["protocol"] == "vnc" and console["type"] == "novnc"
    assert console["url"].startswith("http://testserver/novnc/vnc_auto.html?path=%3Ftoken%3D")
    shown = cloud.get(f"{TOKENS}/{token_of(console['url'])}", as_="admin", version="2.31")
    assert shown.status_code == 200, shown.text
    assert shown.json()["console"]["instance_uuid"] == sid
    assert set(shown.json()["console"]) == {"instance_uuid", "host", "port", "internal_access_path"}

    serial = remote_console(cloud, sid, "serial", "serial").json()["remote_console"]
    assert serial["url"].startswith("ws://testserver/compute-console/?token=")
    # before 2.31 only RDP tokens could be read; a non-admin may not read any
    r = cloud.get(f"{TOKENS}/{token_of(serial['url'])}", as_="admin", version="2.30")
    # Nova's own 401 (the caller's token is good): Nova's envelope and message, not Keystone's
    assert r.status_code == 401 and "not accessible" in r.json()["unauthorized"]["message"], r.text
    assert cloud.get(f"{TOKENS}/{token_of(serial['url'])}", version="2.31").status_code == 403
    assert fault(cloud.get(f"{TOKENS}/not-a-token", as_="admin", version="2.31"), 404) == "Token not found"


def test_legacy_actions_below_2_6(cloud: Api) -> None:
    sid = cloud.ids["server"]
    r = cloud.post(f"{SERVERS}/{sid}/action", version="2.5", json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status_code == 200, r.text
    assert r.json()["console"]["type"] == "novnc" and "token" in r.json()["console"]["url"]
    r = cloud.post(f"{SERVERS}/{sid}/action", json={"os-getSerialConsole": {"type": "serial"}})
    assert r.status_code == 200 and r.json()["console"]["url"].startswith("ws://")
    # the fake driver has no SPICE; RDP is gone from Nova; a type the action does not take
    spice = cloud.post(f"{SERVERS}/{sid}/action", json={"os-getSPICEConsole": {"type": "spice-html5"}})
    assert fault(spice, 400) == "Unavailable console type spice-html5."
    rdp = cloud.post(f"{SERVERS}/{sid}/action", json={"os-getRDPConsole": {"type": "rdp-html5"}})
    assert fault(rdp, 400) == "Unavailable console type rdp-html5."
    assert (
        cloud.post(f"{SERVERS}/{sid}/action", json={"os-getVNCConsole": {"type": "serial"}}).status_code
        == 400
    )
    # from 2.6 on the actions are gone, and remote-consoles is the way
    gone = cloud.post(f"{SERVERS}/{sid}/action", version="2.6", json={"os-getVNCConsole": {"type": "novnc"}})
    assert gone.status_code == 404
    assert remote_console(cloud, sid, "vnc", "novnc", version="2.5").status_code == 404


def test_refusals(cloud: Api) -> None:
    sid = cloud.ids["server"]
    assert fault(remote_console(cloud, sid, "vnc", "serial"), 400) == "Invalid console type serial"
    assert fault(remote_console(cloud, sid, "spice", "spice-html5"), 400) == (
        "Unavailable console type spice-html5."
    )
    assert remote_console(cloud, sid, "mks", "webmks", version="2.6").status_code == 400  # 2.8: mks
    assert fault(remote_console(cloud, sid, "mks", "webmks", version="2.8"), 400) == (
        "Unavailable console type webmks."
    )
    assert remote_console(cloud, sid, "vnc", "bogus").status_code == 400
    assert cloud.post(f"{SERVERS}/{sid}/remote-consoles", version="2.6", json={}).status_code == 400
    missing = "6f2d1e0c-0000-4000-8000-000000000000"
    assert remote_console(cloud, missing, "vnc", "novnc").status_code == 404
    assert remote_console(cloud, sid, "vnc", "novnc").status_code == 200

    image = cloud.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    slow = {"name": "building", "imageRef": image, "flavorRef": "1", "networks": "none"}
    slow["metadata"] = {"novalite:build_delay": "60"}
    building = cloud.post(SERVERS, version="2.37", json={"server": slow}).json()["server"]["id"]
    assert fault(remote_console(cloud, building, "vnc", "novnc"), 409) == f"Instance {building} is not ready"
    delete_server(cloud, building)

    stopped = boot(cloud, "stopped")
    assert cloud.post(f"{SERVERS}/{stopped}/action", json={"os-stop": None}).status_code == 202
    cloud.wait_for(f"{SERVERS}/{stopped}", lambda r: r.json()["server"]["status"] == "SHUTOFF")
    assert (
        fault(remote_console(cloud, stopped, "serial", "serial"), 409) == f"Instance {stopped} is not ready"
    )
    delete_server(cloud, stopped)


def test_serial_console_websocket_greets_and_echoes(cloud: Api) -> None:
    sid = cloud.ids["server"]
    url = remote_console(cloud, sid, "serial", "serial").json()["remote_console"]["url"]
    path = urlsplit(url).path + "?" + urlsplit(url).query
    with pytest.raises(WebSocketDisconnect):  # a page of another site may not open it
        with cloud.client.websocket_connect(path, headers={"Origin": "http://elsewhere.example"}):
            pass
    with cloud.client.websocket_connect(
        path, subprotocols=["binary"], headers={"Origin": "http://testserver"}
    ) as ws:
        assert ws.accepted_subprotocol == "binary"
        banner = b""
        while b"\n" not in banner:
            banner += ws.receive_bytes()
        assert b"console-vm" in banner and sid.encode() in banner
        ws.send_bytes(b"hello\r\n")
        echoed = b""
        while b"hello" not in echoed:
            echoed += ws.receive_bytes()


def test_websocket_refuses_bad_tokens_and_deleting_the_server_ends_its_tokens(cloud: Api) -> None:
    with pytest.raises(WebSocketDisconnect):
        with cloud.client.websocket_connect("/compute-console/?token=nope"):
            pass
    sid = boot(cloud, "short-lived")
    url = remote_console(cloud, sid, "serial", "serial").json()["remote_console"]["url"]
    novnc = remote_console(cloud, sid, "vnc", "novnc").json()["remote_console"]["url"]
    with pytest.raises(WebSocketDisconnect):  # a noVNC token does not open the serial proxy
        with cloud.client.websocket_connect(f"/compute-console/?token={token_of(novnc)}"):
            pass
    delete_server(cloud, sid)
    assert cloud.get(f"{TOKENS}/{token_of(url)}", as_="admin", version="2.31").status_code == 404
    with pytest.raises(WebSocketDisconnect):
        with cloud.client.websocket_connect(f"/compute-console/?token={token_of(url)}"):
            pass


def test_expired_tokens_are_not_found(cloud: Api) -> None:
    rt = cloud.runtime  # type: ignore[attr-defined]
    rt.settings.console_token_ttl = 0
    try:
        url = remote_console(cloud, cloud.ids["server"], "serial", "serial").json()["remote_console"]["url"]
    finally:
        rt.settings.console_token_ttl = 600
    assert cloud.get(f"{TOKENS}/{token_of(url)}", as_="admin", version="2.31").status_code == 404

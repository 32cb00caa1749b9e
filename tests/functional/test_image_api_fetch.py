"""A QEMU host's image fetch over the Image API (services/image_source.py, virt/qemu/image_api.py),
against the in-process API (its ASGI app through httpx) and no QEMU: the image cache gets the
verified data; a checksum mismatch, a 404, an unreachable API, refused credentials and a download
cut half-way leave nothing behind; a revoked token is replaced once; a token is renewed before it
expires; concurrent builds of one image download it once."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from novalite.services import image_source
from novalite.virt.driver import BuildAbort, DriverError
from novalite.virt.qemu import image_api
from novalite.virt.qemu.images import ImageCache, base_name
from tests.conftest import Api, free_port
from tests.functional.test_images import create, upload

SERVICE_PW = "svc-secret"


@pytest.fixture
def api(stack_factory: Any) -> Api:
    return stack_factory(service_user_password=SERVICE_PW)  # type: ignore[no-any-return]


def _fetcher(api: Api, **user: str) -> image_api.ImageApiFetch:
    """The fetch a compute host builds, with the test client as its HTTP client (same app)."""
    settings = api.runtime.settings  # type: ignore[attr-defined]
    creds = image_api.ServiceUser(
        username=user.get("username", "nova"),
        password=user.get("password", SERVICE_PW),
        project_name="service",
    )
    token = image_api.ServiceToken(creds, api.client)
    return image_api.ImageApiFetch(
        image_source.endpoints_for(settings, api.runtime.db),  # type: ignore[attr-defined]
        token,
        api.client,
        chunk_size=64 * 1024,
    )


def _image(api: Api, data: bytes) -> dict[str, Any]:
    """A private image of the demo project (the service user reads it as an admin)."""
    image = create(api, name=f"img-{uuid.uuid4().hex[:6]}")
    assert upload(api, image["id"], data).status_code == 204
    return api.get(f"/image/v2/images/{image['id']}", as_="demo").json()  # type: ignore[no-any-return]


def _leftovers(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir() if not p.name.endswith(".lock"))


def test_the_catalog_gives_the_image_and_identity_endpoints(api: Api) -> None:
    settings = api.runtime.settings  # type: ignore[attr-defined]
    api.get("/image/v2/images", as_="demo")  # the catalog is written on the app's first use
    urls = image_source.endpoints_for(settings, api.runtime.db)()  # type: ignore[attr-defined]
    assert urls == image_api.Endpoints(identity="http://testserver/identity", image="http://testserver/image")
    settings.image_api_url = "https://images.example.com/image"
    urls = image_source.endpoints_for(settings, api.runtime.db)()  # type: ignore[attr-defined]
    assert urls.image == "https://images.example.com/image"
    assert urls.identity == "http://testserver/identity"


def test_a_private_image_is_fetched_verified_into_the_cache(api: Api, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    image = _image(api, data)
    assert image["os_hash_algo"] == "sha512"
    fetch = _fetcher(api)
    cache = ImageCache(tmp_path / "instances", fetch)
    path = cache.ensure_file(image)
    assert path.read_bytes() == data
    assert _leftovers(cache) == [path.name]
    assert fetch.token.issued == 1
    cache.ensure_file(image)  # cached: no second download, no second token
    assert fetch.token.issued == 1


def test_checksum_mismatch_leaves_nothing(api: Api, tmp_path: Path) -> None:
    image = _image(api, b"the real data" * 1000)
    wrong = dict(image, os_hash_value=hashlib.sha512(b"something else").hexdigest())
    cache = ImageCache(tmp_path / "instances", _fetcher(api))
    with pytest.raises(BuildAbort, match="does not match its checksum"):
        cache.ensure_file(wrong)
    assert _leftovers(cache) == []
    md5_only = {"id": image["id"], "checksum": hashlib.md5(b"other").hexdigest()}
    with pytest.raises(BuildAbort, match="md5"):
        cache.ensure_file(md5_only)
    assert _leftovers(cache) == []


def test_an_image_without_data_is_a_build_abort_naming_the_404(api: Api, tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "instances", _fetcher(api))
    missing = str(uuid.uuid4())
    with pytest.raises(BuildAbort, match=f"Could not download image {missing}: .*HTTP 404"):
        cache.ensure_file({"id": missing})
    assert _leftovers(cache) == []


def test_a_revoked_token_is_replaced_once(api: Api, tmp_path: Path) -> None:
    first, second = _image(api, b"a" * 5000), _image(api, b"b" * 7000)
    fetch = _fetcher(api)
    cache = ImageCache(tmp_path / "instances", fetch)
    cache.ensure_file(first)
    token = fetch.token.get("http://testserver/identity")
    r = api.delete("/identity/v3/auth/tokens", as_="admin", headers={"X-Subject-Token": token})
    assert r.status_code == 204
    assert cache.ensure_file(second).read_bytes() == b"b" * 7000
    assert fetch.token.issued == 2


def test_a_token_is_renewed_before_it_expires(api: Api) -> None:
    now = [0.0]
    creds = image_api.ServiceUser(username="nova", password=SERVICE_PW, project_name="service")
    token = image_api.ServiceToken(creds, api.client, renew_margin_s=300, clock=lambda: now[0])
    identity = "http://testserver/identity"
    import time

    now[0] = time.time()
    first = token.get(identity)
    assert token.get(identity) == first and token.issued == 1
    now[0] += 3600 - 200  # token_ttl is 3600: within the margin of its expiry
    assert token.get(identity) != first and token.issued == 2


def test_refused_credentials_are_a_driver_error_that_says_so(api: Api, tmp_path: Path) -> None:
    image = _image(api, b"x" * 100)
    cache = ImageCache(tmp_path / "instances", _fetcher(api, password="wrong"))
    with pytest.raises(DriverError, match="refused the service user 'nova'.*HTTP 401"):
        cache.ensure_file(image)
    assert _leftovers(cache) == []


def test_an_unreachable_api_is_a_driver_error_that_says_so(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    base = f"http://127.0.0.1:{port}"
    with image_api.client() as client:
        creds = image_api.ServiceUser(username="nova", password="pw", project_name="service")
        fetch = image_api.ImageApiFetch(
            lambda: image_api.Endpoints(identity=f"{base}/identity", image=f"{base}/image"),
            image_api.ServiceToken(creds, client),
            client,
        )
        cache = ImageCache(tmp_path / "instances", fetch)
        with pytest.raises(
            DriverError, match=f"Identity API at {base}/identity/v3/auth/tokens is unreachable"
        ):
            cache.ensure_file({"id": str(uuid.uuid4()), "size": 10})
        assert _leftovers(cache) == []


class _CutShort(BaseHTTPRequestHandler):
    """A stand-in API on loopback that issues a token and then cuts every download half-way."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"token": {"expires_at": "2999-01-01T00:00:00.000000Z"}}'
        self.send_response(201)
        self.send_header("X-Subject-Token", "t1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"z" * 200_000)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cut_short() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_download_cut_half_way_leaves_no_partial_file(cut_short: str, tmp_path: Path) -> None:
    with image_api.client() as client:
        creds = image_api.ServiceUser(username="nova", password="pw", project_name="service")
        fetch = image_api.ImageApiFetch(
            lambda: image_api.Endpoints(identity=f"{cut_short}/identity", image=f"{cut_short}/image"),
            image_api.ServiceToken(creds, client),
            client,
        )
        cache = ImageCache(tmp_path / "instances", fetch)
        image_id = str(uuid.uuid4())
        with pytest.raises(DriverError, match="Image API .* is unreachable"):
            cache.ensure_file({"id": image_id})
        assert _leftovers(cache) == []
        assert not (cache.root / (base_name(image_id) + ".file")).exists()


def test_concurrent_builds_of_one_image_download_it_once(api: Api, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    image = _image(api, data)
    fetch = _fetcher(api)
    downloads: list[str] = []

    def counting(image_id: str) -> Iterator[bytes]:
        downloads.append(image_id)
        yield from fetch(image_id)

    cache = ImageCache(tmp_path / "instances", counting)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(cache.ensure_file(image).read_bytes())
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert results == [data] * 4
    assert downloads == [image["id"]]


def test_a_compute_with_api_source_needs_the_password(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, image_source="api", service_user_password="")
    with pytest.raises(image_source.ImageSourceError, match="--service-password"):
        image_source.image_fetch(settings, None)
    assert image_source.resolve(make_settings(tmp_path), split_compute=True) == "api"
    assert image_source.resolve(make_settings(tmp_path, image_dir="/srv/images"), split_compute=True) == "dir"
    assert image_source.resolve(make_settings(tmp_path), split_compute=False) == "dir"
    with pytest.raises(image_source.ImageSourceError, match="image_source must be one of"):
        image_source.resolve(make_settings(tmp_path, image_source="ftp"), split_compute=True)


def test_the_service_user_table_of_the_config_file(tmp_path: Path) -> None:
    from novalite.config import load_settings

    config = tmp_path / "c.toml"
    config.write_text('[novalite]\nport = 9000\n\n[service_user]\nusername = "compute"\npassword = "pw1"\n')
    settings = load_settings({"config": str(config)}, environ={})
    assert (settings.service_user_name, settings.service_user_password, settings.port) == (
        "compute",
        "pw1",
        9000,
    )
    flagged = load_settings({"config": str(config), "service_user_password": "pw2"}, environ={})
    assert flagged.service_user_password == "pw2"


def test_bootstrap_creates_the_service_user(api: Api) -> None:
    token = api.token_for("nova", SERVICE_PW, "service")
    r = api.client.get("/identity/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert {"admin", "service"} <= {role["name"] for role in r.json()["token"]["roles"]}

"""The real `openstack` CLI and openstacksdk against `novalite serve`: images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e


def test_cli_image_lifecycle(server: RunningServer, tmp_path: Path) -> None:
    data = b"NOVALITE-E2E" + bytes(range(256)) * 40
    source = tmp_path / "img1.raw"
    source.write_bytes(data)
    created = json.loads(
        server.openstack(
            "image",
            "create",
            "--file",
            str(source),
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "img1",
            "-f",
            "json",
        ).stdout
    )
    assert created["name"] == "img1"
    assert created["status"] == "active"

    listed = json.loads(server.openstack("image", "list", "-f", "json").stdout)
    assert {"img1", "novalite-tiny"} <= {row["Name"] for row in listed}

    shown = json.loads(server.openstack("image", "show", "img1", "-f", "json").stdout)  # by name
    assert shown["id"] == created["id"]
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["size"] == len(data)

    server.openstack("image", "set", "--property", "foo=bar", "img1")
    shown = json.loads(server.openstack("image", "show", "img1", "-f", "json").stdout)
    assert shown["properties"]["foo"] == "bar"

    saved = tmp_path / "saved.raw"
    server.openstack("image", "save", "--file", str(saved), "img1")
    assert saved.read_bytes() == data

    server.openstack("image", "delete", "img1")
    missing = server.openstack("image", "show", "img1", check=False)
    assert missing.returncode != 0
    assert "img1" not in {
        row["Name"] for row in json.loads(server.openstack("image", "list", "-f", "json").stdout)
    }


def test_sdk_lists_and_finds_the_default_image(server: RunningServer) -> None:
    conn = server.sdk()
    names = {image.name for image in conn.image.images()}
    assert "novalite-tiny" in names
    tiny = conn.image.find_image("novalite-tiny")
    assert tiny is not None
    assert tiny.status == "active"
    assert tiny.visibility == "public"
    assert tiny.disk_format == "raw"
    assert conn.image.get_image(tiny.id).checksum == tiny.checksum
    assert conn.image.find_image("no-such-image") is None


def test_sdk_pages_through_images(server: RunningServer) -> None:
    conn = server.sdk()
    made = [
        conn.image.create_image(
            name=f"page-{n}", disk_format="raw", container_format="bare", visibility="private"
        )
        for n in range(3)
    ]
    try:
        seen = [image.name for image in conn.image.images(visibility="private", limit=2, sort="name:asc")]
        assert [n for n in seen if n.startswith("page-")] == ["page-0", "page-1", "page-2"]
    finally:
        for image in made:
            conn.image.delete_image(image)

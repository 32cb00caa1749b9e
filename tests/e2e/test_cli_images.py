"""The real `openstack` CLI and openstacksdk against `novalite serve`: images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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


def _json(server: RunningServer, *args: str, cloud: str = "novalite") -> Any:
    return json.loads(server.openstack(*args, "-f", "json", cloud=cloud).stdout)


def test_cli_image_sharing_tags_and_hidden(server: RunningServer, tmp_path: Path) -> None:
    """admin shares an image with the demo project; demo accepts it and lists it with --shared."""
    source = tmp_path / "shared.raw"
    source.write_bytes(b"shared image data")
    admin = "novalite-admin"
    image = _json(
        server,
        "image", "create", "--file", str(source), "--disk-format", "raw", "--container-format", "bare",
        "--shared", "--tag", "gold", "cli-shared",
        cloud=admin,
    )  # fmt: skip
    assert image["visibility"] == "shared"
    member = _json(server, "image", "add", "project", image["id"], "demo", cloud=admin)
    assert member["status"] == "pending"
    assert "cli-shared" not in {row["Name"] for row in _json(server, "image", "list", "--shared")}

    server.openstack("image", "set", "--accept", image["id"])
    assert "cli-shared" in {row["Name"] for row in _json(server, "image", "list", "--shared")}
    assert "cli-shared" in {row["Name"] for row in _json(server, "image", "list", "--tag", "gold")}
    members = _json(server, "image", "member", "list", image["id"], cloud=admin)
    assert [row["Status"] for row in members] == ["accepted"]

    server.openstack("image", "set", "--tag", "silver", "--hidden", "cli-shared", cloud=admin)
    shown = _json(server, "image", "show", "cli-shared", cloud=admin)
    assert sorted(shown["tags"]) == ["gold", "silver"]
    assert shown["properties"]["os_hidden"] is True, shown["properties"]
    assert "cli-shared" not in {row["Name"] for row in _json(server, "image", "list", cloud=admin)}
    assert "cli-shared" in {row["Name"] for row in _json(server, "image", "list", "--hidden", cloud=admin)}

    server.openstack("image", "remove", "project", image["id"], "demo", cloud=admin)
    assert server.openstack("image", "show", image["id"], check=False).returncode != 0


def test_cli_image_create_import_and_image_import(server: RunningServer, tmp_path: Path) -> None:
    data = b"imported through glance-direct " * 100
    source = tmp_path / "imported.raw"
    source.write_bytes(data)
    assert "glance-direct" in _json(server, "image", "import", "info")["import-methods"]
    server.openstack(
        "image", "create", "--import", "--file", str(source), "--disk-format", "raw",
        "--container-format", "bare", "cli-imported",
    )  # fmt: skip
    shown = _json(server, "image", "show", "cli-imported")
    assert shown["status"] == "active"
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["size"] == len(data)

    # the two steps by hand: stage, then import (the image made by the SDK: `image create` without
    # --file would upload whatever its stdin holds)
    staged = server.sdk().image.create_image(name="cli-staged", disk_format="raw", container_format="bare")
    server.openstack("image", "stage", "--file", str(source), staged.id)
    assert _json(server, "image", "show", staged.id)["status"] == "uploading"
    server.openstack("image", "import", "--method", "glance-direct", staged.id)
    shown = _json(server, "image", "show", staged.id)
    assert (shown["status"], shown["checksum"]) == ("active", hashlib.md5(data).hexdigest())

"""JSON shapes of the Image API: one image, a page of images, the version list and schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from novalite.db.models.image import IMAGE_STATUSES, VISIBILITIES, Image
from novalite.image.fields import CONTAINER_FORMATS, DISK_FORMATS

CURRENT_MINOR = 16


def iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def image_view(image: Image) -> dict[str, Any]:
    """An image as Glance v2 shows it: core attributes, then free-form properties at top level."""
    body: dict[str, Any] = dict(image.properties)
    body.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "owner": image.owner,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "created_at": iso(image.created_at),
            "updated_at": iso(image.updated_at),
            "tags": image.tags,
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    return body


def list_view(images: list[Image], params: list[tuple[str, str]], more: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "images": [image_view(i) for i in images],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if more and images:
        kept = [(k, v) for k, v in params if k != "marker"] + [("marker", images[-1].id)]
        body["next"] = f"/v2/images?{urlencode(kept)}"
    return body


def versions_view(public_url: str) -> dict[str, Any]:
    href = f"{public_url}/image/v2/"
    versions = [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == CURRENT_MINOR else "SUPPORTED",
            "links": [{"rel": "self", "href": href}],
        }
        for minor in range(CURRENT_MINOR, -1, -1)
    ]
    return {"versions": versions}


def _nullable_enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": ["null", "string"], "enum": [None, *values]}


def image_schema() -> dict[str, Any]:
    """GET /v2/schemas/image: what clients use to tell core attributes from properties."""
    date = {"type": "string", "readOnly": True}
    link = {"type": "string", "readOnly": True}
    props: dict[str, Any] = {
        "id": {
            "type": "string",
            "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
            "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
        },
        "name": {"type": ["null", "string"], "maxLength": 255},
        "status": {"type": "string", "readOnly": True, "enum": list(IMAGE_STATUSES)},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
        "owner": {"type": ["null", "string"], "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": _nullable_enum(CONTAINER_FORMATS),
        "disk_format": _nullable_enum(DISK_FORMATS),
        "created_at": date,
        "updated_at": date,
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": link,
        "file": link,
        "schema": link,
    }
    return {
        "name": "image",
        "properties": props,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }

"""Glance's interoperable image import: discovery, ``stage`` and ``import``.

The image service presents itself as Glance with one enabled backend, ``local`` (the data
directory), which is also the default store, and two import methods:

- ``glance-direct``: ``PUT /v2/images/{id}/stage`` moves a ``queued`` image to ``uploading``
  and keeps the data aside; ``POST /v2/images/{id}/import`` then makes it ``active`` with its
  size and hashes, exactly as a direct upload would. The import runs before the 202 answers
  (Glance answers first and works in a task): a client that waits for ``active`` sees it at once.
- ``copy-image`` (admin only, as Glance's ``copy_image`` rule): copies an active image to other
  stores; with a single store there is nowhere to copy to, so ``all_stores`` answers 202 and
  does nothing, and naming the store answers 400 "Image is already present at store 'local'".

``web-download`` (fetching a URL from the server) is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.image import Image
from novalite.errors import BadRequest, Conflict, Forbidden, NotFound
from novalite.image import service, store

IMPORT_METHODS = ("glance-direct", "copy-image")
STORE_ID = "local"
STORE_DESCRIPTION = "The novalite data directory"


def import_info() -> dict[str, Any]:
    """GET /v2/info/import."""
    return {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": list(IMPORT_METHODS),
        }
    }


def stores_info() -> dict[str, Any]:
    """GET /v2/info/stores ("default" is the string "true", as Glance writes it)."""
    return {"stores": [{"id": STORE_ID, "description": STORE_DESCRIPTION, "default": "true"}]}


def stores_detail(data_dir: str) -> dict[str, Any]:
    """GET /v2/info/stores/detail (admin): the store's type and properties."""
    detail = dict(stores_info()["stores"][0])
    detail.update(
        {
            "type": "file",
            "properties": {"data_dir": data_dir, "chunk_size": 65536, "thin_provisioning": False},
            "weight": 0,
        }
    )
    return {"stores": [detail]}


def create_headers() -> dict[str, str]:
    """What POST /v2/images answers besides the image: openstacksdk reads the import methods
    from here before it stages and imports (``openstack image create --import``)."""
    return {"OpenStack-image-import-methods": ",".join(IMPORT_METHODS), "OpenStack-image-store-ids": STORE_ID}


# --- stage -------------------------------------------------------------------------------------


def begin_stage(s: Session, ctx: RequestContext, image_id: str) -> None:
    """queued -> uploading as a compare-and-swap (409 from any other status)."""
    image = service.require_visible(s, ctx, image_id)
    service.require_owner(ctx, image)
    swapped = s.execute(
        update(Image)
        .where(Image.id == image.id, Image.status == "queued")
        .values(status="uploading")
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        s.refresh(image)
        raise Conflict(f"Image status transition from {image.status} to uploading is not allowed")


def finish_stage(s: Session, image_id: str, data: store.StoredData) -> None:
    """The staged data is in place: record its size (Glance shows it while ``uploading``)."""
    image = s.get(Image, image_id)
    if image is None or image.deleted or image.status != "uploading":
        raise NotFound(
            f"Image {image_id} could not be found after upload. The image may have been deleted "
            "during the upload."
        )
    image.size = data.size
    image.updated_at = utcnow()


def abort_stage(s: Session, image_id: str) -> None:
    """A stage failed half-way: back to queued so the client can try again."""
    image = s.get(Image, image_id)
    if image is not None and image.status == "uploading":
        image.status = "queued"
        image.size = None


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    method: str
    stores: list[str] | None  # None: the default store
    all_stores: bool


def parse_import(body: Any, store_header: str | None) -> ImportRequest:
    """The body of POST /v2/images/{id}/import, checked as Glance checks it (400s)."""
    if not isinstance(body, dict):
        raise BadRequest("Import request requires a 'method' field.")
    method = body.get("method")
    if "method" not in body:
        raise BadRequest("Import request requires a 'method' field.")
    if not isinstance(method, dict) or "name" not in method:
        raise BadRequest("Import request requires a 'name' field.")
    name = method["name"]
    if not isinstance(name, str) or name not in IMPORT_METHODS:
        raise BadRequest(f"Unknown import method name '{name}'.")
    for flag, default in (("all_stores_must_succeed", True), ("all_stores", False)):
        if not isinstance(body.get(flag, default), bool):
            raise BadRequest(f"'{flag}' must be boolean value only")
    all_stores = bool(body.get("all_stores", False))
    stores = body.get("stores")
    if all_stores and ("stores" in body or store_header is not None):
        raise BadRequest(
            "All_stores parameter can't be used with x-image-meta-store header or stores parameter"
        )
    if "stores" in body and store_header is not None:
        raise BadRequest("Stores parameter and x-image-meta-store header can't be both specified")
    if stores is not None and not (isinstance(stores, list) and all(isinstance(x, str) for x in stores)):
        raise BadRequest("'stores' must be a list of store identifiers")
    if stores is None and store_header is not None:
        stores = [store_header]
    return ImportRequest(method=name, stores=stores, all_stores=all_stores)


def _check_status(image: Image, method: str) -> None:
    if image.status == "active" and method != "copy-image":
        raise Conflict("Image with status active cannot be target for import")
    if image.status != "active" and method == "copy-image":
        raise Conflict("Only images with status active can be targeted for copying")
    if image.status != "uploading" and method == "glance-direct":
        raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
    if not image.container_format:
        raise Conflict("'container_format' needs to be set before import")
    if not image.disk_format:
        raise Conflict("'disk_format' needs to be set before import")


def begin_import(s: Session, ctx: RequestContext, image_id: str, req: ImportRequest) -> bool:
    """Glance's checks in Glance's order; returns whether there is data to import (glance-direct),
    with the image moved uploading -> importing. copy-image has nothing to do with one store."""
    image = service.require_visible(s, ctx, image_id)
    _check_status(image, req.method)
    if req.method == "copy-image":
        if not ctx.is_admin:
            raise Forbidden("You are not authorized to complete copy_image action.")
    else:
        service.require_owner(ctx, image)
    for name in req.stores or []:
        if name != STORE_ID:
            raise Conflict(f"Unknown scheme '{name}' found in URI")
    if req.method == "copy-image":
        if not req.all_stores:
            raise BadRequest(f"Image is already present at store '{STORE_ID}'")
        return False
    swapped = s.execute(
        update(Image)
        .where(Image.id == image.id, Image.status == "uploading")
        .values(status="importing")
        .execution_options(synchronize_session=False)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
    return True


def abort_import(s: Session, image_id: str, staged: bool) -> None:
    """The import failed: back to uploading while the staged data is still there, else queued."""
    image = s.get(Image, image_id)
    if image is not None and image.status == "importing":
        image.status = "uploading" if staged else "queued"

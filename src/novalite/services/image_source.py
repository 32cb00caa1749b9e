"""Where a QEMU host's image data comes from (``image_source``).

* ``dir``: the image store's files, ``image_dir`` (the API's ``<data_dir>/images``, local or a
  shared mount), else this process's own store: what ``novalite serve --driver qemu`` uses.
* ``api``: ``GET /image/v2/images/{id}/file`` from the Image API with the service user's token
  (virt/qemu/image_api.py): what ``novalite compute --driver qemu`` uses when no ``--image-dir``
  is given. The Image and Identity APIs' URLs are ``image_api_url`` / ``service_user_auth_url``
  when set, else the catalog's ``image`` / ``identity`` endpoints (internal, else public) read from
  the shared database; a built-in endpoint is relative to ``public_url``, which the compute reads
  from the same config file as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from novalite.db.base import Database
from novalite.db.models.catalog import CatalogEndpoint, CatalogService
from novalite.identity.catalog import endpoint_url
from novalite.virt.qemu import image_api
from novalite.virt.qemu.images import Fetch, file_store_fetch

SOURCES = ("auto", "dir", "api")
INTERFACE_ORDER = ("internal", "public", "admin")


class ImageSourceError(ValueError):
    """The settings cannot give this host image data (the start-up stops with the message)."""


def resolve(settings: Any, *, split_compute: bool) -> str:
    """``dir`` or ``api``: ``auto`` is ``api`` for a ``novalite compute`` without ``image_dir``."""
    source = str(settings.image_source or "auto").lower()
    if source not in SOURCES:
        raise ImageSourceError(f"image_source must be one of {', '.join(SOURCES)}, not {source!r}")
    if source == "auto":
        return "api" if split_compute and not settings.image_dir else "dir"
    return source


def image_fetch(settings: Any, db: Database | None) -> Fetch:
    """The driver's ``fetch`` for ``settings.image_source`` (already resolved to dir or api)."""
    from novalite.services.startup import image_dir

    if resolve(settings, split_compute=False) == "dir":
        return file_store_fetch(image_dir(settings))
    check_credentials(settings)
    if db is None and not (settings.image_api_url and settings.service_user_auth_url):
        raise ImageSourceError("image_api_url and service_user_auth_url are needed without a database")
    client = image_api.client()
    token = image_api.ServiceToken(image_api.auth_settings(settings), client)
    return image_api.ImageApiFetch(endpoints_for(settings, db), token, client)


def check_credentials(settings: Any) -> None:
    if not settings.service_user_password:
        raise ImageSourceError(
            f"fetching images over the Image API needs the password of the service user "
            f"{settings.service_user_name!r}: give --service-password, NOVALITE_SERVICE_USER_PASSWORD "
            "or [service_user] password in the config file (the API's bootstrap printed or was given it)"
        )


def endpoints_for(settings: Any, db: Database | None) -> Callable[[], image_api.Endpoints]:
    def endpoints() -> image_api.Endpoints:
        return image_api.Endpoints(
            identity=settings.service_user_auth_url or _catalog_url(settings, db, "identity"),
            image=settings.image_api_url or _catalog_url(settings, db, "image"),
        )

    return endpoints


def _catalog_url(settings: Any, db: Database | None, service_type: str) -> str:
    """The catalog's endpoint of ``service_type``: this region's first, internal before public."""
    if db is None:
        raise RuntimeError(f"no {service_type} endpoint configured")
    with db.reader() as s:
        rows = s.execute(
            select(CatalogEndpoint)
            .join(CatalogService, CatalogService.id == CatalogEndpoint.service_id)
            .where(
                CatalogService.type == service_type,
                CatalogService.enabled.is_(True),
                CatalogEndpoint.enabled.is_(True),
            )
        ).scalars()
        ranked = sorted(
            rows,
            key=lambda ep: (
                ep.region_id not in (None, settings.region),
                INTERFACE_ORDER.index(ep.interface) if ep.interface in INTERFACE_ORDER else 9,
                ep.id,
            ),
        )
        if not ranked:
            raise RuntimeError(
                f"the catalog has no enabled {service_type} endpoint (has the API started?); "
                f"set {'image_api_url' if service_type == 'image' else 'service_user_auth_url'}"
            )
        return endpoint_url(ranked[0], settings.effective_public_url)

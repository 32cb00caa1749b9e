"""The embedded Cinder v3 subset under /volume.

The catalog advertises ``block-storage`` at ``/volume/v3``, with the ``volumev3`` and ``volume``
aliases at the same URL (identity.catalog), as DevStack registers Cinder: current Tempest and
openstacksdk look for ``block-storage`` first, older clients for the aliases. Every v3 path also
answers with Cinder's classic project segment, ``/volume/v3/{project_id}/...``, for clients
configured with the old endpoint template.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novalite.api.common import runtime
from novalite.volume import (
    routes_actions,
    routes_attachments,
    routes_misc,
    routes_snapshot_actions,
    routes_snapshots,
    routes_types,
    routes_volumes,
)
from novalite.volume.api import MAX_VERSION, MIN_VERSION

CATALOG = ("block-storage", "cinder", "/volume/v3")

UPDATED = "2023-03-30T00:00:00Z"

v3 = APIRouter()
for _module in (
    routes_volumes,
    routes_actions,
    routes_attachments,
    routes_types,
    routes_misc,
    routes_snapshots,
    routes_snapshot_actions,
):
    v3.include_router(_module.router)

router = APIRouter()


def _v3_doc(request: Request) -> dict[str, Any]:
    base = runtime(request).public_url
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": UPDATED,
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": f"{base}/volume/v3/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    }


@router.get("/volume")
@router.get("/volume/")
def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [_v3_doc(request)]}, status_code=300)


@router.get("/volume/v3")
@router.get("/volume/v3/")
def version_v3(request: Request) -> dict[str, Any]:
    return {"versions": [_v3_doc(request)]}


router.include_router(v3, prefix="/volume/v3")
router.include_router(v3, prefix="/volume/v3/{url_project_id}")

"""The Placement REST API under ``/placement`` (admin only, as Placement's default policy).

``GET /placement/`` (no token) is the version document: one version ``v1.0`` whose
microversions run 1.0-1.39. The resources live in one module each:

* ``api_providers``   resource providers, their usages and allocations
* ``api_inventories`` inventories, provider traits, provider aggregates
* ``api_allocations`` allocations per consumer, ``/usages``
* ``api_candidates``  allocation candidates, ``/traits``
* ``api_classes``     ``/resource_classes`` (custom classes: create, rename/ensure, delete)

Microversion negotiation and the echoed ``OpenStack-API-Version`` header are in
``api_common.PlacementRoute``; errors use placement's ``{"errors": [...]}`` envelope
(``api/faults.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from novalite.api.common import runtime
from novalite.placement import api_allocations, api_candidates, api_classes, api_inventories, api_providers
from novalite.placement.api_common import MAX_VERSION, MIN_VERSION, PlacementRoute

CATALOG = ("placement", "placement", "/placement")

router = APIRouter(route_class=PlacementRoute)


def _root(request: Request) -> dict[str, Any]:
    return {
        "versions": [
            {
                "id": "v1.0",
                "max_version": str(MAX_VERSION),
                "min_version": str(MIN_VERSION),
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{runtime(request).public_url}/placement/"}],
            }
        ]
    }


@router.get("/placement")
def placement_root(request: Request) -> dict[str, Any]:
    return _root(request)


@router.get("/placement/")
def placement_root_slash(request: Request) -> dict[str, Any]:
    return _root(request)


for _module in (api_providers, api_inventories, api_allocations, api_candidates, api_classes):
    router.include_router(_module.router)

"""The flavor representation per microversion (§6.5). Every version gate for flavors' output is
here: ``swap`` is ``""`` when 0 before 2.75, ``description`` from 2.55, ``extra_specs`` from
2.61; ``OS-FLV-DISABLED:disabled`` and ``rxtx_factor`` until 2.101 (gone at 2.102)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from novalite.api.common import compute_links
from novalite.api.microversion import V, Version
from novalite.db.models.catalog import Flavor


def summary_view(request: Request, flavor: Flavor, version: Version) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.flavorid,
        "name": flavor.name,
        "links": compute_links(request, "flavors", flavor.flavorid),
    }
    if version >= V(2, 55):  # 2.55: description
        body["description"] = flavor.description
    return body


def detail_view(request: Request, flavor: Flavor, version: Version) -> dict[str, Any]:
    body = summary_view(request, flavor, version)
    body.update(
        {
            "ram": flavor.memory_mb,
            "disk": flavor.root_gb,
            "vcpus": flavor.vcpus,
            # 2.75: swap is always an integer (before: "" when there is none)
            "swap": flavor.swap if (flavor.swap or version >= V(2, 75)) else "",
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "os-flavor-access:is_public": flavor.is_public,
        }
    )
    if version < V(2, 102):  # 2.102: disabled and rxtx_factor gone
        body["OS-FLV-DISABLED:disabled"] = flavor.disabled
        body["rxtx_factor"] = flavor.rxtx_factor
    if version >= V(2, 61):  # 2.61: extra_specs
        body["extra_specs"] = dict(flavor.extra_specs)
    return body

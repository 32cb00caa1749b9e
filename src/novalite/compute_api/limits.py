"""Limits (§6.8): ``GET /limits`` — the project's absolute limits and usage; rate limits are empty.

Keys per microversion: the nova-network ones (``maxTotalFloatingIps``, ``maxSecurityGroups``,
``maxSecurityGroupRules``, ``totalFloatingIpsUsed``, ``totalSecurityGroupsUsed``) go at 2.36,
``maxImageMeta`` at 2.39, ``maxPersonality`` and ``maxPersonalitySize`` at 2.57.
An admin may ask for another project with ``tenant_id``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import reject_nul, request_context, runtime
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.errors import BadRequest, PolicyNotAuthorized
from novalite.services import quotas

router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])

# (quota resource, absolute key, first version without it or None)
MAXIMA: tuple[tuple[str, str, Version | None], ...] = (
    ("ram", "maxTotalRAMSize", None),
    ("instances", "maxTotalInstances", None),
    ("cores", "maxTotalCores", None),
    ("key_pairs", "maxTotalKeypairs", None),
    ("metadata_items", "maxServerMeta", None),
    ("metadata_items", "maxImageMeta", V(2, 39)),
    ("injected_files", "maxPersonality", V(2, 57)),
    ("injected_file_content_bytes", "maxPersonalitySize", V(2, 57)),
    ("floating_ips", "maxTotalFloatingIps", V(2, 36)),
    ("security_groups", "maxSecurityGroups", V(2, 36)),
    ("security_group_rules", "maxSecurityGroupRules", V(2, 36)),
    ("server_groups", "maxServerGroups", None),
    ("server_group_members", "maxServerGroupMembers", None),
)
USED: tuple[tuple[str, str, Version | None], ...] = (
    ("ram", "totalRAMUsed", None),
    ("cores", "totalCoresUsed", None),
    ("instances", "totalInstancesUsed", None),
    ("server_groups", "totalServerGroupsUsed", None),
    ("floating_ips", "totalFloatingIpsUsed", V(2, 36)),
    ("security_groups", "totalSecurityGroupsUsed", V(2, 36)),
)


def absolute_view(version: Version, limits: dict[str, int], usage: dict[str, int]) -> dict[str, int]:
    body = {key: limits[res] for res, key, gone in MAXIMA if gone is None or version < gone}
    body.update({key: usage.get(res, 0) for res, key, gone in USED if gone is None or version < gone})
    return body


@router.get("/limits")
def show_limits(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    version = request_version(request)
    if version >= V(2, 75):  # 2.75: unknown query parameters are refused
        extra = sorted(set(request.query_params.keys()) - {"tenant_id"})
        if extra:
            raise BadRequest(
                f"Invalid input for query parameters {extra[0]}. "
                f"Value: {request.query_params.get(extra[0])}. Additional properties are not allowed"
            )
    project_id = request.query_params.get("tenant_id") or ctx.project_id
    if project_id != ctx.project_id and not ctx.is_admin:
        raise PolicyNotAuthorized("os_compute_api:limits:other_project")
    with runtime(request).db.reader() as s:
        limits = quotas.effective_limits(s, project_id)
        usage = quotas.count_usage(s, project_id)
    return {"limits": {"rate": [], "absolute": absolute_view(version, limits, usage)}}

"""The embedded Neutron v2.0 subset under /network: version documents, extensions, quotas,
and the resource routers (networks/subnets, ports, security groups)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime
from novalite.context import RequestContext
from novalite.errors import BadRequest, Forbidden, NotFound
from novalite.network import (
    quotas,
    routes_auto_allocate,
    routes_floating_ips,
    routes_networks,
    routes_ports,
    routes_routers,
    routes_security_groups,
    routes_tags,
)

CATALOG = ("network", "neutron", "/network")

router = APIRouter()
router.include_router(routes_networks.router)
router.include_router(routes_ports.router)
router.include_router(routes_security_groups.router)
router.include_router(routes_routers.router)
router.include_router(routes_floating_ips.router)
router.include_router(routes_tags.router)
router.include_router(routes_auto_allocate.router)

UPDATED = "2013-02-03T10:00:00-00:00"
EXTENSIONS: dict[str, tuple[str, str]] = {
    "auto-allocated-topology": (
        "Auto Allocated Topology Services",
        "Auto Allocated Topology Services.",
    ),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "extra_dhcp_opt": (
        "Neutron Extra DHCP options",
        "Extra options configuration for DHCP. For example PXE boot "
        "options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, "
        "bootfile-name)",
    ),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "ip-substring-filtering": (
        "IP address substring filtering",
        "Provides IP address substring filtering when listing ports",
    ),
    "network-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": (
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    "security-group": ("security-group", "The security groups extension."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron "
        "resources that have Neutron standard attributes.",
    ),
    "standard-attr-tag": (
        "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
        "router, network, policy, subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    "router": (
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external "
        "networks via a NAT gateway.",
    ),
    "ext-gw-mode": (
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the external "
        "gateway",
    ),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "fip-port-details": (
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
    ),
    "floatingip-pools": ("Floating IP Pools Extension", "Provides a floating IP pools API."),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support for network."),
    "router_availability_zone": ("Router Availability Zone", "Availability zone support for router."),
    "stateful-security-group": (
        "Stateful security group",
        "Indicates if the security group is stateful or not",
    ),
}
RESOURCES = (
    "subnets",
    "networks",
    "ports",
    "security-groups",
    "security-group-rules",
    "routers",
    "floatingips",
    "floatingip_pools",
    "availability_zones",
    "quotas",
    "extensions",
)


def _base(request: Request) -> str:
    return f"{runtime(request).public_url}/network"


@router.get("/network")
@router.get("/network/")
def versions(request: Request) -> dict[str, Any]:
    return {
        "versions": [
            {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": f"{_base(request)}/v2.0/"}]}
        ]
    }


@router.get("/network/v2.0")
@router.get("/network/v2.0/")
def version_v20(request: Request) -> dict[str, Any]:
    return {
        "resources": [
            {
                "name": name.rstrip("s").replace("-", "_"),
                "collection": name.replace("-", "_"),
                "links": [{"rel": "self", "href": f"{_base(request)}/v2.0/{name}"}],
            }
            for name in RESOURCES
        ]
    }


def _extension(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


@router.get("/network/v2.0/extensions")
def list_extensions(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return {"extensions": [_extension(alias) for alias in sorted(EXTENSIONS)]}


@router.get("/network/v2.0/extensions/{alias}")
def show_extension(
    alias: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension with alias {alias} does not exist", kind="ExtensionNotFound")
    return {"extension": _extension(alias)}


def _quota_project(ctx: RequestContext, project_id: str) -> str:
    if project_id in ("tenant", "project"):
        return ctx.project_id
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden(
            "Non-admin is not authorised to access quotas for another project", kind="AdminRequired"
        )
    return project_id


@router.get("/network/v2.0/quotas")
def list_quotas(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    ctx.require_admin("get_quota")
    with runtime(request).db.reader() as s:
        return {
            "quotas": [
                dict(quotas.limits(s, pid), project_id=pid, tenant_id=pid)
                for pid in quotas.projects_with_overrides(s)
            ]
        }


@router.get("/network/v2.0/quotas/{project_id}")
def show_quota(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    pid = _quota_project(ctx, project_id)
    with runtime(request).db.reader() as s:
        return {"quota": quotas.limits(s, pid)}


@router.get("/network/v2.0/quotas/{project_id}/default")
def show_quota_default(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    _quota_project(ctx, project_id)
    return {"quota": dict(quotas.DEFAULTS)}


@router.get("/network/v2.0/quotas/{project_id}/details")
def show_quota_details(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    pid = _quota_project(ctx, project_id)
    with runtime(request).db.reader() as s:
        limits, used = quotas.limits(s, pid), quotas.usage(s, pid)
    return {"quota": {k: {"limit": limits[k], "used": used[k], "reserved": 0} for k in limits}}


def _update_quota(request: Request, project_id: str, values: dict[str, Any]) -> dict[str, Any]:
    with runtime(request).db.session() as s:
        quotas.set_limits(s, project_id, values)
        s.flush()
        return {"quota": quotas.limits(s, project_id)}


@router.put("/network/v2.0/quotas/{project_id}")
async def update_quota(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    ctx.require_admin("update_quota")
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
        raise BadRequest("Unable to find 'quota' in request body", kind="HTTPBadRequest")
    return await run_in_threadpool(_update_quota, request, project_id, body["quota"])


@router.delete("/network/v2.0/quotas/{project_id}", status_code=204)
def reset_quota(
    project_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    ctx.require_admin("delete_quota")
    with runtime(request).db.session() as s:
        quotas.reset(s, project_id)
    return Response(status_code=204)

"""The explicit lists of routers, in the order they are matched.

Each compute module exposes ``router`` (an APIRouter whose paths start with /compute/v2.1).
Each other API's routes module exposes ``router`` and ``CATALOG = (type, name, url suffix)``.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

COMPUTE_MODULES = [
    # first: POST /servers and the GET /servers polls are the hot requests, and matching walks
    # the routes in order. No module listed before it had a /servers path, so this changes no answer.
    "novalite.compute_api.servers",
    "novalite.compute_api.flavors",
    "novalite.compute_api.keypairs",
    "novalite.compute_api.quotas",
    "novalite.compute_api.limits",
    "novalite.compute_api.availability_zones",
    "novalite.compute_api.images",
    "novalite.compute_api.server_actions",
    "novalite.compute_api.server_subresources",
    "novalite.compute_api.server_groups",
    "novalite.compute_api.aggregates",
    "novalite.compute_api.hypervisors",
    "novalite.compute_api.services",
    "novalite.compute_api.interfaces",  # os-interface
    "novalite.compute_api.volume_attachments",  # os-volume_attachments
    "novalite.compute_api.server_shares",  # /servers/{id}/shares (2.97)
    "novalite.compute_api.network_proxies",  # os-networks, os-security-groups (< 2.36)
    "novalite.compute_api.usage",  # os-simple-tenant-usage
    "novalite.compute_api.audit_log",  # os-instance_usage_audit_log
    "novalite.compute_api.diagnostics",  # /servers/{id}/diagnostics
    "novalite.compute_api.hosts",  # os-hosts (< 2.43)
    "novalite.compute_api.extensions",  # /extensions
    "novalite.compute_api.tenant_networks",  # os-tenant-networks
    "novalite.compute_api.migrations",  # os-migrations, /servers/{id}/migrations
    "novalite.compute_api.consoles",  # remote-consoles, os-console-auth-tokens, the serial proxy
    "novalite.compute_api.volume_proxies",  # os-volumes, os-snapshots (< 2.36)
    "novalite.compute_api.assisted_snapshots",  # os-assisted-volume-snapshots (service)
]

API_MODULES = [  # the other OpenStack APIs served beside Compute
    "novalite.image.routes",
    "novalite.placement.routes",
    "novalite.network.routes",
    "novalite.volume.routes",
]


def routers() -> list[APIRouter]:
    return [importlib.import_module(name).router for name in COMPUTE_MODULES]


def api_routers() -> list[tuple[APIRouter, tuple[str, str, str]]]:
    out = []
    for name in API_MODULES:
        mod = importlib.import_module(name)
        out.append((mod.router, mod.CATALOG))
    return out

"""Placement's rules for /placement (placement/policies/*.py; ../shared/spec/policy-and-tokens.md
§4.3): admin or service for everything but ``GET /`` (no token) and ``/usages``."""

from __future__ import annotations

from novalite.api.policies.base import ANONYMOUS, READER, SERVICE, Rule, Table

PL = "/placement"
RP = PL + "/resource_providers/{uuid}"
R = "placement:"


def _s(name: str) -> Rule:
    return Rule(R + name, SERVICE)


RULES: Table = {
    ("GET", PL): Rule("(none: version document)", ANONYMOUS),
    ("GET", PL + "/"): Rule("(none: version document)", ANONYMOUS),
    ("GET", PL + "/resource_providers"): _s("resource_providers:list"),
    ("POST", PL + "/resource_providers"): _s("resource_providers:create"),
    ("GET", RP): _s("resource_providers:show"),
    ("PUT", RP): _s("resource_providers:update"),
    ("DELETE", RP): _s("resource_providers:delete"),
    ("GET", RP + "/usages"): _s("resource_providers:usages"),
    ("GET", RP + "/allocations"): _s("resource_providers:allocations:list"),
    ("GET", RP + "/inventories"): _s("resource_providers:inventories:list"),
    ("PUT", RP + "/inventories"): _s("resource_providers:inventories:update_all"),
    ("DELETE", RP + "/inventories"): _s("resource_providers:inventories:delete_all"),
    ("POST", RP + "/inventories"): _s("resource_providers:inventories:create"),
    ("GET", RP + "/inventories/{rc}"): _s("resource_providers:inventories:show"),
    ("PUT", RP + "/inventories/{rc}"): _s("resource_providers:inventories:update"),
    ("DELETE", RP + "/inventories/{rc}"): _s("resource_providers:inventories:delete"),
    ("GET", RP + "/traits"): _s("resource_providers:traits:list"),
    ("PUT", RP + "/traits"): _s("resource_providers:traits:update"),
    ("DELETE", RP + "/traits"): _s("resource_providers:traits:delete"),
    ("GET", RP + "/aggregates"): _s("resource_providers:aggregates:list"),
    ("PUT", RP + "/aggregates"): _s("resource_providers:aggregates:update"),
    ("GET", PL + "/allocations/{consumer_uuid}"): _s("allocations:list"),
    ("PUT", PL + "/allocations/{consumer_uuid}"): _s("allocations:update"),
    ("DELETE", PL + "/allocations/{consumer_uuid}"): _s("allocations:delete"),
    # upstream lets a project's reader see its own usages; novalite's route is admin-only (stricter)
    ("GET", PL + "/usages"): Rule(R + "usages", READER),
    ("GET", PL + "/allocation_candidates"): _s("allocation_candidates:list"),
    ("GET", PL + "/traits"): _s("traits:list"),
    ("GET", PL + "/traits/{name}"): _s("traits:show"),
    ("PUT", PL + "/traits/{name}"): _s("traits:update"),
    ("DELETE", PL + "/traits/{name}"): _s("traits:delete"),
    ("GET", PL + "/resource_classes"): _s("resource_classes:list"),
    ("GET", PL + "/resource_classes/{name}"): _s("resource_classes:show"),
    ("POST", PL + "/resource_classes"): _s("resource_classes:create"),
    ("PUT", PL + "/resource_classes/{name}"): _s("resource_classes:update"),
    ("DELETE", PL + "/resource_classes/{name}"): _s("resource_classes:delete"),
}

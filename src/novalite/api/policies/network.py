"""Neutron's rules for /network/v2.0 (neutron/conf/policies/*.py; ../shared/spec/policy-and-tokens.md
§3.2). Attribute rules (``create_network:shared``, ``create_port:mac_address``...) are the
network service's checks (network.attributes); this table holds each route's base rule. A name
may hold a path parameter (``{collection}``, with ``-`` read as ``_``), filled in when a refusal
names it."""

from __future__ import annotations

from novalite.api.policies.base import ADMIN, ANONYMOUS, ANY, MANAGER, MEMBER, READER, Rule, Table

N = "/network/v2.0"
TAGS = N + "/{collection}/{resource_id}/tags"
VERSIONS = Rule("(none: version document)", ANONYMOUS)


def _crud(collection: str, name: str, item: str) -> Table:
    path = f"{N}/{collection}"
    return {
        ("GET", path): Rule(f"get_{name}", READER),
        ("GET", f"{path}/{{{item}}}"): Rule(f"get_{name}", READER),
        ("POST", path): Rule(f"create_{name}", MEMBER),
        ("PUT", f"{path}/{{{item}}}"): Rule(f"update_{name}", MEMBER),
        ("DELETE", f"{path}/{{{item}}}"): Rule(f"delete_{name}", MEMBER),
    }


RULES: Table = {
    ("GET", "/network/"): VERSIONS,
    ("GET", "/network"): VERSIONS,
    ("GET", N + "/"): VERSIONS,
    ("GET", N): VERSIONS,
    **_crud("networks", "network", "network_id"),
    **_crud("subnets", "subnet", "subnet_id"),
    **_crud("ports", "port", "port_id"),
    **_crud("security-groups", "security_group", "group_id"),
    **_crud("routers", "router", "router_id"),
    ("PUT", N + "/routers/{router_id}/add_router_interface"): Rule("add_router_interface", MEMBER),
    ("PUT", N + "/routers/{router_id}/remove_router_interface"): Rule("remove_router_interface", MEMBER),
    **_crud("floatingips", "floatingip", "floatingip_id"),
    ("GET", N + "/floatingip_pools"): Rule("get_floatingip_pool", READER),
    ("GET", N + "/auto-allocated-topology/{project_id}"): Rule("get_auto_allocated_topology", MEMBER),
    ("GET", N + "/availability_zones"): Rule("get_availability_zone", READER),
    # rules: the parent group's owner (sg_owner); there is no update
    ("GET", N + "/security-group-rules"): Rule("get_security_group_rule", READER),
    ("GET", N + "/security-group-rules/{rule_id}"): Rule("get_security_group_rule", READER),
    ("POST", N + "/security-group-rules"): Rule("create_security_group_rule", MEMBER),
    ("DELETE", N + "/security-group-rules/{rule_id}"): Rule("delete_security_group_rule", MEMBER),
    # tags: the parent's rules, named per collection (neutron/conf/policies/tag.py)
    ("GET", TAGS): Rule("get_{collection}_tags", READER),
    ("PUT", TAGS): Rule("update_{collection}_tags", MEMBER),
    ("DELETE", TAGS): Rule("delete_{collection}_tags", MEMBER),
    ("GET", TAGS + "/{tag}"): Rule("get_{collection}_tags", READER),
    ("PUT", TAGS + "/{tag}"): Rule("create_{collection}_tags", MEMBER),
    ("DELETE", TAGS + "/{tag}"): Rule("delete_{collection}_tags", MEMBER),
    ("GET", N + "/extensions"): Rule("(none: extensions are listed to every token)", ANY),
    ("GET", N + "/extensions/{alias}"): Rule("(none: extensions are shown to every token)", ANY),
    # quotas: a project's own need manager (enforced as member here: api.policies.base)
    ("GET", N + "/quotas"): Rule("get_quota", ADMIN),
    ("GET", N + "/quotas/{project_id}"): Rule("get_quota", MANAGER),
    ("GET", N + "/quotas/{project_id}/default"): Rule("get_quota", MANAGER),
    ("GET", N + "/quotas/{project_id}/details"): Rule("get_quota", MANAGER),
    ("PUT", N + "/quotas/{project_id}"): Rule("update_quota", ADMIN),
    ("DELETE", N + "/quotas/{project_id}"): Rule("delete_quota", ADMIN),
}

"""Keystone's rules for /identity (keystone/common/policies/*.py; ../shared/spec/policy-and-tokens.md
§1.4, §5.3). Every token here is project-scoped (no system or domain scope), so the rules that
let a system or domain reader in reduce to admin; the ``OWNER`` ones also let the user itself in
(its own user, projects, token), which the route checks."""

from __future__ import annotations

from novalite.api.policies.base import ADMIN, ANONYMOUS, ANY, OWNER, Check, Rule, Table

K = "/identity/v3"
GRANT = K + "/projects/{project_id}/users/{user_id}/roles/{role_id}"
VERSIONS = Rule("(none: version document)", ANONYMOUS)


def _i(name: str, check: Check) -> Rule:
    return Rule("identity:" + name, check)


RULES: Table = {
    ("GET", "/identity/"): VERSIONS,
    ("GET", "/identity"): VERSIONS,
    ("GET", K + "/"): VERSIONS,
    ("GET", K): VERSIONS,
    ("POST", K + "/auth/tokens"): Rule("(none: logging in)", ANONYMOUS),
    # admin, service, or the token's own user
    ("GET", K + "/auth/tokens"): _i("validate_token", OWNER),
    ("HEAD", K + "/auth/tokens"): _i("check_token", OWNER),
    ("DELETE", K + "/auth/tokens"): _i("revoke_token", OWNER),
    ("GET", K + "/auth/catalog"): _i("get_auth_catalog", ANY),
    ("GET", K + "/auth/projects"): _i("get_auth_projects", ANY),
    ("GET", K + "/domains"): _i("list_domains", ADMIN),
    # a project's token may read its own project's domain
    ("GET", K + "/domains/{domain_id}"): _i("get_domain", OWNER),
    ("GET", K + "/projects"): _i("list_projects", ADMIN),
    ("POST", K + "/projects"): _i("create_project", ADMIN),
    ("GET", K + "/projects/{project_id}"): _i("get_project", OWNER),
    ("PATCH", K + "/projects/{project_id}"): _i("update_project", ADMIN),
    ("DELETE", K + "/projects/{project_id}"): _i("delete_project", ADMIN),
    ("GET", K + "/users"): _i("list_users", ADMIN),
    ("POST", K + "/users"): _i("create_user", ADMIN),
    ("GET", K + "/users/{user_id}"): _i("get_user", OWNER),
    ("PATCH", K + "/users/{user_id}"): _i("update_user", ADMIN),
    # self-service: no token, the original password instead
    ("POST", K + "/users/{user_id}/password"): Rule("(none: the original password authenticates)", ANONYMOUS),
    ("DELETE", K + "/users/{user_id}"): _i("delete_user", ADMIN),
    ("GET", K + "/users/{user_id}/projects"): _i("list_user_projects", OWNER),
    ("GET", K + "/roles"): _i("list_roles", ADMIN),
    ("POST", K + "/roles"): _i("create_role", ADMIN),
    ("GET", K + "/roles/{role_id}"): _i("get_role", ADMIN),
    ("DELETE", K + "/roles/{role_id}"): _i("delete_role", ADMIN),
    ("PUT", GRANT): _i("create_grant", ADMIN),
    ("GET", GRANT): _i("check_grant", ADMIN),
    ("HEAD", GRANT): _i("check_grant", ADMIN),
    ("DELETE", GRANT): _i("revoke_grant", ADMIN),
    ("GET", K + "/projects/{project_id}/users/{user_id}/roles"): _i("list_grants", ADMIN),
    ("GET", K + "/role_assignments"): _i("list_role_assignments", ADMIN),
    # the catalog: reads by a system reader (here: admin), writes admin; regions to every token
    ("GET", K + "/services"): _i("list_services", ADMIN),
    ("POST", K + "/services"): _i("create_service", ADMIN),
    ("GET", K + "/services/{service_id}"): _i("get_service", ADMIN),
    ("PATCH", K + "/services/{service_id}"): _i("update_service", ADMIN),
    ("DELETE", K + "/services/{service_id}"): _i("delete_service", ADMIN),
    ("GET", K + "/endpoints"): _i("list_endpoints", ADMIN),
    ("POST", K + "/endpoints"): _i("create_endpoint", ADMIN),
    ("GET", K + "/endpoints/{endpoint_id}"): _i("get_endpoint", ADMIN),
    ("PATCH", K + "/endpoints/{endpoint_id}"): _i("update_endpoint", ADMIN),
    ("DELETE", K + "/endpoints/{endpoint_id}"): _i("delete_endpoint", ADMIN),
    ("GET", K + "/regions"): _i("list_regions", ANY),
    ("GET", K + "/regions/{region_id}"): _i("get_region", ANY),
}

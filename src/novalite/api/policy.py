"""The write gate of secure RBAC (docs: ../shared/spec/policy-and-tokens.md §1, §7.1): ``reader``
reads, ``member`` reads and writes its project's resources, ``admin`` everything.

Every write (POST, PUT, PATCH, DELETE) to Compute, Image, Network and Block Storage is refused
here with the service's own 403 when the token carries none of ``WRITER_ROLES`` (a reader-only
token: Keystone expands implied roles into the token, so a member's or an admin's lists ``member``
and an admin's ``admin``). ``api.common.context`` calls ``refused`` for every request, the hot
POST /servers included: a frozenset lookup on the decoded token, no I/O; the rule is only named
(from the path, and for ``.../action`` from the body's key) when the request is refused.

What a role may do beyond that (admin-only APIs, owners, attributes) stays with the routes;
this only closes the door the issue found open: a reader writing.

Not enforced here (``UNGATED``, ``EXEMPT``): Identity (logging in, changing one's own password
and revoking one's own token need no role; its other writes are admin-only in its routes),
Placement (admin or service only, checked by its routes) and Nova's key pairs (owned by the user:
``os-keypairs:*`` is ``user_id:%(user_id)s``, no role, so a reader manages its own).
"""

from __future__ import annotations

import json
import re
from typing import Any

from novalite.errors import Forbidden, PolicyNotAuthorized

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# a token listing any of these may write (``manager`` implies ``member`` in Keystone)
WRITER_ROLES = frozenset({"member", "manager", "admin"})

# services whose writes this module does not gate, and why
UNGATED = {
    "identity": "log in, own password, own token revocation need no role; the rest is admin-only in "
    "identity.routes",
    "placement": "admin or service only in every rule but GET /usages (placement.api_common.admin)",
}
# (service, first path segment after the version) a token with any role may write
EXEMPT = {
    ("compute", "os-keypairs"): "os-keypairs:* is user_id:%(user_id)s: any user manages its own key pairs",
}

_ID = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F-]{36})$")


def refused(method: str, path: str, roles: tuple[str, ...], body: bytes | None = None) -> Forbidden | None:
    """The 403 for a write ``roles`` give no right to, or None. Callers test ``method in
    WRITE_METHODS and WRITER_ROLES.isdisjoint(roles)`` first (the hot path's whole cost)."""
    if method not in WRITE_METHODS or not WRITER_ROLES.isdisjoint(roles):
        return None
    if not WRITER_ROLES.isdisjoint(r.lower() for r in roles):  # oslo.policy ignores case
        return None
    service, segments = _split(path)
    if service is None or (service, segments[0] if segments else "") in EXEMPT:
        return None
    action = _action(body) if segments and segments[-1] == "action" else ""
    if service == "compute":
        return PolicyNotAuthorized(_nova_rule(method, segments, action))
    if service == "volume":
        return PolicyNotAuthorized(_cinder_rule(method, segments, action))
    if service == "network":
        return Forbidden(
            f"rule:{_neutron_rule(method, segments)} is disallowed by policy", kind="PolicyNotAuthorized"
        )
    return Forbidden(f"You are not authorized to complete {_glance_rule(method, segments)} action.")


def _split(path: str) -> tuple[str | None, list[str]]:
    """(service, the path's segments after the service's version and project) for the gated
    services; (None, []) for the others."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return None, []
    service, rest = parts[0], parts[2:]
    if service not in ("compute", "image", "network", "volume"):
        return None, []
    if service == "volume" and rest and _ID.match(rest[0]):  # /volume/v3/{project_id}/...
        rest = rest[1:]
    return service, rest


def _action(body: bytes | None) -> str:
    """The action a ``.../action`` body names (its one key), or ""."""
    if not body:
        return ""
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    return next(iter(doc), "") if isinstance(doc, dict) and doc else ""


def _verb(method: str) -> str:
    return {"POST": "create", "DELETE": "delete"}.get(method, "update")


# -- Nova (nova/policies/*.py) ---------------------------------------------------------------------

_NOVA_ACTIONS = {
    "reboot": "servers:reboot",
    "resize": "servers:resize",
    "confirmResize": "servers:confirm_resize",
    "revertResize": "servers:revert_resize",
    "rebuild": "servers:rebuild",
    "createImage": "servers:create_image",
    "os-start": "servers:start",
    "os-stop": "servers:stop",
    "trigger_crash_dump": "servers:trigger_crash_dump",
    "changePassword": "os-admin-password",
    "os-getConsoleOutput": "os-console-output",
    "os-getVNCConsole": "os-remote-consoles",
    "os-getSPICEConsole": "os-remote-consoles",
    "os-getSerialConsole": "os-remote-consoles",
    "os-getRDPConsole": "os-remote-consoles",
    "os-getMKSConsole": "os-remote-consoles",
    "createBackup": "os-create-backup",
    "restore": "os-deferred-delete:restore",
    "forceDelete": "os-deferred-delete:force",
    "lock": "os-lock-server:lock",
    "unlock": "os-lock-server:unlock",
    "pause": "os-pause-server:pause",
    "unpause": "os-pause-server:unpause",
    "suspend": "os-suspend-server:suspend",
    "resume": "os-suspend-server:resume",
    "rescue": "os-rescue",
    "unrescue": "os-unrescue",
    "shelve": "os-shelve:shelve",
    "unshelve": "os-shelve:unshelve",
    "shelveOffload": "os-shelve:shelve_offload",
    "addFixedIp": "os-multinic:add",
    "removeFixedIp": "os-multinic:remove",
    "addFloatingIp": "os-floating-ips:add",
    "removeFloatingIp": "os-floating-ips:remove",
    "addSecurityGroup": "os-security-groups:add",
    "removeSecurityGroup": "os-security-groups:remove",
    "migrate": "os-migrate-server:migrate",
    "os-migrateLive": "os-migrate-server:migrate_live",
    "os-resetState": "os-admin-actions:reset_state",
    "injectNetworkInfo": "os-admin-actions:inject_network_info",
    "evacuate": "os-evacuate",
}

_NOVA_SUBRESOURCES = {  # servers/{id}/<segment>: (rule prefix, POST, PUT, DELETE)
    "metadata": ("server-metadata", "create", "update", "delete"),
    "tags": ("os-server-tags", "update", "update", "delete"),
    "os-interface": ("os-attach-interfaces", "create", "update", "delete"),
    "os-volume_attachments": ("os-volumes-attachments", "create", "update", "delete"),
    "os-server-password": ("os-server-password", "clear", "clear", "clear"),
    "migrations": ("servers:migrations", "force_complete", "force_complete", "delete"),
    "os-server-shares": ("os-server-shares", "create", "create", "delete"),
}


def _nova_rule(method: str, seg: list[str], action: str) -> str:
    head = seg[0] if seg else ""
    if head == "servers":
        if len(seg) <= 2:
            rule = f"servers:{_verb(method)}"
        elif seg[2] == "action":
            rule = _NOVA_ACTIONS.get(action, f"servers:{action or 'action'}")
        else:
            prefix, post, put, delete = _NOVA_SUBRESOURCES.get(seg[2], (seg[2], "create", "update", "delete"))
            rule = f"{prefix}:" + {"POST": post, "DELETE": delete}.get(method, put)
            if seg[2] in ("metadata", "tags") and len(seg) == 3 and method != "POST":
                rule += "_all"
    elif head == "flavors":
        if len(seg) <= 2:
            rule = f"os-flavor-manage:{_verb(method)}"
        elif seg[2] == "action":
            rule = {"addTenantAccess": "os-flavor-access:add_tenant_access"}.get(
                action, "os-flavor-access:remove_tenant_access"
            )
        else:
            rule = f"os-flavor-extra-specs:{_verb(method)}"
    elif head == "os-security-group-rules":
        rule = f"os-security-groups:rule:{_verb(method)}"
    elif len(seg) >= 3 and seg[-1] == "action" and action:
        rule = f"{head}:{action}"
    else:
        rule = f"{head}:{_verb(method)}"
    return rule if rule.startswith(("compute:", "network:")) else f"os_compute_api:{rule}"


# -- Cinder (cinder/policies/*.py) -----------------------------------------------------------------

_CINDER_ACTIONS = {
    "os-extend": "volume:extend",
    "os-retype": "volume:retype",
    "revert": "volume:revert_to_snapshot",
    "os-update_readonly_flag": "volume:update_readonly_flag",
    "os-reimage": "volume:reimage",
    "os-volume_upload_image": "volume_extension:volume_actions:upload_image",
    "os-reset_status": "volume_extension:volume_admin_actions:reset_status",
    "os-force_delete": "volume_extension:volume_admin_actions:force_delete",
    "os-force_detach": "volume_extension:volume_admin_actions:force_detach",
    "os-migrate_volume": "volume_extension:volume_admin_actions:migrate_volume",
    "os-complete": "volume:attachment_complete",
    "addProjectAccess": "volume_extension:volume_type_access:addProjectAccess",
    "removeProjectAccess": "volume_extension:volume_type_access:removeProjectAccess",
}


def _cinder_rule(method: str, seg: list[str], action: str) -> str:
    head = seg[0] if seg else ""
    verb = _verb(method)
    if seg and seg[-1] == "action":
        if action in _CINDER_ACTIONS:
            return _CINDER_ACTIONS[action]
        return f"volume_extension:volume_actions:{action.removeprefix('os-') or 'action'}"
    if head == "volumes":
        return f"volume:{verb}_volume_metadata" if len(seg) > 2 else f"volume:{verb}"
    if head == "attachments":
        return f"volume:attachment_{verb}"
    if head == "types":
        if len(seg) > 2:
            return f"volume_extension:types_extra_specs:{verb}"
        return f"volume_extension:type_{verb}"
    if head == "snapshots":
        return f"volume:{verb}_snapshot"
    if head == "backups":
        return f"backup:{verb}"
    if head == "os-quota-sets":
        return f"volume_extension:quotas:{verb}"
    return f"volume:{verb}_{head.rstrip('s')}"


# -- Neutron (neutron/conf/policies/*.py) ----------------------------------------------------------


def _singular(collection: str) -> str:
    name = collection.replace("-", "_")
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name


def _neutron_rule(method: str, seg: list[str]) -> str:
    head = seg[0] if seg else ""
    if len(seg) >= 3 and seg[2] == "tags":  # neutron/conf/policies/tag.py names them per collection
        verb = "create" if method == "PUT" and len(seg) > 3 else _verb(method)
        return f"{verb}_{head.replace('-', '_')}_tags"
    if len(seg) >= 3 and head == "routers":  # PUT /routers/{id}/add_router_interface
        return seg[2]
    return f"{_verb(method)}_{_singular(head)}"


# -- Glance (glance/policies/image.py) -------------------------------------------------------------


def _glance_rule(method: str, seg: list[str]) -> str:
    if not seg or seg[0] != "images":
        return f"{_verb(method)}_{_singular(seg[0]) if seg else 'image'}"
    if len(seg) <= 2:
        return {"POST": "add_image", "DELETE": "delete_image"}.get(method, "modify_image")
    sub = seg[2]
    if sub in ("file", "stage"):
        return "upload_image"
    if sub == "actions" and len(seg) > 3:
        return seg[3]
    if sub == "members":
        return {"POST": "add_member", "DELETE": "delete_member"}.get(method, "modify_member")
    return "modify_image"

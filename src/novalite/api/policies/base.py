"""The vocabulary of the policy tables: a route's upstream rule name and its default check.

A table is data: ``{(HTTP method, path template as registered in FastAPI): Rule}``, one per
service (``api.policies.compute``, ``image``, ``network``, ``volume``, ``placement``,
``identity``). Block Storage's routes are written once, without the optional
``/{url_project_id}`` segment; ``api.policies.TABLE`` adds that variant.

The checks are upstream's default check strings (../shared/spec/policy-and-tokens.md §1.4) in
a few words; each names who passes, an admin passes all but ``ANONYMOUS`` (which needs no
token at all):

=============  ===================================================================================
ANONYMOUS      no token: version documents, ``POST /v3/auth/tokens``
ANY            any valid token, no role (Nova's ``@`` rules behind keystonemiddleware)
OWNER          any valid token; the route compares the owner (``user_id:%(user_id)s``: key pairs,
               one's own user or token) and answers 403/404 itself
READER         a role on the project (``role:reader`` and ``project_id``): every role implies reader
MEMBER         ``member`` on the project
MANAGER        ``manager`` on the project; this Keystone has no ``manager`` role (bootstrap makes
               admin, member, reader), so it is enforced as MEMBER: the pre-2024.2 default
SERVICE        ``role:service or role:admin``
ADMIN          ``role:admin`` (on any project: cloud-wide)
=============  ===================================================================================

``Rule.actions``: a ``POST .../action`` route's rule by the body's one key (``{"os-stop": null}``);
the route's own ``check`` is the weakest of them, which the gate enforces, and the stronger
ones are the action handlers' (``ctx.require_admin``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Check(enum.Enum):
    ANONYMOUS = "@, no token"
    ANY = "@"
    OWNER = "user_id:%(user_id)s or admin"
    READER = "project reader or admin"
    MEMBER = "project member or admin"
    MANAGER = "project manager or admin"
    SERVICE = "service or admin"
    ADMIN = "admin"


# the roles a token must list (any of) to pass a check; checks absent here need none
WRITER_ROLES = frozenset({"member", "manager", "admin"})
REQUIRED_ROLES: dict[Check, frozenset[str]] = {
    Check.MEMBER: WRITER_ROLES,
    Check.MANAGER: WRITER_ROLES,  # no manager role here: see the module's docstring
    Check.SERVICE: frozenset({"service", "admin"}),
    Check.ADMIN: frozenset({"admin"}),
}


@dataclass(frozen=True)
class Rule:
    name: str
    check: Check
    actions: Mapping[str, Rule] = field(default_factory=dict)


Table = dict[tuple[str, str], Rule]

ANONYMOUS, ANY, OWNER = Check.ANONYMOUS, Check.ANY, Check.OWNER
READER, MEMBER, MANAGER = Check.READER, Check.MEMBER, Check.MANAGER
SERVICE, ADMIN = Check.SERVICE, Check.ADMIN


def actions(default: str, rules: Mapping[str, Rule]) -> Rule:
    """A ``.../action`` route: ``default`` names a body with no known key; its check is the
    weakest of the actions'."""
    order = list(Check)
    weakest = min((r.check for r in rules.values()), key=order.index)
    return Rule(default, weakest, dict(rules))

"""Secure RBAC, enforced from the policy tables (``api.policies``; docs: docs/trust.md "Policy",
../shared/spec/policy-and-tokens.md §1–§4): ``reader`` reads, ``member`` reads and writes its
project's resources, ``admin`` everything.

``api.common.context`` calls ``check`` for every request whose token is not an admin's. The
route FastAPI matched names the table's rule; a rule whose check needs a role the token lacks
(member, service or admin: ``REQUIRED_ROLES``) is refused with that service's own 403 naming
the rule. A ``POST .../action`` route's rule is its body's action's. What the tables cannot see
stays with the routes: another project's resource (404), owners (key pairs, one's own user or
token), the project in a quota URL, attribute rules (Neutron's ``create_network:shared``...),
admin-only query parameters.

The cost on the hot path: nothing for an admin's token; for another, a dict lookup by the matched
route's endpoint (about 0.1 µs). The index is built once, from the application's routes, at the
first request. ``api.hot_routes`` serves ``POST /servers`` before routing (no route): that one is
refused from its path (``refused``), and only when the token lacks a writer role.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from novalite.api.policies import REQUIRED_ROLES, TABLE, WRITER_ROLES, Check, Rule, app_routes, service_of
from novalite.errors import Forbidden, PolicyNotAuthorized

__all__ = ["GATED", "WRITE_METHODS", "WRITER_ROLES", "check", "refused"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# the services whose writes ``refused`` answers for by path (the others answer from their routes)
GATED = frozenset({"compute", "image", "network", "volume"})

# endpoint -> {method: (service, rule)} for every route an application serves, the rules that can
# refuse someone only (an empty dict for a route no rule refuses anyone); filled from an
# application's routes at its first request (``_index``)
_BY_ENDPOINT: dict[Any, dict[str, tuple[str, Rule]]] = {}
_INDEX_LOCK = threading.Lock()


def check(
    method: str, scope: Mapping[str, Any], roles: tuple[str, ...], body: bytes | None = None
) -> Forbidden | None:
    """The 403 for a non-admin token on the route ``scope`` matched, or None. ``body``: the
    request's bytes when it is a write to an ``.../action`` URL (already read), else None."""
    route = scope.get("route")
    if route is None:  # not routed by FastAPI (api.hot_routes): the path names the rule
        return refused(method, scope.get("path", ""), roles, body) if method in WRITE_METHODS else None
    rules = _BY_ENDPOINT.get(route.endpoint)
    if rules is None:
        rules = _index(scope.get("app"), route.endpoint)
    if not rules:
        return None
    entry = rules.get(method)
    if entry is None:
        return None
    service, rule = entry
    return _refusal(service, rule, roles, body, scope.get("path_params") or {})


def refused(method: str, path: str, roles: tuple[str, ...], body: bytes | None = None) -> Forbidden | None:
    """The write gate by path: the 403 for a write to Compute, Image, Network or Block Storage
    that ``roles`` give no right to (the table's rule for the route ``path`` matches), or None.
    Reads, other services and paths no route serves: None."""
    if method not in WRITE_METHODS or not WRITER_ROLES.isdisjoint(roles):
        return None
    service = service_of(path)
    if service not in GATED:
        return None
    found = _match(method, path)
    if found is None:
        return None
    rule, params = found
    return _refusal(service, rule, roles, body, params)


def _refusal(
    service: str, rule: Rule, roles: tuple[str, ...], body: bytes | None, params: Mapping[str, str]
) -> Forbidden | None:
    if rule.actions:
        rule = rule.actions.get(_action(body)) or Rule(rule.name, Check.MEMBER)
    required = REQUIRED_ROLES.get(rule.check)
    if required is None or not required.isdisjoint(roles):
        return None
    if not required.isdisjoint(r.lower() for r in roles):  # oslo.policy ignores case
        return None
    return forbidden(service, _named(rule.name, params))


def forbidden(service: str, rule: str) -> Forbidden:
    """The 403 ``service`` answers when ``rule`` refuses (§6 of the spec)."""
    if service == "network":
        return Forbidden(f"rule:{rule} is disallowed by policy", kind="PolicyNotAuthorized")
    if service == "image":
        return Forbidden(f"You are not authorized to complete {rule} action.")
    if service == "identity":
        return Forbidden(f"You are not authorized to perform the requested action: {rule}.")
    return PolicyNotAuthorized(rule)  # Nova, Cinder, Placement


def _named(name: str, params: Mapping[str, str]) -> str:
    """A rule name with the path parameters it holds filled in (``{action}``, ``{collection}``)."""
    if "{" not in name:
        return name
    return re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(1))).replace("-", "_"), name)


def _action(body: bytes | None) -> str:
    """The action a ``.../action`` body names (its one key), or ""."""
    if not body:
        return ""
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    return next(iter(doc), "") if isinstance(doc, dict) and doc else ""


def _needs_check(rule: Rule) -> bool:
    return bool(rule.actions) or rule.check in REQUIRED_ROLES


def _index(app: Any, endpoint: Any) -> dict[str, tuple[str, Rule]]:
    """Add ``app``'s routes to ``_BY_ENDPOINT`` (an endpoint serves the same rules in every app,
    so the index is shared) and answer ``endpoint``'s rules. Built aside, then added at once: a
    request in another thread never sees an endpoint with half its rules."""
    with _INDEX_LOCK:
        if endpoint not in _BY_ENDPOINT:
            found: dict[Any, dict[str, tuple[str, Rule]]] = {}
            router = getattr(app, "router", None)
            for method, path, served in app_routes(list(getattr(router, "routes", []))):
                rules = found.setdefault(served, {})
                rule = TABLE.get((method, path))
                if rule is not None and _needs_check(rule):
                    rules[method] = (service_of(path), rule)
            found.setdefault(endpoint, {})  # not served by ``app``: nothing to refuse
            _BY_ENDPOINT.update({k: v for k, v in found.items() if k not in _BY_ENDPOINT})
        return _BY_ENDPOINT[endpoint]


# -- matching a concrete path to the table (the write gate by path) --------------------------------

_PATTERNS: list[tuple[str, re.Pattern[str], Rule]] = []


def _patterns() -> list[tuple[str, re.Pattern[str], Rule]]:
    """(method, compiled template, rule), templates with fewer parameters first (a literal
    segment wins over a parameter, as the routes are declared)."""
    if not _PATTERNS:
        found = []
        for (method, path), rule in TABLE.items():
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            found.append((path.count("{"), method, re.compile(regex + r"\Z"), rule))
        found.sort(key=lambda item: item[0])
        _PATTERNS.extend((method, regex, rule) for _n, method, regex, rule in found)
    return _PATTERNS


def _match(method: str, path: str) -> tuple[Rule, dict[str, str]] | None:
    for wanted, regex, rule in _patterns():
        if wanted == method:
            m = regex.match(path)
            if m is not None:
                return rule, m.groupdict()
    return None

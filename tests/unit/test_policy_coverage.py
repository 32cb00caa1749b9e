"""Every route the application serves has a rule in a policy table (api.policies), and every rule
names a route it serves: adding a route without its rule fails here, naming the route."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from novalite.api import policy
from novalite.api.policies import SERVICES, TABLE, Check, app_routes, service_of
from novalite.app import build_runtime, create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, Any]]:
    settings = make_settings(Path(tmp_path_factory.mktemp("policy")))
    app = create_app(build_runtime(settings), start_background=False)
    return list(app_routes(app.router.routes))


def test_every_route_has_a_rule(served: list[tuple[str, str, Any]]) -> None:
    missing = sorted({f"{m} {p}" for m, p, _ in served if (m, p) not in TABLE})
    assert not missing, "routes with no rule in api.policies (add one to the service's table):\n" + "\n".join(
        missing
    )


def test_every_rule_names_a_route(served: list[tuple[str, str, Any]]) -> None:
    routes = {(m, p) for m, p, _ in served}
    stale = sorted(f"{m} {p}" for m, p in TABLE if (m, p) not in routes)
    assert not stale, "rules in api.policies for routes the application does not serve:\n" + "\n".join(stale)


def test_a_shared_endpoint_has_one_rule(served: list[tuple[str, str, Any]]) -> None:
    """The gate finds a route's rule by (method, endpoint): one function serving two paths must
    have the same rule on both."""
    rules = defaultdict(set)
    for method, path, endpoint in served:
        if (method, path) in TABLE:
            rules[(method, endpoint)].add(repr(TABLE[(method, path)]))
    shared = {f"{m} {getattr(e, '__qualname__', e)}": r for (m, e), r in rules.items() if len(r) > 1}
    assert not shared


def test_each_table_holds_only_its_service() -> None:
    for service, table in SERVICES.items():
        assert {service_of(path) for _m, path in table} == {service}, service


def test_only_documents_logging_in_and_changing_ones_password_need_no_token() -> None:
    for (method, path), rule in TABLE.items():
        if rule.check is Check.ANONYMOUS:
            public = ("version document", "API description", "logging in", "original password")
            assert any(what in rule.name for what in public), f"{method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "roles", "rule"),
    [
        ("GET", "/image/v2/images/i/file", ("reader",), None),  # a read: not the path gate's
        ("POST", "/image/v2/images/i/actions/deactivate", ("reader",), "deactivate"),
        ("PUT", "/network/v2.0/security-groups/g/tags/t", ("reader",), "create_security_groups_tags"),
        ("POST", "/volume/v3/volumes/v/action", ("reader",), "volume:extend"),
    ],
)
def test_refusals_name_the_tables_rule(
    method: str, path: str, roles: tuple[str, ...], rule: str | None
) -> None:
    body = b'{"os-extend": {"new_size": 2}}' if path.endswith("/action") else None
    denied = policy.refused(method, path, roles, body)
    if rule is None:
        assert denied is None
    else:
        assert denied is not None and rule in denied.message


def test_a_reader_may_read_a_volumes_image_metadata_through_its_action() -> None:
    """os-show_image_metadata is a POST whose rule (volume_image_metadata:show) is a reader's."""
    body = b'{"os-show_image_metadata": {}}'
    action = "/volume/v3/volumes/v/action"
    assert policy.refused("POST", action, ("reader",), body) is None
    assert policy.refused("POST", action, ("reader",), b'{"os-detach": {}}') is not None

"""A seeded property-based fuzzer over every route of the in-process app (issue 16).

The routes and their body schemas come from the OpenAPI documents (``novalite.api.openapi``), so
the fuzzer covers whatever the app serves. Each operation gets ``per_op`` cases drawn by
Hypothesis from one seed: bodies valid by the route's schema, the same bodies with one value
broken (wrong type, huge, NUL, deep nesting, a key missing), arbitrary JSON and raw bytes that are
not JSON or not UTF-8; path parameters that name real resources (created first) or junk (not a
UUID, very long, percent-encoded bytes); odd query strings; admin, member, garbage or no token;
microversion headers right and wrong. A response >= 500 or an answer slower than ``HANG_SECONDS``
is a finding. Operations that delete run last so the real resources live through the rest.

Used by tests/functional/test_fuzz.py (a bounded run) and bench/fuzz.py (as many cases as asked).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from novalite.api import openapi
from tests.conftest import DEMO_PW, Api
from tests.functional.fuzz_strategies import Case, case_strategy

HANG_SECONDS = 10.0
# A finding not to fail on: (method, path template, status) -> why (see the module's caller).
Known = dict[tuple[str, str, int], str]


@dataclass
class Finding:
    op: openapi.Operation
    case: Case
    status: int
    seconds: float
    text: str

    def __str__(self) -> str:
        body = (self.case.body or b"")[:300]
        return (
            f"{self.case.method} {self.case.url[:300]} -> {self.status} in {self.seconds:.1f}s\n"
            f"  headers: {self.case.headers}\n  body: {body!r}\n  answer: {self.text[:500]}"
        )


@dataclass
class Report:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    known: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def distinct(self) -> str:
        """One example per (method, path template, status) found, the first drawn."""
        first: dict[tuple[str, str, int], Finding] = {}
        for f in self.findings:
            first.setdefault((f.op.method, f.op.path, f.status), f)
        return "\n".join(f"{k[0]} {k[1]} ({k[2]}):\n  {f}" for k, f in first.items())

    def summary(self) -> str:
        per = ", ".join(f"{s} {n}" for s, n in sorted(self.cases.items()))
        codes = " ".join(f"{c}:{n}" for c, n in sorted(self.statuses.items()))
        return (
            f"fuzz: {self.total} cases in {self.seconds:.0f}s ({per}); statuses {codes}; "
            f"{len(self.findings)} responses >= 500 or hangs; {len(self.known)} known (excluded)"
        )


# ---- resources the path parameters can name ----


def _ok(r: Any) -> Any:
    assert r.status_code < 300, f"fuzz set-up failed: {r.status_code} {r.text[:500]}"
    return r.json() if r.content else {}


def create_resources(api: Api) -> dict[str, list[str]]:
    """Real objects for the path parameters, by parameter name; the identity ones (a project, a
    user, a role) are the fuzzer's own, so deleting or disabling them does not lock the run out."""
    a, n = "admin", uuid.uuid4().hex[:8]
    c = "/compute/v2.1"
    project = _ok(api.post("/identity/v3/projects", as_=a, json={"project": {"name": f"fz-{n}"}}))["project"]
    user = _ok(
        api.post("/identity/v3/users", as_=a, json={"user": {"name": f"fz-{n}", "password": DEMO_PW}})
    )["user"]
    role = _ok(api.post("/identity/v3/roles", as_=a, json={"role": {"name": f"fz-{n}"}}))["role"]
    flavor = _ok(
        api.post(
            f"{c}/flavors", as_=a, json={"flavor": {"name": f"fz-{n}", "ram": 64, "vcpus": 1, "disk": 1}}
        )
    )["flavor"]
    _ok(api.post(f"{c}/flavors/{flavor['id']}/os-extra_specs", as_=a, json={"extra_specs": {"fz:k": "v"}}))
    keypair = _ok(api.post(f"{c}/os-keypairs", version="2.1", json={"keypair": {"name": f"fz-{n}"}}))
    image = _ok(
        api.post(
            "/image/v2/images",
            json={"name": f"fz-{n}", "disk_format": "raw", "container_format": "bare", "tags": ["t1"]},
        )
    )
    network = _ok(api.post("/network/v2.0/networks", json={"network": {"name": f"fz-{n}"}}))["network"]
    subnet = _ok(
        api.post(
            "/network/v2.0/subnets",
            json={"subnet": {"network_id": network["id"], "cidr": "10.77.0.0/24", "ip_version": 4}},
        )
    )["subnet"]
    port = _ok(api.post("/network/v2.0/ports", json={"port": {"network_id": network["id"]}}))["port"]
    sg = _ok(api.post("/network/v2.0/security-groups", json={"security_group": {"name": f"fz-{n}"}}))
    rule = _ok(
        api.post(
            "/network/v2.0/security-group-rules",
            json={
                "security_group_rule": {
                    "security_group_id": sg["security_group"]["id"],
                    "direction": "ingress",
                }
            },
        )
    )["security_group_rule"]
    volume = _ok(api.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": f"fz-{n}"}}))["volume"]
    vtype = _ok(api.get("/volume/v3/types", as_=a))["volume_types"]
    group = _ok(
        api.post(
            f"{c}/os-server-groups", json={"server_group": {"name": f"fz-{n}", "policies": ["affinity"]}}
        )
    )["server_group"]
    agg = _ok(api.post(f"{c}/os-aggregates", as_=a, json={"aggregate": {"name": f"fz-{n}"}}))["aggregate"]
    rp = _ok(
        api.post(
            "/placement/resource_providers",
            as_=a,
            headers={"OpenStack-API-Version": "placement 1.20"},
            json={"name": f"fz-{n}"},
        )
    )
    tiny = _ok(api.get("/image/v2/images?name=novalite-tiny"))["images"][0]["id"]
    server = _ok(
        api.post(
            f"{c}/servers",
            json={
                "server": {
                    "name": f"fz-{n}",
                    "flavorRef": flavor["id"],
                    "imageRef": tiny,
                    "networks": "none",
                    "metadata": {"k": "v"},
                }
            },
            version="2.37",
        )
    )["server"]
    actions = _ok(api.get(f"{c}/servers/{server['id']}/os-instance-actions"))["instanceActions"]
    hypervisors = _ok(api.get(f"{c}/os-hypervisors", as_=a))["hypervisors"]
    services = _ok(api.get(f"{c}/os-services", as_=a))["services"]
    return {
        "server_id": [server["id"]],
        "project_id": [project["id"]],
        "url_project_id": [api.ids.get("demo_project", project["id"])],
        "user_id": [user["id"]],
        "role_id": [role["id"]],
        "domain_id": ["default"],
        "flavor_id": [flavor["id"]],
        "key": ["fz:k", "k"],
        "name": [keypair["keypair"]["name"] if "keypair" in keypair else f"fz-{n}"],
        "class_name": ["default"],
        "image_id": [image["id"], tiny],
        "tag": ["t1"],
        "network": [network["name"]],
        "request_id": [x["request_id"] for x in actions[:1]],
        "group_id": [group["id"], sg["security_group"]["id"]],
        "agg_id": [str(agg["id"])],
        "hypervisor_id": [str(h["id"]) for h in hypervisors[:1]],
        "pattern": [h["hypervisor_hostname"] for h in hypervisors[:1]],
        "service_id": [str(s["id"]) for s in services[:1]],
        "port_id": [port["id"]],
        "volume_id": [volume["id"]],
        "network_id": [network["id"]],
        "subnet_id": [subnet["id"]],
        "rule_id": [rule["id"]],
        "action": ["deactivate", "reactivate"],
        "uuid": [rp["uuid"]],
        "rc": ["VCPU", "MEMORY_MB", "CUSTOM_FZ"],
        "consumer_uuid": [server["id"]],
        "collection": ["networks", "ports", "subnets", "security-groups"],
        "resource_id": [network["id"], port["id"]],
        "alias": ["tag", "quotas"],
        "type_id": [t["id"] for t in vtype[:1]],
        "attachment_id": [],
        "other": ["v2", "v2.1/x"],
    }


# ---- the run ----


def _checker(api: Api, report: Report, op: openapi.Operation, known: Known) -> Callable[[Case], None]:
    service = openapi.service_of(op.path) or "?"

    def one(case: Case) -> None:
        status, text, seconds = _send(api, case)
        report.cases[service] += 1
        report.statuses[status] += 1
        if status >= 500 or seconds > HANG_SECONDS:
            finding = Finding(op, case, status, seconds, text)
            (report.known if (op.method, op.path, status) in known else report.findings).append(finding)

    return one


def _send(api: Api, case: Case) -> tuple[int, str, float]:
    start = time.monotonic()
    r = api.client.request(case.method, case.url, content=case.body, headers=case.headers)
    return r.status_code, r.text, time.monotonic() - start


def ordered(ops: list[openapi.Operation]) -> list[openapi.Operation]:
    """Deletes last (identity's very last), so the real resources live through the other cases."""
    return sorted(ops, key=lambda op: (op.method == "DELETE", op.path.startswith("/identity")))


def run(
    api: Api,
    *,
    per_op: int,
    seed_value: int,
    known: Known | None = None,
    services: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """``per_op`` seeded cases for every operation of the app (of ``services`` if given)."""
    report = Report()
    pool = create_resources(api)
    tokens = {"admin": api.tokens["admin"], "demo": api.tokens["demo"]}
    bodies = openapi.body_schemas()
    ops = [
        op
        for op in openapi.operations(api.client.app)
        if services is None or openapi.service_of(op.path) in services
    ]
    started = time.monotonic()
    for index, op in enumerate(ordered(ops)):
        strategy = case_strategy(op, bodies.get((op.method, op.path)), pool, tokens)
        one = _checker(api, report, op, known or {})
        test = settings(
            max_examples=per_op,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(seed(seed_value * 100003 + index)(given(case=strategy)(one)))
        test()
        if progress is not None:
            progress(f"{op.method} {op.path}: {report.total} cases so far")
    report.seconds = time.monotonic() - started
    return report

"""Issue 16: a bounded, seeded property-based fuzzer over every route of every service.

5,200 cases on SQLite and 2,100 on PostgreSQL by default, at least 5,000 and 1,000
(tests/functional/fuzz_strategies.py says what a case is); no answer may be a 5xx or take longer than
10 s. The counts are printed. More cases, another seed:
``.venv/bin/python bench/fuzz.py --cases 50000 --seed 7`` (docs/trust.md, "Input").
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest

from novalite.api import openapi
from tests.functional import fuzz_engine

SEED = int(os.environ.get("NOVALITE_FUZZ_SEED", "16"))
# (method, path template, status) -> why a finding there does not fail the run (each is still
# counted and printed as known); none today.
KNOWN: fuzz_engine.Known = {}


def _run(api: Any, total: int, capsys: pytest.CaptureFixture[str], *, minimum: int) -> None:
    per_op = math.ceil(total / len(openapi.operations(api.client.app)))
    report = fuzz_engine.run(api, per_op=per_op, seed_value=SEED, known=KNOWN)
    with capsys.disabled():
        print("\n" + report.summary())
    assert not report.findings, f"{len(report.findings)} findings:\n{report.distinct()}"
    assert report.total >= min(minimum, total), report.summary()


def test_fuzz_every_route_sqlite(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _run(stack, int(os.environ.get("NOVALITE_FUZZ_CASES", "5200")), capsys, minimum=5000)


def test_fuzz_every_route_postgres(stack_factory: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api = stack_factory(postgres=True)  # skipped loudly without PostgreSQL (NOVALITE_REQUIRE_SERVICES)
    _run(api, int(os.environ.get("NOVALITE_FUZZ_PG_CASES", "2100")), capsys, minimum=1000)

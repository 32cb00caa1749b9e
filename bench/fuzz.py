"""The seeded API fuzzer of tests/functional/test_fuzz.py, with as many cases as you ask for.

    .venv/bin/python bench/fuzz.py                          # 20,000 cases, seed 16, SQLite
    .venv/bin/python bench/fuzz.py --cases 100000 --seed 7
    .venv/bin/python bench/fuzz.py --services compute,network --cases 5000
    .venv/bin/python bench/fuzz.py --database-url postgresql+psycopg://postgres@127.0.0.1/fuzz

Builds an in-process deployment (fresh SQLite in a temporary directory unless --database-url names
an empty database), creates one of each resource, then draws ``cases / operations`` requests per
operation of every service's OpenAPI document (tests/functional/fuzz_strategies.py says what
they are). Prints the cases per service, the status counts and one example of each response >= 500 or
slower than 10 s; exits 1 when there is any. The same seed draws the same requests.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from pathlib import Path

warnings.simplefilter("ignore")  # before the imports: the test client warns as it loads
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from tests.conftest import ADMIN_PW, DEMO_PW, Api, make_settings  # noqa: E402
from tests.functional import fuzz_engine  # noqa: E402

from novalite.api import openapi  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=20000, help="cases in all (spread over the operations)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--services", default="", help="comma-separated (default: every service)")
    parser.add_argument(
        "--database-url", default="", help="an empty database (default: SQLite in a temp dir)"
    )
    parser.add_argument("--verbose", action="store_true", help="print each operation's progress")
    args = parser.parse_args()

    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap
    from novalite.db.base import upgrade

    with tempfile.TemporaryDirectory(prefix="novalite-fuzz-") as tmp:
        settings = make_settings(Path(tmp))
        if args.database_url:
            settings.database_url = args.database_url
        upgrade(settings.effective_database_url)
        runtime = build_runtime(settings)
        report_ids = bootstrap(runtime).ids
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            api = Api(client=client, ids=dict(report_ids))
            api.tokens["admin"] = api.token_for("admin", ADMIN_PW, "admin")
            api.tokens["demo"] = api.token_for("demo", DEMO_PW, "demo")
            services = set(args.services.split(",")) if args.services else None
            ops = [
                op
                for op in openapi.operations(client.app)
                if services is None or openapi.service_of(op.path) in services
            ]
            per_op = max(1, math.ceil(args.cases / max(1, len(ops))))
            print(f"{len(ops)} operations, {per_op} cases each, seed {args.seed}")
            report = fuzz_engine.run(
                api,
                per_op=per_op,
                seed_value=args.seed,
                services=services,
                progress=print if args.verbose else None,
            )
        runtime.db.dispose()
    print(report.summary())
    if report.findings:
        print(report.distinct())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Install novalite (pinned dependencies) into .venv and start it on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
exec .venv/bin/novalite serve "$@"

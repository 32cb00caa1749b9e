#!/usr/bin/env bash
# Install what the tests need (pinned) into .venv and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-qemu.sh || echo "warning: scripts/install-qemu.sh failed; the QEMU guest tests will skip" >&2
scripts/install-network.sh || echo "warning: scripts/install-network.sh failed; the data plane tests (tests/netns) will skip" >&2
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.lock
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
scripts/install-ansible.sh || echo "warning: scripts/install-ansible.sh failed; the Ansible e2e test will skip" >&2
.venv/bin/ruff check src tests bench
.venv/bin/mypy src/novalite
.venv/bin/python -m pytest -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Install what the tests need (pinned) into .venv and run the whole suite, in two phases:
#   1. with pytest-xdist (NOVALITE_TEST_WORKERS workers, default 3; a file's tests on one worker, so
#      a module's server starts once): every test that may share the machine (unit, functional and
#      most end-to-end tests: mostly waiting on a started process);
#   2. one at a time: the tests that need the machine to themselves (QEMU guests, the data plane's
#      namespaces, Tempest, benchmarks: SERIAL_PATHS in tests/conftest.py).
# Arguments go to both phases (paths, -k, -x, ...); a phase with nothing to run is no failure.
# NOVALITE_TEST_WORKERS=0: the whole suite in one sequential pytest, as before.
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

# --durations: the slowest tests of each phase are printed, to see where CI's time goes
pytest=(.venv/bin/python -m pytest -p no:cacheprovider --durations=25)
workers=${NOVALITE_TEST_WORKERS:-3}
if [ "$workers" = 0 ]; then
  exec "${pytest[@]}" "$@"
fi
stop_early=0
for arg in "$@"; do
  case $arg in -x | --exitfirst | --maxfail*) stop_early=1 ;; esac
done
NO_TESTS=5  # pytest's exit status when nothing was collected or everything was deselected

echo "== phase 1 of 2: in parallel ($workers workers)"
start=$SECONDS
parallel=0
"${pytest[@]}" -n "$workers" --dist loadfile --phase=parallel "$@" || parallel=$?
parallel_time=$((SECONDS - start))

serial=$NO_TESTS
serial_result="not run (-x: phase 1 failed)"
if [ "$parallel" = 0 ] || [ "$parallel" = "$NO_TESTS" ] || [ "$stop_early" = 0 ]; then
  echo "== phase 2 of 2: one at a time (QEMU guests, namespaces, Tempest, benchmarks)"
  start=$SECONDS
  serial=0
  "${pytest[@]}" --phase=serial "$@" || serial=$?
  serial_result="exit status $serial in $((SECONDS - start))s"
fi

echo "== phase 1 (parallel): exit status $parallel in ${parallel_time}s; phase 2 (one at a time): $serial_result"
if [ "$parallel" = "$NO_TESTS" ] && [ "$serial" = "$NO_TESTS" ]; then
  exit "$NO_TESTS"
fi
for status in "$parallel" "$serial"; do
  if [ "$status" != 0 ] && [ "$status" != "$NO_TESTS" ]; then
    exit "$status"
  fi
done
exit 0

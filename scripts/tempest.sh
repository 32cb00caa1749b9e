#!/usr/bin/env bash
# Run Tempest's compute API tests (the whole tempest.api.compute package) against a fresh
# `novalite serve`.
#
#   scripts/tempest.sh [extra `tempest run` arguments]
#
# Starts novalite (3 simulated hosts) on a free port with a temporary data dir, writes an
# accounts file and tempest.conf (tests/tempest/prepare.py), initialises a Tempest workspace and
# runs tests/tempest/include-list.txt minus tests/tempest/exclude-list.txt (the tests that cannot
# pass, with reasons) with --concurrency 2 (about 6 minutes). The exit status is Tempest's.
# A subset: TEMPEST_INCLUDE_LIST=FILE (regexes, one a line).
# Environment: TEMPEST_INCLUDE_LIST / TEMPEST_EXCLUDE_LIST (other lists; TEMPEST_EXCLUDE_LIST=/dev/null
# runs the known failures too), TEMPEST_CONCURRENCY (default 2),
# NOVALITE_VENV (the venv's bin directory, default .venv/bin),
# TEMPEST_KEEP=1 keeps the temp dir (its path is printed) for reading tempest.log/server.log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${NOVALITE_VENV:-$ROOT/.venv/bin}"
INCLUDE_LIST="${TEMPEST_INCLUDE_LIST:-$ROOT/tests/tempest/include-list.txt}"
EXCLUDE_LIST="${TEMPEST_EXCLUDE_LIST:-$ROOT/tests/tempest/exclude-list.txt}"
CONCURRENCY="${TEMPEST_CONCURRENCY:-2}"
# Nova's default filters plus the two hint filters devstack enables (Tempest's multi-node tests)
export NOVALITE_ENABLED_FILTERS="ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter"
ADMIN_PW="tempest-admin-secret"
DEMO_PW="tempest-demo-secret"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/novalite-tempest.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${TEMPEST_KEEP:-0}" = "1" ]; then
        echo "kept $WORK (server.log, workspace/tempest.log)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

PORT="$("$VENV/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"

NOVALITE_ADMIN_PASSWORD="$ADMIN_PW" NOVALITE_DEMO_PASSWORD="$DEMO_PW" HOME="$WORK" \
    "$VENV/novalite" serve --port "$PORT" --data-dir "$WORK/data" --fake-hosts 3 --no-clouds-yaml \
    --log-level warning >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "novalite serve exited early:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    if "$VENV/python" -c "import httpx, sys; sys.exit(httpx.get('$URL/compute/', timeout=1).status_code != 200)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

cd "$WORK"
"$VENV/tempest" init --name "novalite-$PORT" --workspace-path "$WORK/workspace.yaml" workspace >/dev/null
"$VENV/python" "$ROOT/tests/tempest/prepare.py" "$URL" "$ADMIN_PW" "$DEMO_PW" "$WORK/workspace"
cd "$WORK/workspace"
set +e
"$VENV/tempest" run --include-list "$INCLUDE_LIST" --exclude-list "$EXCLUDE_LIST" --concurrency "$CONCURRENCY" "$@"
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ] && [ -s "$WORK/server.log" ]; then
    echo "---- novalite server.log (tail) ----"
    tail -n 40 "$WORK/server.log"
fi
exit "$STATUS"

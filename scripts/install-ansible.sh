#!/usr/bin/env bash
# Install Ansible for the Ansible e2e test (tests/e2e/test_ansible.py), in a venv of its own.
#
# <dir>/venv: ansible-core and openstacksdk, pinned in requirements-ansible.lock. The
# openstack.cloud collection's newest release on PyPI (2.5.0, in ansible 11.13.0 and 12.x) reads
# openstack.version, which openstacksdk removed in 4.15 ("module 'openstack' has no attribute
# 'version'"), so its modules run with openstacksdk 4.14 there, as its users pin it.
# <dir>/collections: ansible_collections/openstack/cloud only, taken out of the pinned `ansible`
# package (its wheel is downloaded once, pip's cache keeps it; nothing else of it is installed).
# Each part is skipped when already there.
# Environment: NOVALITE_VENV (the project venv's bin directory, default .venv/bin),
# NOVALITE_ANSIBLE_DIR (<dir>, default <project venv>/ansible).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${NOVALITE_VENV:-$ROOT/.venv/bin}"
DIR="${NOVALITE_ANSIBLE_DIR:-$(dirname "$VENV")/ansible}"
ANSIBLE_VERSION="11.13.0"
COLLECTION_VERSION="2.5.0"
MANIFEST="$DIR/collections/ansible_collections/openstack/cloud/MANIFEST.json"

mkdir -p "$DIR"
[ -x "$DIR/venv/bin/python" ] || "$VENV/python" -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-ansible.lock"

if [ -f "$MANIFEST" ] && grep -q "\"version\": \"$COLLECTION_VERSION\"" "$MANIFEST"; then
    exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$VENV/pip" download -q --disable-pip-version-check --no-deps "ansible==$ANSIBLE_VERSION" -d "$TMP"
rm -rf "$DIR/collections/ansible_collections/openstack/cloud"
"$VENV/python" - "$TMP"/ansible-"$ANSIBLE_VERSION"-*.whl "$DIR/collections" <<'PY'
import sys
import zipfile

wheel, dest = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/openstack/cloud/"
with zipfile.ZipFile(wheel) as z:
    members = [n for n in z.namelist() if n.startswith(prefix)]
    z.extractall(dest, members)
print(f"openstack.cloud: {len(members)} files in {dest}")
PY

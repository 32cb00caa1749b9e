"""Ansible end to end (issue 19): a playbook using ``openstack.cloud.server`` with its default
options (``auto_ip`` on) against ``novalite serve`` through clouds.yaml ends with the server
ACTIVE and a floating IP, as the ``openstack`` CLI then shows; ``state: absent`` deletes it.

scripts/install-ansible.sh (run by scripts/test.sh) installs Ansible in a venv of its own,
``<venv>/ansible/venv`` (ansible-core and openstacksdk pinned in requirements-ansible.lock), and the
openstack.cloud collection into ``<venv>/ansible/collections``; the modules run with that venv's
Python. Without them the test skips loudly (fails with NOVALITE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

ANSIBLE_DIR = Path(os.environ.get("NOVALITE_ANSIBLE_DIR", Path(sys.executable).parent.parent / "ansible"))
ANSIBLE_BIN = ANSIBLE_DIR / "venv" / "bin"
COLLECTIONS = ANSIBLE_DIR / "collections"

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a server with the module's defaults (auto_ip, the project's only network)
      openstack.cloud.server:
        cloud: novalite
        name: ansible-vm
        image: novalite-tiny
        flavor: m1.tiny
        timeout: 180
      register: created
    - name: what the module returned
      ansible.builtin.debug:
        msg: "SERVER {{ created.server.id }} {{ created.server.status }} {{ created.server.access_ipv4 }}"
"""

DELETE = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - openstack.cloud.server:
        cloud: novalite
        name: ansible-vm
        state: absent
        delete_ips: true
"""


def _require_ansible() -> Path:
    playbook = ANSIBLE_BIN / "ansible-playbook"
    manifest = COLLECTIONS / "ansible_collections" / "openstack" / "cloud" / "MANIFEST.json"
    missing = [str(p) for p in (playbook, manifest) if not p.exists()]
    if missing:
        msg = f"Ansible is not installed ({', '.join(missing)} missing): run scripts/install-ansible.sh"
        if os.environ.get("NOVALITE_REQUIRE_SERVICES") == "1":
            pytest.fail(msg + " [NOVALITE_REQUIRE_SERVICES=1]")
        pytest.skip("SKIPPED LOUDLY: " + msg)
    return playbook


def _play(server: RunningServer, playbook: Path, tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    book = tmp / f"play-{len(list(tmp.glob('play-*')))}.yml"
    book.write_text(text)
    env = dict(
        server.env,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    cmd = [
        str(playbook),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={ANSIBLE_BIN / 'python'}",
        str(book),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, f"ansible-playbook failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    return proc


def _json(server: RunningServer, *args: str) -> Any:
    return json.loads(server.openstack(*args, "-f", "json").stdout)


def test_openstack_cloud_server_defaults_end_active_with_a_floating_ip(
    server: RunningServer, tmp_path: Path
) -> None:
    playbook = _require_ansible()
    # a cloud with an external network: the demo project's subnet routed to ``public``
    server.openstack("router", "create", "ansible-router")
    server.openstack("router", "set", "--external-gateway", "public", "ansible-router")
    server.openstack("router", "add", "subnet", "ansible-router", "private-subnet")

    out = _play(server, playbook, tmp_path, PLAYBOOK).stdout
    assert "changed=1" in out and "failed=0" in out, out[-3000:]

    shown = _json(server, "server", "show", "ansible-vm")
    assert shown["status"] == "ACTIVE"
    fips = _json(server, "floating", "ip", "list", "--long")
    port = _json(server, "port", "list", "--server", shown["id"])[0]["ID"]
    mapped = [f for f in fips if f["Port"] == port]
    assert len(mapped) == 1, fips
    address = mapped[0]["Floating IP Address"]
    assert address in json.dumps(shown["addresses"])
    assert f"SERVER {shown['id']} ACTIVE" in out

    _play(server, playbook, tmp_path, DELETE)
    assert server.openstack("server", "show", "ansible-vm", check=False).returncode != 0
    assert [f for f in _json(server, "floating", "ip", "list") if f["Floating IP Address"] == address] == []
    server.openstack("router", "remove", "subnet", "ansible-router", "private-subnet")
    server.openstack("router", "delete", "ansible-router")

"""The real `openstack` CLI and openstacksdk against `novalite serve`: identity."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunningServer

pytestmark = pytest.mark.e2e


def test_token_issue_as_demo(server: RunningServer) -> None:
    out = json.loads(server.openstack("token", "issue", "-f", "json").stdout)
    assert out["id"]
    assert out["project_id"]
    assert out["expires"]


def test_admin_creates_project_user_and_adds_role(server: RunningServer) -> None:
    admin = "novalite-admin"
    project = json.loads(server.openstack("project", "create", "cli-p1", "-f", "json", cloud=admin).stdout)
    assert project["name"] == "cli-p1"
    user = json.loads(
        server.openstack(
            "user", "create", "--project", "cli-p1", "--password", "pw-1", "cli-u1", "-f", "json", cloud=admin
        ).stdout
    )
    assert user["default_project_id"] == project["id"]
    server.openstack("role", "add", "--project", "cli-p1", "--user", "cli-u1", "member", cloud=admin)
    listed = json.loads(
        server.openstack(
            "role", "assignment", "list", "--user", "cli-u1", "--names", "-f", "json", cloud=admin
        ).stdout
    )
    assert any(a["Role"] == "member" and a["Project"].startswith("cli-p1") for a in listed)

    # the new user can authenticate with the SDK and sees its own project
    import openstack

    conn = openstack.connect(
        auth_url=f"{server.url}/identity",
        username="cli-u1",
        password="pw-1",
        project_name="cli-p1",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
        load_envvars=False,
        load_yaml_config=False,
    )
    assert conn.current_project_id == project["id"]


def test_member_calling_admin_api_gets_403(server: RunningServer) -> None:
    proc = server.openstack("project", "create", "not-allowed", check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr


def test_wrong_password_is_rejected(server: RunningServer) -> None:
    proc = server.openstack("--os-password", "wrong", "token", "issue", check=False)
    assert proc.returncode != 0
    assert "401" in proc.stderr or "authenticat" in proc.stderr.lower()

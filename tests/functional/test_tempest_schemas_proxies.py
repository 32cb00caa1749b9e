"""Volume attachments and the security-group proxy against Tempest's own response schemas.

Same harness as test_tempest_schemas.py (Tempest's unmodified service clients pick the schema
for the microversion, check status codes, the echoed microversion and every body).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.services.compute.security_group_rules_client import SecurityGroupRulesClient
from tempest.lib.services.compute.security_groups_client import SecurityGroupsClient
from tempest.lib.services.compute.servers_client import ServersClient

from tests.functional.tempest_inprocess import microversion, tempest_client
from tests.functional.test_tempest_schemas_servers import boot


def new_volume(stack: Any) -> str:
    """A 1 GiB blank volume through the embedded Cinder, once it is available."""
    r = stack.post("/volume/v3/volumes", json={"volume": {"size": 1, "name": "tempest-vol"}})
    assert r.status_code == 202, r.text
    volume_id = str(r.json()["volume"]["id"])
    stack.wait_for(f"/volume/v3/volumes/{volume_id}", lambda r: r.json()["volume"]["status"] == "available")
    return volume_id


def wait_volume(stack: Any, volume_id: str, status: str) -> None:
    stack.wait_for(f"/volume/v3/volumes/{volume_id}", lambda r: r.json()["volume"]["status"] == status)


@pytest.mark.parametrize("version", ["2.1", "2.70", "2.79", "2.89"])
def test_volume_attachments_match_tempest(stack: Any, version: str) -> None:
    server_id = boot(stack, "2.1")["id"]
    volume_id = new_volume(stack)
    client = tempest_client(stack, ServersClient)
    with microversion(version):
        attached = client.attach_volume(server_id, volumeId=volume_id)["volumeAttachment"]
        assert attached["volumeId"] == volume_id and attached["serverId"] == server_id
        wait_volume(stack, volume_id, "in-use")
        listed = client.list_volume_attachments(server_id)["volumeAttachments"]
        assert [a["volumeId"] for a in listed] == [volume_id]
        shown = client.show_volume_attachment(server_id, volume_id)["volumeAttachment"]
        assert shown["device"] == attached["device"]
        client.detach_volume(server_id, volume_id)
        wait_volume(stack, volume_id, "available")
        assert client.list_volume_attachments(server_id)["volumeAttachments"] == []
        with pytest.raises(lib_exc.NotFound):
            client.show_volume_attachment(server_id, volume_id)


def test_security_group_proxy_matches_tempest(stack: Any) -> None:
    groups = tempest_client(stack, SecurityGroupsClient)
    rules = tempest_client(stack, SecurityGroupRulesClient)
    with microversion("2.1"):
        group = groups.create_security_group(name="web", description="web servers")["security_group"]
        assert group["name"] == "web"
        assert "default" in [g["name"] for g in groups.list_security_groups()["security_groups"]]
        rule = rules.create_security_group_rule(
            parent_group_id=group["id"], ip_protocol="tcp", from_port=80, to_port=80, cidr="10.0.0.0/24"
        )["security_group_rule"]
        assert rule["ip_range"] == {"cidr": "10.0.0.0/24"}
        shown = groups.show_security_group(group["id"])["security_group"]
        assert [r["id"] for r in shown["rules"]] == [rule["id"]]
        rules.delete_security_group_rule(rule["id"])
        groups.delete_security_group(group["id"])
        deadline = time.monotonic() + 10
        while not groups.is_resource_deleted(group["id"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with microversion("2.36"), pytest.raises(lib_exc.NotFound):
        groups.list_security_groups()


def test_security_group_proxy_keeps_what_tempest_sent(stack: Any) -> None:
    """Tempest's SecurityGroups(Rules)TestJSON: names with spaces and CIDRs with host bits come
    back as given, groups can be renamed, a non-UUID parent group is a 400."""
    groups = tempest_client(stack, SecurityGroupsClient)
    rules = tempest_client(stack, SecurityGroupRulesClient)
    with microversion("2.1"):
        group = groups.create_security_group(name=" spaced name ", description="d")["security_group"]
        assert group["name"] == " spaced name "
        assert groups.show_security_group(group["id"])["security_group"]["name"] == " spaced name "
        rule = rules.create_security_group_rule(
            parent_group_id=group["id"], ip_protocol="tcp", from_port=22, to_port=22, cidr="10.2.3.124/24"
        )["security_group_rule"]
        assert rule["ip_range"] == {"cidr": "10.2.3.124/24"}
        updated = groups.update_security_group(group["id"], name="renamed", description="d2")[
            "security_group"
        ]
        assert (updated["name"], updated["description"]) == ("renamed", "d2")
        with pytest.raises(lib_exc.BadRequest):
            rules.create_security_group_rule(
                parent_group_id="not-a-uuid", ip_protocol="tcp", from_port=22, to_port=22
            )
        with pytest.raises(lib_exc.NotFound):
            groups.update_security_group("00000000-0000-0000-0000-000000000000", name="x", description="y")

"""Servers and the admin compute APIs against Tempest's own response schemas.

Same harness as test_tempest_schemas.py: Tempest's unmodified service clients pick the schema
for the requested microversion, check status codes, the echoed microversion header and every
body (``additionalProperties: false``). Covered: create (202 body), show/list/detail/update at
the microversions whose server view changes, instance actions, metadata, tags, ips, password,
server groups, hypervisors, services and aggregates.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.api_schema.response.compute.v2_53 import hypervisors as hypervisors_v253
from tempest.lib.services.compute.aggregates_client import AggregatesClient
from tempest.lib.services.compute.hypervisor_client import HypervisorClient
from tempest.lib.services.compute.images_client import ImagesClient
from tempest.lib.services.compute.server_groups_client import ServerGroupsClient
from tempest.lib.services.compute.servers_client import ServersClient
from tempest.lib.services.compute.services_client import ServicesClient

from tests.functional.tempest_inprocess import microversion, tempest_client

SERVER_VERSIONS = [
    "2.1",
    "2.3",
    "2.9",
    "2.16",
    "2.19",
    "2.26",
    "2.47",
    "2.63",
    "2.71",
    "2.73",
    "2.75",
    "2.90",
    "2.96",
]


def v(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def image_id(stack: Any) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def private_network(stack: Any) -> str:
    nets = stack.get("/network/v2.0/networks?name=private").json()["networks"]
    return str(next(n["id"] for n in nets if n["project_id"] == stack.ids["demo_project"]))


def wait_active(client: ServersClient, server_id: str) -> dict[str, Any]:
    """Poll as Tempest's waiter does: ACTIVE with no task state; ERROR fails at once."""
    deadline = time.monotonic() + 60
    while True:
        server = client.show_server(server_id)["server"]
        if server["status"] == "ACTIVE" and not server.get("OS-EXT-STS:task_state"):
            return dict(server)
        assert server["status"] != "ERROR", server.get("fault")
        assert time.monotonic() < deadline, f"server stuck in {server['status']}"
        time.sleep(0.05)


def boot(stack: Any, version: str = "2.1", **extra: Any) -> dict[str, Any]:
    """Create a server through Tempest's client at ``version`` and wait for ACTIVE."""
    client = tempest_client(stack, ServersClient)
    body: dict[str, Any] = {"name": "tempest-vm", "imageRef": image_id(stack), "flavorRef": "1", **extra}
    if v(version) >= (2, 37):
        body.setdefault("networks", "none")
    with microversion(version):
        response = client.create_server(**body)
        assert response.response["x-openstack-request-id"].startswith("req-")
        created = dict(response["server"])
        wait_active(client, created["id"])
    return created


def test_create_server_2_1_matches_tempest(stack: Any) -> None:
    created = boot(
        stack,
        "2.1",
        adminPass="s3cret",
        metadata={"k": "v"},
        accessIPv4="1.2.3.4",
        accessIPv6="::babe:dc0c:1602",
        **{"OS-DCF:diskConfig": "AUTO"},
    )
    assert created["adminPass"] == "s3cret"
    assert created["OS-DCF:diskConfig"] == "AUTO"
    with microversion("2.1"):
        shown = tempest_client(stack, ServersClient).show_server(created["id"])["server"]
    assert shown["metadata"] == {"k": "v"} and shown["accessIPv4"] == "1.2.3.4"


def test_access_ipv6_comes_back_compressed_as_tempest_expects(stack: Any) -> None:
    """Tempest's ServersTestJSON.test_verify_server_details sends the expanded form."""
    created = boot(stack, "2.1", accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")
    with microversion("2.1"):
        shown = tempest_client(stack, ServersClient).show_server(created["id"])["server"]
    assert shown["accessIPv6"] == "::babe:dc0c:1602"


def test_create_server_2_96_matches_tempest(stack: Any) -> None:
    created = boot(
        stack,
        "2.96",
        description="d",
        hostname="vm-host",
        tags=["a"],
        networks=[{"uuid": private_network(stack)}],
    )
    with microversion("2.96"):
        client = tempest_client(stack, ServersClient)
        shown = client.show_server(created["id"])["server"]
        assert shown["description"] == "d" and shown["tags"] == ["a"]
        addresses = client.list_addresses(created["id"])["addresses"]
        assert list(addresses) == ["private"]
        assert client.list_addresses_by_network(created["id"], "private")["private"] == addresses["private"]
        with pytest.raises(lib_exc.NotFound):
            client.list_addresses_by_network(created["id"], "nowhere")


def test_server_views_match_tempest_at_every_view_microversion(stack: Any) -> None:
    server_id = boot(stack, "2.1")["id"]
    failures = []
    for version in SERVER_VERSIONS:
        for who in ("demo", "admin"):
            client = tempest_client(stack, ServersClient, as_=who)
            params = {"all_tenants": 1} if who == "admin" else {}
            try:
                with microversion(version):
                    assert client.show_server(server_id)["server"]["id"] == server_id
                    assert server_id in [s["id"] for s in client.list_servers(**params)["servers"]]
                    assert server_id in [
                        s["id"] for s in client.list_servers(detail=True, **params)["servers"]
                    ]
                    client.update_server(server_id, name=f"renamed-{version}")
            except (lib_exc.TempestException, AssertionError) as exc:
                failures.append(f"{version} as {who}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)


def test_server_actions_and_instance_actions_match_tempest(stack: Any) -> None:
    server_id = boot(stack, "2.1")["id"]
    client = tempest_client(stack, ServersClient)
    with microversion("2.73"):
        client.lock_server(server_id, locked_reason="tempest")
        assert client.show_server(server_id)["server"]["locked_reason"] == "tempest"
        client.unlock_server(server_id)
    with microversion("2.1"):
        client.stop_server(server_id)
        client.start_server(server_id)
        wait_active(client, server_id)
    for version in ["2.1", "2.21", "2.51", "2.58", "2.62", "2.84"]:
        with microversion(version):
            actions = client.list_instance_actions(server_id)["instanceActions"]
            assert {a["action"] for a in actions} >= {"create", "lock", "stop", "start"}
            create = next(a for a in actions if a["action"] == "create")
            shown = client.show_instance_action(server_id, create["request_id"])["instanceAction"]
            assert shown["action"] == "create"


def test_server_metadata_password_and_tags_match_tempest(stack: Any) -> None:
    server_id = boot(stack, "2.1", metadata={"a": "1"})["id"]
    client = tempest_client(stack, ServersClient)
    with microversion("2.1"):
        assert client.list_server_metadata(server_id)["metadata"] == {"a": "1"}
        assert client.set_server_metadata(server_id, {"b": "2"})["metadata"] == {"b": "2"}
        assert client.update_server_metadata(server_id, {"c": "3"})["metadata"] == {"b": "2", "c": "3"}
        assert client.show_server_metadata_item(server_id, "b")["meta"] == {"b": "2"}
        assert client.set_server_metadata_item(server_id, "b", {"b": "9"})["meta"] == {"b": "9"}
        client.delete_server_metadata_item(server_id, "b")
        assert client.list_server_metadata(server_id)["metadata"] == {"c": "3"}
        assert client.show_password(server_id)["password"] == ""
        client.delete_password(server_id)
    with microversion("2.26"):
        assert client.update_all_tags(server_id, ["x", "y"])["tags"] == ["x", "y"]
        assert client.list_tags(server_id)["tags"] == ["x", "y"]
        client.check_tag_existence(server_id, "x")
        client.update_tag(server_id, "z")
        client.delete_tag(server_id, "x")
        assert sorted(client.list_tags(server_id)["tags"]) == ["y", "z"]
        client.delete_all_tags(server_id)
        with pytest.raises(lib_exc.NotFound):
            client.check_tag_existence(server_id, "y")
    with microversion("2.1"):
        client.delete_server(server_id)
        with pytest.raises(lib_exc.NotFound):
            client.show_server("00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize("version", ["2.1", "2.45"])
def test_create_image_matches_tempest_and_keeps_request_metadata(stack: Any, version: str) -> None:
    """Tempest's ImagesOneServerTestJSON: the request's metadata wins over image_type=snapshot."""
    server_id = boot(stack, "2.1")["id"]
    images = tempest_client(stack, ImagesClient)
    with microversion(version):
        created = images.create_image(server_id, name="snap", metadata={"image_type": "test"})
        if v(version) >= (2, 45):
            image_id = created["image_id"]
        else:
            image_id = created.response["location"].rsplit("/", 1)[1]
    with microversion("2.1"):
        image = images.show_image(image_id)["image"]
    assert image["name"] == "snap" and image["metadata"]["image_type"] == "test"
    assert image["server"]["id"] == server_id


@pytest.mark.parametrize("version", ["2.1", "2.13", "2.15", "2.64"])
def test_server_groups_match_tempest(stack: Any, version: str) -> None:
    client = tempest_client(stack, ServerGroupsClient)
    policy = "soft-affinity" if v(version) >= (2, 15) else "affinity"
    body: dict[str, Any] = {"policy": policy} if v(version) >= (2, 64) else {"policies": [policy]}
    with microversion(version):
        group = client.create_server_group(name="g", **body)["server_group"]
        assert [g["id"] for g in client.list_server_groups()["server_groups"]] == [group["id"]]
        assert client.show_server_group(group["id"])["server_group"]["name"] == "g"
        client.delete_server_group(group["id"])
        with pytest.raises(lib_exc.NotFound):
            client.show_server_group(group["id"])


@pytest.mark.parametrize("version", ["2.1", "2.33", "2.53"])
def test_hypervisors_match_tempest(stack: Any, version: str) -> None:
    boot(stack, "2.1")
    client = tempest_client(stack, HypervisorClient, as_="admin")
    with microversion(version):
        hypervisors = client.list_hypervisors()["hypervisors"]
        assert hypervisors
        detail = client.list_hypervisors(detail=True)["hypervisors"]
        first = detail[0]
        assert (
            client.show_hypervisor(first["id"])["hypervisor"]["hypervisor_hostname"]
            == first["hypervisor_hostname"]
        )
        if v(version) < (2, 53):
            assert client.search_hypervisor(first["hypervisor_hostname"])["hypervisors"]
            assert client.list_servers_on_hypervisor(first["hypervisor_hostname"])["hypervisors"]
        else:
            assert client.list_hypervisors(with_servers=True)["hypervisors"]
        assert client.show_hypervisor_statistics()["hypervisor_statistics"]["count"] == len(hypervisors)
        assert client.show_hypervisor_uptime(first["id"])["hypervisor"]["id"] == first["id"]
    with microversion(version), pytest.raises(lib_exc.Forbidden):
        tempest_client(stack, HypervisorClient).list_hypervisors()


# Nova 2.88 drops these from the hypervisor view and adds ``uptime``; Tempest's newest
# hypervisor schema is 2.53's, so the 2.88 one is derived from it.
REMOVED_IN_2_88 = [
    "current_workload",
    "cpu_info",
    "vcpus",
    "vcpus_used",
    "free_disk_gb",
    "disk_available_least",
    "local_gb",
    "local_gb_used",
    "free_ram_mb",
    "memory_mb",
    "memory_mb_used",
    "running_vms",
]


def hypervisor_schemas_2_88() -> tuple[dict[str, Any], dict[str, Any]]:
    """(detail list, show) response schemas for 2.88, derived from Tempest's 2.53 ones."""
    detail = copy.deepcopy(hypervisors_v253.hypervisor_detail)
    for name in REMOVED_IN_2_88:
        detail["properties"].pop(name)
        detail["required"].remove(name)
    detail["properties"]["uptime"] = {"type": ["string", "null"]}
    detail["required"].append("uptime")
    listing = copy.deepcopy(hypervisors_v253.list_hypervisors_detail)
    listing["response_body"]["properties"]["hypervisors"]["items"] = detail
    show = copy.deepcopy(hypervisors_v253.get_hypervisor)
    show["response_body"]["properties"]["hypervisor"] = detail
    return listing, show


def test_hypervisors_2_88_match_tempest_2_53_schema_minus_removed_fields(stack: Any) -> None:
    boot(stack, "2.1")
    client = tempest_client(stack, HypervisorClient, as_="admin")
    listing, show = hypervisor_schemas_2_88()
    with microversion("2.88"):
        listed = client.list_hypervisors()["hypervisors"]
        resp, body = client.get("os-hypervisors/detail")
        client.validate_response(listing, resp, json.loads(body))
        resp, body = client.get(f"os-hypervisors/{listed[0]['id']}")
        client.validate_response(show, resp, json.loads(body))
        with pytest.raises(lib_exc.NotFound):
            client.show_hypervisor_statistics()
        with pytest.raises(lib_exc.NotFound):
            client.show_hypervisor_uptime(listed[0]["id"])


@pytest.mark.parametrize("version", ["2.1", "2.11", "2.53", "2.69"])
def test_services_match_tempest(stack: Any, version: str) -> None:
    client = tempest_client(stack, ServicesClient, as_="admin")
    with microversion(version):
        services = client.list_services()["services"]
        compute = next(s for s in services if s["binary"] == "nova-compute")
        host = compute["host"]
        assert client.list_services(binary="nova-compute", host=host)["services"][0]["host"] == host
        if v(version) < (2, 53):
            client.disable_service(host=host, binary="nova-compute")
            client.enable_service(host=host, binary="nova-compute")
            if v(version) >= (2, 11):
                client.update_forced_down(host=host, binary="nova-compute", forced_down=True)
                client.update_forced_down(host=host, binary="nova-compute", forced_down=False)
        else:
            disabled = client.update_service(compute["id"], status="disabled", disabled_reason="t")["service"]
            assert disabled["status"] == "disabled"
            assert client.update_service(compute["id"], status="enabled")["service"]["status"] == "enabled"


@pytest.mark.parametrize("version", ["2.1", "2.41"])
def test_aggregates_match_tempest(stack: Any, version: str) -> None:
    client = tempest_client(stack, AggregatesClient, as_="admin")
    with microversion(version):
        host = tempest_client(stack, ServicesClient, as_="admin").list_services(binary="nova-compute")[
            "services"
        ][0]["host"]
        agg = client.create_aggregate(name="agg", availability_zone="zone-a")["aggregate"]
        assert [a["id"] for a in client.list_aggregates()["aggregates"]] == [agg["id"]]
        assert client.update_aggregate(agg["id"], name="agg2")["aggregate"]["name"] == "agg2"
        assert client.add_host(agg["id"], host=host)["aggregate"]["hosts"] == [host]
        meta = client.set_metadata(agg["id"], metadata={"k": "v"})["aggregate"]["metadata"]
        assert meta["k"] == "v"
        assert client.show_aggregate(agg["id"])["aggregate"]["availability_zone"] == "zone-a"
        assert client.remove_host(agg["id"], host=host)["aggregate"]["hosts"] == []
        client.delete_aggregate(agg["id"])
        with pytest.raises(lib_exc.NotFound):
            client.show_aggregate(agg["id"])

"""Table-driven tests of the create pipeline's pure steps: naming, AZ parsing, BDM conversion,
networks parsing, passwords and reservation ids."""

from __future__ import annotations

import re
from typing import Any

import pytest

from novalite.api.microversion import V
from novalite.context import RequestContext
from novalite.domain.request_spec import networks_to_doc
from novalite.errors import BadRequest, PolicyNotAuthorized
from novalite.services.create_server.request import (
    CreateServerRequest,
    generate_password,
    generate_reservation_id,
    normalize_ip,
)
from novalite.services.create_server.steps import block_devices, destination, naming, networks

MEMBER = RequestContext(user_id="u", project_id="p", roles=("member",))
ADMIN = RequestContext(user_id="a", project_id="p", roles=("admin",))
IMAGE = "11111111-2222-3333-4444-555555555555"


def request(
    ctx: RequestContext = MEMBER, version: tuple[int, int] = (2, 1), **server: Any
) -> CreateServerRequest:
    body = {"server": {"name": "vm", "flavorRef": "1", "imageRef": IMAGE, **server}}
    return CreateServerRequest.from_body(body, ctx, V(*version))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "web"),
        ("My Server_1.example", "my-server-1-example"),
        ("--edge--", "edge"),
        ("a" * 70, "a" * 63),
        ("héllo wörld", "héllo-wörld"),
        ("日本", ""),
        ("a!b@c", "abc"),
    ],
)
def test_sanitize_hostname(name: str, expected: str) -> None:
    assert naming.sanitize_hostname(name) == expected


def test_hostnames_and_names_for_many() -> None:
    assert naming.hostname("日本", None, "uuid-1", 0, 1) == "Server-uuid-1"
    assert naming.hostname("web", None, "x", 1, 3) == "web-2"
    assert naming.hostname("web", "chosen", "x", 0, 1) == "chosen"
    assert [naming.display_name("web", i, 3) for i in range(3)] == ["web-1", "web-2", "web-3"]
    assert naming.display_name("web", 0, 1) == "web"


@pytest.mark.parametrize(
    ("zone", "ctx", "expected"),
    [
        (None, MEMBER, (None, None, None)),
        ("az1", MEMBER, ("az1", None, None)),
        ("az1:host1", ADMIN, ("az1", "host1", None)),
        ("az1:host1:node1", ADMIN, ("az1", "host1", "node1")),
        ("az1::node1", ADMIN, ("az1", None, "node1")),
        (":host1", ADMIN, (None, "host1", None)),
    ],
)
def test_parse_availability_zone(zone: str | None, ctx: RequestContext, expected: tuple[Any, ...]) -> None:
    dest = destination.parse_availability_zone(request(ctx, availability_zone=zone) if zone else request(ctx))
    assert (dest.availability_zone, dest.forced_host, dest.forced_node) == expected


def test_parse_availability_zone_refusals() -> None:
    with pytest.raises(BadRequest, match="Unable to parse availability_zone"):
        destination.parse_availability_zone(request(ADMIN, availability_zone="a:b:c:d"))
    with pytest.raises(PolicyNotAuthorized):
        destination.parse_availability_zone(request(MEMBER, availability_zone="az:host"))


def test_requested_destination_2_74() -> None:
    req = request(ADMIN, (2, 74), host="h1", hypervisor_hostname="n1")
    dest = destination.add_requested_destination(req, destination.parse_availability_zone(req))
    assert dest.requested_destination == {"host": "h1", "node": "n1"}
    req = request(ADMIN, (2, 74), host="h1", availability_zone="az:h1")
    with pytest.raises(BadRequest, match="Cannot specify both"):
        destination.add_requested_destination(req, destination.parse_availability_zone(req))


def test_plain_image_boot_gets_a_root_disk() -> None:
    bdms = block_devices.convert_legacy(request(), IMAGE)
    assert bdms == [
        {
            "source_type": "image",
            "destination_type": "local",
            "image_id": IMAGE,
            "boot_index": 0,
            "delete_on_termination": True,
        }
    ]
    block_devices.check_boot_sequence(bdms)
    assert not block_devices.is_boot_from_volume(bdms)


def test_legacy_volume_root_is_boot_from_volume() -> None:
    req = request(imageRef="", block_device_mapping=[{"volume_id": IMAGE, "device_name": "/dev/vda"}])
    bdms = block_devices.convert_legacy(req, "")
    assert bdms[0]["source_type"] == "volume" and bdms[0]["boot_index"] == 0
    assert block_devices.is_boot_from_volume(bdms)


@pytest.mark.parametrize(
    ("bdm", "message"),
    [
        ({"source_type": "blank", "destination_type": "local", "uuid": IMAGE}, "Invalid device UUID"),
        ({"source_type": "volume", "destination_type": "volume"}, "Missing device UUID"),
        (
            {"source_type": "image", "destination_type": "local", "uuid": IMAGE, "boot_index": 1},
            "Mapping image to local is not supported",
        ),
    ],
)
def test_bdm_v2_format_errors(bdm: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        block_devices.convert_v2(request(block_device_mapping_v2=[bdm]))


@pytest.mark.parametrize(
    ("indexes", "ok"),
    [
        ([0], True),
        ([0, 1, 2], True),
        ([1], False),
        ([0, 2], False),
        ([], False),
        ([None, 0], True),
        ([-1, 0], True),
    ],
)
def test_boot_sequence(indexes: list[int | None], ok: bool) -> None:
    bdms = [{"boot_index": i} for i in indexes]
    if ok:
        block_devices.check_boot_sequence(bdms)
    else:
        with pytest.raises(BadRequest, match="Boot sequence"):
            block_devices.check_boot_sequence(bdms)


def test_networks_parsing() -> None:
    assert networks.parse_networks(request()) is None
    parsed = networks.parse_networks(request(networks=[{"uuid": IMAGE, "fixed_ip": "10.0.0.5", "tag": "t"}]))
    assert networks_to_doc(parsed) == [
        {"network_id": IMAGE, "port_id": None, "fixed_ip": "10.0.0.5", "tag": "t"}
    ]
    with pytest.raises(BadRequest, match="missing 'uuid'"):
        networks.parse_networks(request(networks=[{"fixed_ip": "10.0.0.5"}]))
    with pytest.raises(BadRequest, match="not in proper format"):
        networks.parse_networks(request(networks=[{"uuid": "net-1"}]))
    with pytest.raises(BadRequest, match="already in use"):
        networks.parse_networks(request(networks=[{"port": IMAGE}, {"port": IMAGE}]))


def test_request_normalisation() -> None:
    req = request(
        MEMBER,
        (2, 19),
        name="  spaced  ",
        flavorRef="http://x/compute/flavors/42",
        min_count="2",
        security_groups=[{"name": "b"}, {"name": "a"}, {"name": "b"}],
        accessIPv6="0:0::1",
    )
    assert req.name == "spaced" and req.flavor_ref == "42" and (req.min_count, req.max_count) == (2, 2)
    assert req.description is None and req.security_groups == ("a", "b")
    assert req.access_ip_v6 == "::1"
    assert request(name="vm").description == "vm"  # before 2.19 the description is the name
    with pytest.raises(BadRequest, match="min_count must be <= max_count"):
        request(min_count=3, max_count=2)
    assert normalize_ip("010.1.2.3") == "010.1.2.3"  # not an address: left as given


def test_password_and_reservation_id() -> None:
    for _ in range(50):
        password = generate_password()
        assert len(password) == 12 and not set(password) & set("01IOl")
        assert re.search("[2-9]", password) and re.search("[A-Z]", password) and re.search("[a-z]", password)
    assert re.fullmatch(r"r-[0-9a-z]{8}", generate_reservation_id())

"""POST /servers refusals: a table of invalid requests, each with its status, Nova fault envelope
key and message gist, at the microversion where the rule applies. Nothing may be a 500 and no
refused request may leave a server behind."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from tests.conftest import Api

ENVELOPE = {
    400: "badRequest",
    403: "forbidden",
    404: "itemNotFound",
    409: "conflictingRequest",
    415: "badMediaType",
}
RANDOM = str(uuid.uuid4())


@dataclass
class Case:
    name: str
    server: Callable[[dict[str, Any]], dict[str, Any]] | dict[str, Any]  # changes to the base server
    status: int
    gist: str
    version: str = "2.1"
    as_: str = "demo"
    body: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None  # whole-body override
    setup_keys: tuple[str, ...] = field(default_factory=tuple)


def _with(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(ctx: dict[str, Any]) -> dict[str, Any]:
        return {k: (v(ctx) if callable(v) else v) for k, v in changes.items()}

    return apply


def _without(*keys: str) -> dict[str, Any]:
    return {k: None for k in keys}  # None = drop the key


def _bdm(**kw: Any) -> dict[str, Any]:
    return kw


def _img(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda ctx: ctx[key]


B64 = base64.b64encode(b"hello").decode()
NONE = "none"

CASES: list[Case] = [
    # --- schema, 2.1 ---
    Case("missing name", _without("name"), 400, "'name' is a required property"),
    Case("missing flavorRef", _without("flavorRef"), 400, "'flavorRef' is a required property"),
    Case("empty name", {"name": ""}, 400, "Invalid input for field/attribute name"),
    Case("name too long", {"name": "x" * 256}, 400, "Invalid input for field/attribute name"),
    Case("name with leading space", {"name": " vm"}, 400, "Invalid input for field/attribute name"),
    Case("name not a string", {"name": 12}, 400, "Invalid input for field/attribute name"),
    Case("unknown server field", {"foo": "bar"}, 400, "Additional properties are not allowed"),
    Case("imageRef not a uuid", {"imageRef": "abc"}, 400, "Invalid input for field/attribute imageRef"),
    Case("empty flavorRef", {"flavorRef": ""}, 400, "Invalid input for field/attribute flavorRef"),
    Case("min_count zero", {"min_count": 0}, 400, "Invalid input for field/attribute min_count"),
    Case("min_count not digits", {"min_count": "abc"}, 400, "Invalid input for field/attribute min_count"),
    Case("max_count negative", {"max_count": -1}, 400, "Invalid input for field/attribute max_count"),
    Case(
        "min_count above max_count", {"min_count": 3, "max_count": 2}, 400, "min_count must be <= max_count"
    ),
    Case("accessIPv4 invalid", {"accessIPv4": "1.2.3"}, 400, "Invalid input for field/attribute accessIPv4"),
    Case("accessIPv6 invalid", {"accessIPv6": "zz::1"}, 400, "Invalid input for field/attribute accessIPv6"),
    Case("diskConfig invalid", {"OS-DCF:diskConfig": "FOO"}, 400, "OS-DCF:diskConfig"),
    Case("user_data not base64", {"user_data": "@@@not base64@@@"}, 400, "user_data"),
    Case("user_data too long", {"user_data": "QUFB" * 16384}, 400, "user_data"),
    Case("metadata value too long", {"metadata": {"a": "x" * 256}}, 400, "Invalid input for field/attribute"),
    Case("metadata bad key", {"metadata": {"a/b": "x"}}, 400, "does not match any of the regexes"),
    Case("metadata value not a string", {"metadata": {"a": 1}}, 400, "Invalid input for field/attribute"),
    Case("config_drive not boolean", {"config_drive": "maybe"}, 400, "config_drive"),
    Case(
        "return_reservation_id not boolean",
        {"return_reservation_id": "perhaps"},
        400,
        "return_reservation_id",
    ),
    Case(
        "security group empty name",
        {"security_groups": [{"name": ""}]},
        400,
        "Invalid input for field/attribute",
    ),
    Case(
        "bdm v2 bad source_type", {"block_device_mapping_v2": [{"source_type": "floppy"}]}, 400, "source_type"
    ),
    Case(
        "bdm v2 unknown field",
        {"block_device_mapping_v2": [{"source_type": "blank", "foo": 1}]},
        400,
        "Additional properties are not allowed",
    ),
    Case(
        "network tag before 2.32",
        {"networks": [{"uuid": RANDOM, "tag": "t"}]},
        400,
        "Additional properties are not allowed",
        version="2.31",
    ),
    Case(
        "description before 2.19",
        {"description": "d"},
        400,
        "Additional properties are not allowed",
        version="2.18",
    ),
    Case(
        "personality contents not base64",
        {"personality": [{"path": "/a", "contents": "%%%"}]},
        400,
        "contents",
    ),
    Case(
        "scheduler hint group not a uuid",
        {},
        400,
        "Invalid input for field/attribute group",
        body=lambda ctx, server: {"server": server, "os:scheduler_hints": {"group": "nope"}},
    ),
    Case(
        "unknown top-level key",
        {},
        400,
        "Additional properties are not allowed",
        body=lambda ctx, server: {"server": server, "extra": 1},
    ),
    Case(
        "server not an object",
        {},
        400,
        "Invalid input for field/attribute server",
        body=lambda ctx, server: {"server": "vm"},
    ),
    Case("body not an object", {}, 400, "Invalid input for field/attribute", body=lambda ctx, server: [1, 2]),
    # --- schema, later microversions ---
    Case(
        "networks required from 2.37",
        _without("networks"),
        400,
        "'networks' is a required property",
        version="2.37",
    ),
    Case(
        "networks bogus string",
        {"networks": "bogus"},
        400,
        "Invalid input for field/attribute networks",
        version="2.37",
    ),
    Case(
        "network uuid not a uuid at 2.37",
        {"networks": [{"uuid": "net-1"}]},
        400,
        "Invalid input for field/attribute",
        version="2.37",
    ),
    Case(
        "network tag in 2.37-2.41",
        {"networks": [{"uuid": RANDOM, "tag": "t"}]},
        400,
        "Invalid input for field/attribute networks",
        version="2.41",
    ),
    Case(
        "description too long",
        {"description": "d" * 256},
        400,
        "Invalid input for field/attribute description",
        version="2.19",
    ),
    Case("tags before 2.52", {"tags": ["a"]}, 400, "Additional properties are not allowed", version="2.51"),
    Case(
        "too many tags",
        {"tags": [f"t{i}" for i in range(51)]},
        400,
        "Invalid input for field/attribute tags",
        version="2.52",
    ),
    Case("tag with a slash", {"tags": ["a/b"]}, 400, "Invalid input for field/attribute", version="2.52"),
    Case(
        "personality removed at 2.57",
        {"personality": [{"path": "/a", "contents": B64}]},
        400,
        "Additional properties are not allowed",
        version="2.57",
    ),
    Case(
        "trusted certs before 2.63",
        {"trusted_image_certificates": ["a"]},
        400,
        "Additional properties are not allowed",
        version="2.62",
    ),
    Case(
        "trusted certs empty list",
        {"trusted_image_certificates": []},
        400,
        "Invalid input for field/attribute trusted_image_certificates",
        version="2.63",
    ),
    Case(
        "volume_type before 2.67",
        {
            "block_device_mapping_v2": [
                {"source_type": "blank", "destination_type": "volume", "volume_size": 1, "volume_type": "x"}
            ]
        },
        400,
        "Additional properties are not allowed",
        version="2.66",
    ),
    Case("host before 2.74", {"host": "h1"}, 400, "Additional properties are not allowed", version="2.73"),
    Case(
        "hostname before 2.90",
        {"hostname": "abc"},
        400,
        "Additional properties are not allowed",
        version="2.89",
    ),
    Case(
        "hostname too short at 2.90",
        {"hostname": "a"},
        400,
        "Invalid input for field/attribute hostname",
        version="2.90",
    ),
    Case(
        "hostname with dot at 2.90",
        {"hostname": "a.b"},
        400,
        "Invalid input for field/attribute hostname",
        version="2.90",
    ),
    Case(
        "hostname bad char at 2.94",
        {"hostname": "a b"},
        400,
        "Invalid input for field/attribute hostname",
        version="2.94",
    ),
    # --- controller and compute API checks ---
    Case("missing imageRef", _without("imageRef"), 400, "Missing imageRef attribute"),
    Case("unknown image", {"imageRef": RANDOM}, 400, "Can not find requested image"),
    Case("unknown flavor", {"flavorRef": "999"}, 400, "Flavor 999 could not be found."),
    Case(
        "unknown flavor by URL",
        {"flavorRef": "http://x/compute/flavors/998"},
        400,
        "Flavor 998 could not be found.",
    ),
    Case("disabled flavor", _with(flavorRef=_img("disabled_flavor")), 400, "could not be found"),
    Case(
        "both bdm syntaxes",
        {
            "block_device_mapping": [{"volume_id": RANDOM, "device_name": "vdb"}],
            "block_device_mapping_v2": [{"source_type": "blank", "destination_type": "local"}],
        },
        400,
        "Using different block_device_mapping syntaxes is not allowed",
    ),
    Case(
        "blank bdm with uuid",
        {"block_device_mapping_v2": [{"source_type": "blank", "destination_type": "local", "uuid": RANDOM}]},
        400,
        "Invalid device UUID",
    ),
    Case(
        "volume bdm without uuid",
        {
            "block_device_mapping_v2": [
                {"source_type": "volume", "destination_type": "volume", "boot_index": 0}
            ]
        },
        400,
        "Missing device UUID",
    ),
    Case(
        "image to local without imageRef",
        _with(
            imageRef="",
            block_device_mapping_v2=lambda ctx: [
                {"source_type": "image", "destination_type": "local", "uuid": ctx["image"], "boot_index": 0}
            ],
        ),
        400,
        "Mapping image to local is not supported",
    ),
    Case(
        "image to local not at boot index 0",
        _with(
            block_device_mapping_v2=lambda ctx: [
                {"source_type": "image", "destination_type": "local", "uuid": ctx["image"], "boot_index": 1}
            ]
        ),
        400,
        "Mapping image to local is not supported",
    ),
    Case(
        "bdm v2 without a boot index 0",
        {
            "block_device_mapping_v2": [
                {"source_type": "blank", "destination_type": "local", "boot_index": 1, "volume_size": 1}
            ]
        },
        400,
        "Boot sequence",
    ),
    Case(
        "volume_type with local destination",
        {
            "block_device_mapping_v2": [
                {"source_type": "blank", "destination_type": "local", "volume_type": "x"}
            ]
        },
        400,
        "volume_type with destination_type=local",
        version="2.67",
    ),
    Case(
        "volumes for several instances",
        {"max_count": 2, "block_device_mapping": [{"volume_id": RANDOM, "device_name": "vda"}]},
        400,
        "Cannot attach one or more volumes to multiple instances",
    ),
    Case(
        "two swap disks",
        _with(
            block_device_mapping_v2=lambda ctx: [
                {"source_type": "image", "destination_type": "local", "uuid": ctx["image"], "boot_index": 0},
                {
                    "source_type": "blank",
                    "destination_type": "local",
                    "guest_format": "swap",
                    "volume_size": 1,
                },
                {
                    "source_type": "blank",
                    "destination_type": "local",
                    "guest_format": "swap",
                    "volume_size": 1,
                },
            ]
        ),
        400,
        "More than one swap",
    ),
    Case(
        "ephemeral larger than flavor",
        _with(
            block_device_mapping_v2=lambda ctx: [
                {"source_type": "image", "destination_type": "local", "uuid": ctx["image"], "boot_index": 0},
                {"source_type": "blank", "destination_type": "local", "volume_size": 5},
            ]
        ),
        400,
        "Ephemeral disks requested are larger",
    ),
    Case(
        "unparsable availability zone",
        {"availability_zone": "a:b:c:d"},
        400,
        "Unable to parse availability_zone",
        as_="admin",
    ),
    Case(
        "unknown availability zone",
        {"availability_zone": "nowhere"},
        400,
        "The requested availability zone is not available",
    ),
    Case("unknown key pair", {"key_name": "nokey"}, 400, "Invalid key_name provided."),
    Case("unknown security group", {"security_groups": [{"name": "no-such-group"}]}, 400, "no-such-group"),
    Case(
        "unknown network",
        {"networks": [{"uuid": RANDOM}]},
        400,
        f"Network {RANDOM} could not be found",
        version="2.37",
    ),
    Case(
        "unknown port",
        {"networks": [{"port": RANDOM}]},
        400,
        f"Port id {RANDOM} could not be found",
        version="2.37",
    ),
    Case(
        "port with fixed ip",
        {"networks": [{"port": RANDOM, "fixed_ip": "10.0.0.5"}]},
        400,
        "cannot be specified together",
        version="2.37",
    ),
    Case(
        "network without uuid",
        {"networks": [{"fixed_ip": "10.0.0.5"}]},
        400,
        "Bad network format: missing 'uuid'",
    ),
    Case(
        "fixed ip for several instances",
        {"max_count": 2, "networks": [{"uuid": RANDOM, "fixed_ip": "10.0.0.5"}]},
        400,
        "max_count cannot be greater than 1 if an fixed_ip is specified",
        version="2.37",
    ),
    Case(
        "one port for several instances",
        {"max_count": 2, "networks": [{"port": RANDOM}]},
        400,
        "Unable to launch multiple instances with a single configured port ID",
        version="2.37",
    ),
    Case(
        "one hostname for several instances",
        {"max_count": 2, "hostname": "web"},
        400,
        "Unable to allocate a single hostname to multiple instances",
        version="2.90",
    ),
    Case(
        "unknown server group",
        {},
        400,
        f"Instance group {RANDOM} could not be found",
        body=lambda ctx, server: {"server": server, "os:scheduler_hints": {"group": RANDOM}},
    ),
    Case("image not active", _with(imageRef=_img("queued_image")), 400, "is not active"),
    Case(
        "flavor memory too small",
        _with(imageRef=_img("big_ram_image")),
        400,
        "Flavor's memory is too small for requested image",
    ),
    Case(
        "flavor disk below image min_disk",
        _with(imageRef=_img("big_disk_image")),
        400,
        "Flavor's disk is too small for requested image",
    ),
    Case(
        "auto disk config disabled by image",
        _with(imageRef=_img("no_auto_disk_image"), **{"OS-DCF:diskConfig": "AUTO"}),
        400,
        "has automatic disk resize disabled",
    ),
    Case(
        "trusted certs when booting from volume",
        _with(
            imageRef="",
            trusted_image_certificates=["cert-1"],
            block_device_mapping_v2=[
                {"source_type": "volume", "destination_type": "volume", "uuid": RANDOM, "boot_index": 0}
            ],
        ),
        400,
        "not supported when booting from volume",
        version="2.63",
    ),
    Case(
        "image of an encrypted volume",
        _with(imageRef=_img("encrypted_image")),
        400,
        "Direct booting of an image uploaded from an encrypted volume is unsupported",
    ),
    Case(
        "image with a bad img_config_drive",
        _with(imageRef=_img("bad_config_drive_image")),
        400,
        "config drive option",
    ),
    Case(
        "image whose kernel is missing",
        _with(imageRef=_img("missing_kernel_image")),
        400,
        f"Image {RANDOM} could not be found.",
    ),
    Case(
        "requested host with az:host",
        {"host": "host1", "availability_zone": "nova:host1"},
        400,
        "Cannot specify both host and/or hypervisor_hostname",
        version="2.74",
        as_="admin",
    ),
    Case(
        "requested host unknown",
        {"host": "no-such-host"},
        400,
        "Compute host no-such-host could not be found",
        version="2.74",
        as_="admin",
    ),
    Case(
        "requested node unknown",
        {"hypervisor_hostname": "no-such-node"},
        400,
        "Compute host no-such-node could not be found",
        version="2.74",
        as_="admin",
    ),
    # --- policy and quota (403) ---
    Case(
        "forced host by a member",
        {"availability_zone": "nova:host1"},
        403,
        "os_compute_api:servers:create:forced_host",
    ),
    Case(
        "forced node by a member",
        {"availability_zone": "nova::node1"},
        403,
        "os_compute_api:servers:create:forced_host",
    ),
    Case("requested host by a member", {"host": "host1"}, 403, "requested_destination", version="2.74"),
    Case(
        "zero disk flavor by a member",
        _with(flavorRef=_img("zero_disk_flavor")),
        403,
        "Only volume-backed servers are allowed for flavors with zero disk",
    ),
    Case(
        "too many metadata items",
        {"metadata": {f"k{i}": "v" for i in range(129)}},
        403,
        "Maximum number of metadata items exceeds 128",
    ),
    Case(
        "too many personality files",
        {"personality": [{"path": f"/f{i}", "contents": B64} for i in range(6)]},
        403,
        "Personality file limit exceeded",
    ),
    Case(
        "personality path too long",
        {"personality": [{"path": "/" + "p" * 300, "contents": B64}]},
        403,
        "Personality file path exceeds maximum 255",
    ),
    Case("more instances than the quota", {"min_count": 11}, 403, "Quota exceeded for instances"),
    Case("more cores than the quota", {"flavorRef": "5", "min_count": 3}, 403, "Quota exceeded for cores"),
]


def _setup(stack: Api) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    images = stack.get("/image/v2/images?name=novalite-tiny").json()["images"]
    ctx["image"] = images[0]["id"]

    def image(name: str, **fields: Any) -> str:
        r = stack.post(
            "/image/v2/images",
            json={"name": name, "disk_format": "raw", "container_format": "bare", **fields},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def upload(image_id: str) -> None:
        r = stack.put(
            f"/image/v2/images/{image_id}/file",
            content=b"x" * 1024,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 204, r.text

    ctx["queued_image"] = image("queued")
    for key, fields in (
        ("big_ram_image", {"min_ram": 100000}),
        ("big_disk_image", {"min_disk": 50}),
        ("no_auto_disk_image", {"auto_disk_config": "disabled"}),
        ("encrypted_image", {"cinder_encryption_key_id": RANDOM}),
        ("bad_config_drive_image", {"img_config_drive": "sometimes"}),
        ("missing_kernel_image", {"kernel_id": RANDOM}),
    ):
        ctx[key] = image(key, **fields)
        upload(ctx[key])
    for flavorid, disk in (("zero-disk", 0), ("disabled", 1)):
        r = stack.post(
            "/compute/v2.1/flavors",
            as_="admin",
            json={"flavor": {"name": flavorid, "id": flavorid, "ram": 64, "vcpus": 1, "disk": disk}},
        )
        assert r.status_code == 200, r.text
    from novalite.db.models.catalog import Flavor

    with stack.runtime.db.session() as s:  # type: ignore[attr-defined]
        s.execute(update(Flavor).where(Flavor.flavorid == "disabled").values(disabled=True))
    ctx["zero_disk_flavor"], ctx["disabled_flavor"] = "zero-disk", "disabled"
    return ctx


def _request_body(case: Case, ctx: dict[str, Any]) -> Any:
    server: dict[str, Any] = {"name": "vm", "imageRef": ctx["image"], "flavorRef": "1"}
    if _version_tuple(case.version) >= (2, 37):
        server["networks"] = NONE
    changes = case.server(ctx) if callable(case.server) else case.server
    for key, value in changes.items():
        if value is None:
            server.pop(key, None)
        else:
            server[key] = value
    return case.body(ctx, server) if case.body else {"server": server}


def _version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def test_invalid_create_requests(stack: Api) -> None:
    assert len(CASES) >= 60
    ctx = _setup(stack)
    failures = []
    for case in CASES:
        body = _request_body(case, ctx)
        r = stack.post("/compute/v2.1/servers", json=body, as_=case.as_, version=case.version)
        try:
            payload = r.json()
        except ValueError:
            payload = {}
        key = ENVELOPE[case.status]
        message = payload.get(key, {}).get("message", "") if isinstance(payload, dict) else ""
        if r.status_code != case.status or key not in payload or case.gist not in message:
            failures.append(f"{case.name} @{case.version}: got {r.status_code} {r.text[:300]}")
        elif payload[key]["code"] != case.status:
            failures.append(f"{case.name}: envelope code {payload[key]['code']}")
    assert not failures, "\n".join(failures)
    listed = stack.get(
        "/compute/v2.1/servers", as_="admin", version="2.1", params={"all_tenants": "1"}
    ).json()
    assert listed["servers"] == []  # no refused request left a server behind


def test_malformed_json_and_media_type(stack: Api) -> None:
    r = stack.post(
        "/compute/v2.1/servers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Malformed request body"
    r = stack.post("/compute/v2.1/servers", content=b"<server/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    assert "badMediaType" in r.json()

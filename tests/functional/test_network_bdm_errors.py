"""POST /servers: the table of network, security group and block device mapping errors, each with
Nova's status, fault envelope name, exception name and message gist at the microversion where the
rule applies; then the cases Nova accepts at the API and fails (or not) later. No request may be a
500 and no refused request may leave a server, a port or a volume attachment behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"
ENVELOPE = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}
RANDOM = str(uuid.uuid4())
Ctx = dict[str, Any]


@dataclass
class Case:
    name: str
    server: Callable[[Ctx], dict[str, Any]]  # keys replacing the base server (value None drops the key)
    status: int
    kind: str  # Nova's exception (documentation: Nova does not put it in the body)
    gist: str  # part of the fault message
    version: str = "2.37"


def resolve(value: Any, ctx: Ctx) -> Any:
    """Fill in ``c(key)`` placeholders anywhere in a request fragment."""
    if callable(value):
        return value(ctx)
    if isinstance(value, dict):
        return {k: resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    return value


def nets(*items: dict[str, Any]) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"networks": resolve(list(items), ctx)}


def bdms(*items: dict[str, Any], **server: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"block_device_mapping_v2": resolve(list(items), ctx), **resolve(server, ctx)}


def fixed(**server: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: resolve(server, ctx)  # type: ignore[no-any-return]


def c(key: str) -> Callable[[Ctx], Any]:
    return lambda ctx: ctx[key]


IMAGE_ROOT = {"source_type": "image", "destination_type": "local", "uuid": c("image"), "boot_index": 0}
BLANK = {"source_type": "blank", "destination_type": "local", "boot_index": -1}

CASES: list[Case] = [
    # --- networks ---
    Case(
        "unknown network",
        nets({"uuid": RANDOM}),
        400,
        "NetworkNotFound",
        f"Network {RANDOM} could not be found",
    ),
    Case(
        "network without a subnet",
        nets({"uuid": c("subnetless")}),
        400,
        "NetworkRequiresSubnet",
        "requires a subnet in order to boot instances on",
    ),
    Case(
        "network uuid not a uuid",
        nets({"uuid": "net-1"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
    ),
    Case(
        "network uuid not a uuid before 2.37",
        nets({"uuid": "net-1"}),
        400,
        "HTTPBadRequest",
        "Bad networks format: network uuid is not in proper format (net-1)",
        version="2.1",
    ),
    Case(
        "network entry without uuid or port",
        nets({"fixed_ip": "10.0.0.5"}),
        400,
        "HTTPBadRequest",
        "Bad network format: missing 'uuid'",
    ),
    Case(
        "invalid fixed IP",
        nets({"uuid": c("private"), "fixed_ip": "10.0.0.300"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
    ),
    Case(
        "invalid fixed IP before 2.37",
        nets({"uuid": c("private"), "fixed_ip": "10.0.0.300"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute fixed_ip",
        version="2.1",
    ),
    Case(
        "fixed IP already in use",
        nets({"uuid": c("private"), "fixed_ip": "10.0.0.50"}),
        400,
        "FixedIpAlreadyInUse",
        "Fixed IP address 10.0.0.50 is already in use",
    ),
    Case(
        "fixed IP with a port",
        nets({"port": c("free_port"), "fixed_ip": "10.0.0.5"}),
        400,
        "HTTPBadRequest",
        "cannot be used with port",
    ),
    Case("unknown port", nets({"port": RANDOM}), 400, "PortNotFound", f"Port id {RANDOM} could not be found"),
    Case("port in use", nets({"port": c("bound_port")}), 409, "PortInUse", "is still in use"),
    Case(
        "port without a fixed IP",
        nets({"port": c("ipless_port")}),
        400,
        "PortRequiresFixedIP",
        "requires a FixedIP in order to be used",
    ),
    Case(
        "another project's port", nets({"port": c("admin_port")}), 400, "PortNotFound", "could not be found"
    ),
    Case(
        "same port twice",
        nets({"port": c("free_port")}, {"port": c("free_port")}),
        400,
        "HTTPBadRequest",
        "is already in use",
    ),
    Case(
        "fixed IP with max_count 2",
        fixed(max_count=2, networks=[{"uuid": RANDOM, "fixed_ip": "10.0.0.5"}]),
        400,
        "InvalidFixedIpAndMaxCountRequest",
        "max_count cannot be greater than 1 if an fixed_ip is specified",
    ),
    Case(
        "port with max_count 2",
        fixed(max_count=2, networks=[{"port": RANDOM}]),
        400,
        "MultiplePortsNotApplicable",
        "Unable to launch multiple instances with a single configured port ID",
    ),
    Case(
        "network tag before 2.32",
        nets({"uuid": c("private"), "tag": "t"}),
        400,
        "ValidationError",
        "Additional properties are not allowed",
        version="2.31",
    ),
    Case(
        "network tag at 2.37",
        nets({"uuid": c("private"), "tag": "t"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
    ),
    Case(
        "network tag at 2.41",
        nets({"uuid": c("private"), "tag": "t"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
        version="2.41",
    ),
    Case(
        "network tag with a slash",
        nets({"uuid": c("private"), "tag": "a/b"}),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
        version="2.42",
    ),
    Case(
        "several networks, none requested",
        fixed(networks=None),
        409,
        "NetworkAmbiguous",
        "More than one possible network found",
        version="2.1",
    ),
    Case(
        "several networks, auto",
        fixed(networks="auto"),
        409,
        "NetworkAmbiguous",
        "More than one possible network found",
    ),
    Case(
        "networks as a bogus string",
        fixed(networks="some"),
        400,
        "ValidationError",
        "Invalid input for field/attribute networks",
    ),
    # --- security groups ---
    Case(
        "unknown security group",
        fixed(security_groups=[{"name": "nope"}]),
        400,
        "SecurityGroupNotFound",
        "Security group nope not found",
    ),
    Case(
        "ambiguous security group name",
        fixed(security_groups=[{"name": "twin"}]),
        409,
        "NoUniqueMatch",
        "No Unique Match Found",
    ),
    # --- block device mappings ---
    Case(
        "two root disks",
        bdms(IMAGE_ROOT, {**BLANK, "boot_index": 0}),
        400,
        "InvalidBDMBootSequence",
        "Boot sequence for the instance and image/block device mapping combination is not valid",
    ),
    Case(
        "boot indexes with a gap",
        bdms(IMAGE_ROOT, {**BLANK, "boot_index": 2}),
        400,
        "InvalidBDMBootSequence",
        "Boot sequence",
    ),
    Case(
        "no boot index 0",
        bdms({**BLANK, "boot_index": 1}, imageRef=None),
        400,
        "InvalidBDMBootSequence",
        "Boot sequence",
    ),
    Case(
        "boot_index not a number",
        bdms({**IMAGE_ROOT, "boot_index": "first"}),
        400,
        "ValidationError",
        "boot_index",
    ),
    Case(
        "image to local without imageRef",
        bdms(IMAGE_ROOT, imageRef=""),
        400,
        "InvalidBDM",
        "Mapping image to local is not supported",
    ),
    Case(
        "blank with a uuid",
        bdms(IMAGE_ROOT, {**BLANK, "uuid": RANDOM}),
        400,
        "InvalidBDM",
        "Invalid device UUID",
    ),
    Case(
        "volume without a uuid",
        bdms({"source_type": "volume", "destination_type": "volume", "boot_index": 0}, imageRef=""),
        400,
        "InvalidBDM",
        "Missing device UUID",
    ),
    Case(
        "unknown volume",
        bdms(
            {"source_type": "volume", "destination_type": "volume", "boot_index": 0, "uuid": RANDOM},
            imageRef="",
        ),
        400,
        "InvalidBDMVolume",
        f"failed to get volume {RANDOM}",
    ),
    Case(
        "volume not bootable",
        bdms(
            {
                "source_type": "volume",
                "destination_type": "volume",
                "boot_index": 0,
                "uuid": c("blank_volume"),
            },
            imageRef="",
        ),
        400,
        "InvalidBDMVolumeNotBootable",
        "is not bootable",
    ),
    Case(
        "volume in use",
        bdms(
            {
                "source_type": "volume",
                "destination_type": "volume",
                "boot_index": 0,
                "uuid": c("used_volume"),
            },
            imageRef="",
        ),
        400,
        "InvalidVolume",
        "Invalid volume",
    ),
    Case(
        "image to volume without a size",
        bdms(
            {"source_type": "image", "destination_type": "volume", "uuid": c("image"), "boot_index": 0},
            imageRef="",
        ),
        400,
        "InvalidBDM",
        "You specified a volume without a size",
    ),
    Case(
        "volume smaller than the image's min_disk",
        bdms(
            {
                "source_type": "image",
                "destination_type": "volume",
                "uuid": c("min_disk_image"),
                "boot_index": 0,
                "volume_size": 1,
            },
            imageRef="",
        ),
        400,
        "VolumeSmallerThanMinDisk",
        "Volume is smaller than the minimum size specified in image metadata",
    ),
    Case(
        "swap larger than the flavor's",
        bdms(IMAGE_ROOT, {**BLANK, "guest_format": "swap", "volume_size": 1}),
        400,
        "InvalidBDMSwapSize",
        "Swap drive requested is larger than instance type allows",
    ),
    Case(
        "two swap disks",
        bdms(
            IMAGE_ROOT,
            {**BLANK, "guest_format": "swap", "volume_size": 1},
            {**BLANK, "guest_format": "swap", "volume_size": 1},
        ),
        400,
        "InvalidBDM",
        "More than one swap drive requested",
    ),
    Case(
        "ephemeral larger than the flavor's",
        bdms(IMAGE_ROOT, {**BLANK, "volume_size": 1}),
        400,
        "InvalidBDMEphemeralSize",
        "Ephemeral disks requested are larger than the instance type allows",
    ),
    Case(
        "too many local disks",
        bdms(IMAGE_ROOT, *[{**BLANK, "volume_size": 1}] * 3, flavorRef=c("eph_flavor")),
        400,
        "InvalidBDMLocalsLimit",
        "You specified more local devices than the limit allows",
    ),
    Case(
        "legacy and v2 mixed",
        bdms(IMAGE_ROOT, block_device_mapping=[{"device_name": "vdb", "volume_id": RANDOM}]),
        400,
        "HTTPBadRequest",
        "Using different block_device_mapping syntaxes is not allowed",
    ),
    Case(
        "volumes for several instances (v2)",
        bdms(
            IMAGE_ROOT,
            {
                "source_type": "volume",
                "destination_type": "volume",
                "uuid": c("blank_volume"),
                "boot_index": -1,
            },
            max_count=2,
        ),
        400,
        "InvalidRequest",
        "Cannot attach one or more volumes to multiple instances",
    ),
    Case(
        "volumes for several instances (legacy)",
        fixed(min_count=2, block_device_mapping=[{"device_name": "vdb", "volume_id": c("blank_volume")}]),
        400,
        "InvalidRequest",
        "Cannot attach one or more volumes to multiple instances",
    ),
    Case(
        "bdm tag at 2.37",
        bdms({**IMAGE_ROOT, "tag": "root"}),
        400,
        "ValidationError",
        "Additional properties are not allowed",
    ),
    Case(
        "bad source_type",
        bdms({**IMAGE_ROOT, "source_type": "floppy"}),
        400,
        "ValidationError",
        "source_type",
    ),
    Case(
        "volume_type before 2.67",
        bdms(
            IMAGE_ROOT,
            {
                "source_type": "blank",
                "destination_type": "volume",
                "volume_size": 1,
                "boot_index": 1,
                "volume_type": "x",
            },
        ),
        400,
        "ValidationError",
        "Additional properties are not allowed",
        version="2.66",
    ),
]


def _port(stack: Api, ctx: Ctx, as_: str = "demo", **fields: Any) -> str:
    net = ctx["private"] if as_ == "demo" else ctx["admin_private"]
    r = stack.post("/network/v2.0/ports", as_=as_, json={"port": {"network_id": net, **fields}})
    assert r.status_code == 201, r.text
    return str(r.json()["port"]["id"])


def _private(stack: Api, as_: str) -> str:
    project = stack.ids[f"{as_}_project"]
    found = stack.get("/network/v2.0/networks?name=private", as_=as_).json()["networks"]
    return str(next(n["id"] for n in found if n["project_id"] == project))


def _volume(stack: Api, **fields: Any) -> str:
    r = stack.post("/volume/v3/volumes", json={"volume": {"size": 1, **fields}})
    assert r.status_code == 202, r.text
    vol = str(r.json()["volume"]["id"])
    stack.wait_for(f"/volume/v3/volumes/{vol}", lambda r: r.json()["volume"]["status"] == "available")
    return vol


def _setup(stack: Api) -> Ctx:
    ctx: Ctx = {"image": stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]}
    ctx["private"], ctx["admin_private"] = _private(stack, "demo"), _private(stack, "admin")
    ctx["free_port"] = _port(stack, ctx)
    ctx["bound_port"] = _port(stack, ctx, device_id=RANDOM, device_owner="compute:nova")
    ctx["ipless_port"] = _port(stack, ctx, fixed_ips=[])
    ctx["admin_port"] = _port(stack, ctx, as_="admin")
    _port(stack, ctx, fixed_ips=[{"ip_address": "10.0.0.50"}])
    r = stack.post("/network/v2.0/networks", json={"network": {"name": "bare"}})
    ctx["subnetless"] = r.json()["network"]["id"]  # a second project network: "none requested" is ambiguous
    for _ in range(2):
        assert (
            stack.post("/network/v2.0/security-groups", json={"security_group": {"name": "twin"}}).status_code
            == 201
        )
    r = stack.post(
        "/image/v2/images",
        json={"name": "big", "disk_format": "raw", "container_format": "bare", "min_disk": 5},
    )
    ctx["min_disk_image"] = r.json()["id"]
    assert (
        stack.put(
            f"/image/v2/images/{ctx['min_disk_image']}/file",
            content=b"x" * 512,
            headers={"Content-Type": "application/octet-stream"},
        ).status_code
        == 204
    )
    r = stack.post(
        "/compute/v2.1/flavors",
        as_="admin",
        json={
            "flavor": {
                "name": "eph",
                "id": "eph",
                "ram": 64,
                "vcpus": 1,
                "disk": 1,
                "OS-FLV-EXT-DATA:ephemeral": 5,
            }
        },
    )
    assert r.status_code == 200, r.text
    ctx["eph_flavor"] = "eph"
    ctx["blank_volume"] = _volume(stack, name="blank")
    ctx["used_volume"] = _volume(stack, name="used", imageRef=ctx["image"])
    r = stack.post(
        "/volume/v3/attachments",
        version=None,
        headers={"OpenStack-API-Version": "volume 3.27"},
        json={"attachment": {"volume_uuid": ctx["used_volume"], "instance_uuid": RANDOM}},
    )
    assert r.status_code == 200, r.text
    return ctx


def _body(case: Case, ctx: Ctx) -> dict[str, Any]:
    server: dict[str, Any] = {"name": "vm", "imageRef": ctx["image"], "flavorRef": "1"}
    if case.version not in ("2.1", "2.31"):
        server["networks"] = "none"
    for key, value in case.server(ctx).items():
        if value is None:
            server.pop(key, None)
        else:
            server[key] = value
    return {"server": server}


def test_network_and_bdm_error_table(stack: Api) -> None:
    ctx = _setup(stack)
    ports_before = len(stack.get("/network/v2.0/ports", as_="admin").json()["ports"])
    failures = []
    for case in CASES:
        r = stack.post(SERVERS, json=_body(case, ctx), version=case.version)
        key = ENVELOPE[case.status]
        payload = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        message = payload.get(key, {}).get("message", "") if isinstance(payload, dict) else ""
        if (
            r.status_code != case.status
            or case.gist not in message
            or payload[key].get("code") != case.status
        ):
            failures.append(f"{case.name} @{case.version} ({case.kind}): got {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)
    listed = stack.get(SERVERS, as_="admin", params={"all_tenants": "1"}).json()["servers"]
    assert listed == []  # nothing refused left a server behind ...
    assert len(stack.get("/network/v2.0/ports", as_="admin").json()["ports"]) == ports_before  # ... or a port
    assert stack.get(f"/volume/v3/volumes/{ctx['blank_volume']}").json()["volume"]["status"] == "available"


def _wait(stack: Api, sid: str) -> dict[str, Any]:
    stack.wait_for(f"{SERVERS}/{sid}", lambda r: r.json()["server"]["status"] in ("ACTIVE", "ERROR"))
    return stack.get(f"{SERVERS}/{sid}").json()["server"]  # type: ignore[no-any-return]


def test_accepted_at_the_api_then_decided_at_build(stack: Api) -> None:
    ctx = _setup(stack)
    base = {"name": "vm", "imageRef": ctx["image"], "flavorRef": "1"}
    # a fixed IP outside every subnet: Nova does not check it at the API; the port fails at build
    r = stack.post(
        SERVERS,
        version="2.37",
        json={"server": {**base, "networks": [{"uuid": ctx["private"], "fixed_ip": "192.168.50.5"}]}},
    )
    assert r.status_code == 202, r.text
    server = _wait(stack, r.json()["server"]["id"])
    assert server["status"] == "ERROR" and "Failed to allocate the network(s)" in server["fault"]["message"]
    # a port plus a network uuid: the port's network wins (Nova ignores the uuid of a port entry)
    r = stack.post(
        SERVERS,
        version="2.37",
        json={"server": {**base, "networks": [{"port": ctx["free_port"], "uuid": ctx["subnetless"]}]}},
    )
    assert r.status_code == 202, r.text
    server = _wait(stack, r.json()["server"]["id"])
    assert server["status"] == "ACTIVE" and list(server["addresses"]) == ["private"]
    # tags on networks and BDMs are accepted at 2.32 and again from 2.42
    for version in ("2.32", "2.42"):
        networks = [{"uuid": ctx["private"], "tag": "nic"}]
        if version == "2.32":
            base_v = {**base, "networks": networks}
        else:
            base_v = {
                **base,
                "networks": networks,
                "block_device_mapping_v2": [
                    {
                        **{k: v for k, v in IMAGE_ROOT.items() if k != "uuid"},
                        "uuid": ctx["image"],
                        "tag": "root",
                    }
                ],
            }
        r = stack.post(SERVERS, version=version, json={"server": base_v})
        assert r.status_code == 202, (version, r.text)
        assert _wait(stack, r.json()["server"]["id"])["status"] == "ACTIVE"
    # an image volume as large as min_disk boots
    r = stack.post(
        SERVERS,
        version="2.37",
        json={
            "server": {
                "name": "bfv",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [
                    {
                        "source_type": "image",
                        "destination_type": "volume",
                        "uuid": ctx["min_disk_image"],
                        "boot_index": 0,
                        "volume_size": 5,
                        "delete_on_termination": True,
                    }
                ],
            }
        },
    )
    assert r.status_code == 202, r.text
    assert _wait(stack, r.json()["server"]["id"])["status"] == "ACTIVE"

"""The metadata service (compute/metadata_service.py) against an in-process deployment.

Requests go over its real unix socket exactly as the guestfwd relay and the namespace proxy send
them: an identity line, then the guest's HTTP request. A request on instance A's channel gets A's
documents whatever headers the guest adds; the documents are read at request time (metadata set
after boot shows); OpenStack and EC2 paths, listings and 404s are Nova's.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novalite.compute import metadata_service
from novalite.compute.metadata_service import MetadataService
from novalite.virt import metadata_paths
from tests.conftest import Api
from tests.functional.test_move_operations import SERVERS, boot, server

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f meta@test"
USER_DATA = b"#!/bin/sh\necho hello from user data\n"


def _keypair(stack: Api) -> None:
    r = stack.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "mdkey", "public_key": KEY}})
    assert r.status_code in (200, 201), r.text


def _network(stack: Api) -> tuple[str, str]:
    net = stack.post("/network/v2.0/networks", json={"network": {"name": "mdnet"}})
    assert net.status_code == 201, net.text
    net_id = str(net.json()["network"]["id"])
    sub = stack.post(
        "/network/v2.0/subnets",
        json={"subnet": {"network_id": net_id, "cidr": "10.20.30.0/24", "ip_version": 4}},
    )
    assert sub.status_code == 201, sub.text
    return net_id, str(sub.json()["subnet"]["id"])


@pytest.fixture
def world(stack: Api, tmp_path: Path) -> Iterator[dict[str, Any]]:
    _keypair(stack)
    net_id, _ = _network(stack)
    a = boot(
        stack,
        "vm-a",
        key_name="mdkey",
        user_data=base64.b64encode(USER_DATA).decode(),
        metadata={"role": "alpha"},
        networks=[{"uuid": net_id}],
    )
    b = boot(stack, "vm-b", networks=[{"uuid": net_id}])
    host = server(stack, a)["OS-EXT-SRV-ATTR:host"]
    assert server(stack, b)["OS-EXT-SRV-ATTR:host"] == host
    data_dir = tmp_path / "md"
    service = MetadataService(stack.runtime.db, host, data_dir)  # type: ignore[attr-defined]
    stop = service.start()
    try:
        yield {"a": a, "b": b, "net": net_id, "service": service, "stack": stack, "data_dir": data_dir}
    finally:
        stop()


def ask(service: MetadataService, identity: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(service.socket_path))
        conn.sendall(identity.encode() + b"\n" + request)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def get(service: MetadataService, identity: str, path: str, headers: str = "") -> tuple[int, bytes]:
    request = f"GET {path} HTTP/1.0\r\nHost: 169.254.169.254\r\n{headers}\r\n".encode()
    status, _, body = ask(service, identity, request)
    return status, body


def _ip(stack: Api, sid: str) -> str:
    addresses = server(stack, sid)["addresses"]
    return str(next(iter(addresses.values()))[0]["addr"])


def test_socket_is_private(world: dict[str, Any]) -> None:
    service: MetadataService = world["service"]
    assert stat.S_IMODE(service.socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(service.socket_path.parent.stat().st_mode) == 0o700
    assert service.socket_path == world["data_dir"] / "metadata" / "metadata.sock"


def test_openstack_documents_of_the_instance_on_the_channel(world: dict[str, Any]) -> None:
    service, a = world["service"], world["a"]
    status, body = get(service, f"instance {a}", "/openstack/latest/meta_data.json")
    assert status == 200
    md = json.loads(body)
    assert md["uuid"] == a
    assert md["hostname"] == "vm-a.novalocal" and md["name"] == "vm-a"
    assert md["public_keys"] == {"mdkey": KEY}
    assert md["meta"] == {"role": "alpha"}
    assert get(service, f"instance {a}", "/openstack/latest/user_data") == (200, USER_DATA)
    status, body = get(service, f"instance {a}", "/openstack/2018-08-27/network_data.json")
    assert status == 200 and json.loads(body)["networks"][0]["network_id"] == world["net"]
    assert get(service, f"instance {a}", "/openstack/latest/vendor_data2.json") == (200, b'{"static": {}}')
    assert get(service, f"instance {a}", "/openstack/latest/vendor_data.json") == (200, b"{}")
    # dated versions gate keys and files as the config drive does
    old = json.loads(get(service, f"instance {a}", "/openstack/2012-08-10/meta_data.json")[1])
    assert "project_id" not in old and "random_seed" not in old
    assert get(service, f"instance {a}", "/openstack/2012-08-10/network_data.json")[0] == 404


def test_listings(world: dict[str, Any]) -> None:
    service, a, b = world["service"], world["a"], world["b"]
    versions = get(service, f"instance {a}", "/openstack")[1].decode().splitlines()
    assert versions[0] == "2012-08-10" and "2018-08-27" in versions and versions[-1] == "latest"
    assert get(service, f"instance {a}", "/openstack/")[1].decode().splitlines() == versions
    files = get(service, f"instance {a}", "/openstack/latest/")[1].decode().splitlines()
    assert files == [
        "meta_data.json",
        "user_data",
        "vendor_data.json",
        "network_data.json",
        "vendor_data2.json",
    ]
    # no user data: not listed, and 404 (as Nova)
    files_b = set(get(service, f"instance {b}", "/openstack/latest")[1].decode().splitlines())
    assert "user_data" not in files_b and "meta_data.json" in files_b
    assert get(service, f"instance {b}", "/openstack/latest/user_data")[0] == 404
    assert get(service, f"instance {b}", "/latest/user-data")[0] == 404
    root = get(service, f"instance {a}", "/")[1].decode().splitlines()
    assert root[0] == "1.0" and root[-2:] == ["2009-04-04", "latest"]
    assert get(service, f"instance {a}", "/latest/meta-data/block-device-mapping/") == (200, b"ami\nroot")


def test_ec2_paths(world: dict[str, Any]) -> None:
    service, a, stack = world["service"], world["a"], world["stack"]
    ident = f"instance {a}"
    listing = get(service, ident, "/latest/meta-data/")[1].decode().splitlines()
    for entry in ("instance-id", "hostname", "local-ipv4", "public-keys/", "placement/", "instance-type"):
        assert entry in listing
    name = server(stack, a)["OS-EXT-SRV-ATTR:instance_name"]
    assert name.startswith("instance-")
    assert get(service, ident, "/latest/meta-data/instance-id") == (200, ("i-" + name[9:]).encode())
    assert get(service, ident, "/2009-04-04/meta-data/instance-id")[1] == ("i-" + name[9:]).encode()
    assert get(service, ident, "/latest/meta-data/hostname") == (200, b"vm-a.novalocal")
    assert get(service, ident, "/latest/meta-data/local-ipv4") == (200, _ip(stack, a).encode())
    assert get(service, ident, "/latest/meta-data/instance-type") == (200, b"m1.tiny")
    assert get(service, ident, "/latest/meta-data/public-keys/") == (200, b"0=mdkey")
    assert get(service, ident, "/latest/meta-data/public-keys/0/") == (200, b"openssh-key")
    assert get(service, ident, "/latest/meta-data/public-keys/0/openssh-key") == (200, KEY.encode())
    assert get(service, ident, "/latest/meta-data/placement/availability-zone") == (200, b"nova")
    assert get(service, ident, "/latest/user-data") == (200, USER_DATA)
    assert get(service, ident, "/latest/") == (200, b"meta-data/\nuser-data")
    assert get(service, ident, "/latest/meta-data/no-such-thing")[0] == 404
    assert get(service, ident, "/2007-01-19/meta-data/hostname") == (200, b"vm-a.novalocal")
    assert get(service, ident, "/2010-01-01/meta-data/")[0] == 404
    assert get(service, ident, "/latest/meta-data/../../openstack")[0] == 404


def test_identity_is_the_channel_not_the_guest_headers(world: dict[str, Any]) -> None:
    service, a, b = world["service"], world["a"], world["b"]
    forged = f"X-Instance-ID: {a}\r\nX-Forwarded-For: {_ip(world['stack'], a)}\r\n"
    status, body = get(service, f"instance {b}", "/openstack/latest/meta_data.json", forged)
    assert status == 200 and json.loads(body)["uuid"] == b
    # the namespace proxy's identity: (network, source address) -> port -> instance
    for sid in (a, b):
        ident = f"port {world['net']} {_ip(world['stack'], sid)}"
        assert json.loads(get(service, ident, "/openstack/latest/meta_data.json")[1])["uuid"] == sid
    # an address no port holds, another network, an unknown or a foreign instance: 404, nothing leaks
    for ident in (
        f"port {world['net']} 10.20.30.250",
        f"port 00000000-0000-0000-0000-000000000000 {_ip(world['stack'], a)}",
        "instance 00000000-0000-0000-0000-000000000000",
        "instance not-a-uuid",
        f"X-Instance-ID {a}",
        "",
    ):
        status, body = get(service, ident, "/openstack/latest/meta_data.json")
        assert status == 404 and a.encode() not in body


def test_documents_are_read_at_request_time(world: dict[str, Any]) -> None:
    service, a, stack = world["service"], world["a"], world["stack"]
    r = stack.post(f"{SERVERS}/{a}/metadata", json={"metadata": {"phase": "two"}})
    assert r.status_code == 200, r.text
    md = json.loads(get(service, f"instance {a}", "/openstack/latest/meta_data.json")[1])
    assert md["meta"] == {"role": "alpha", "phase": "two"}
    assert stack.delete(f"{SERVERS}/{a}").status_code == 204
    stack.wait_for(f"{SERVERS}/{a}", lambda r: r.status_code == 404)
    assert get(service, f"instance {a}", "/openstack/latest/meta_data.json")[0] == 404


def test_bad_requests(world: dict[str, Any]) -> None:
    service, a = world["service"], world["a"]
    status, headers, _ = ask(service, f"instance {a}", b"POST /openstack HTTP/1.0\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert ask(service, f"instance {a}", b"garbage\r\n\r\n")[0] == 400
    status, headers, body = ask(
        service, f"instance {a}", b"HEAD /openstack/latest/meta_data.json HTTP/1.0\r\n\r\n"
    )
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, _, body = ask(service, f"instance {a}", b"GET /latest/meta-data/hostname?x=1 HTTP/1.1\r\n\r\n")
    assert (status, body) == (200, b"vm-a.novalocal")


def test_restart_rebinds_the_same_socket(world: dict[str, Any]) -> None:
    service, a = world["service"], world["a"]
    service.stop()  # a stale socket file stays behind, as after a crash
    again = MetadataService(service.db, service.host, world["data_dir"])
    again.start()
    try:
        assert again.socket_path == service.socket_path
        assert get(again, f"instance {a}", "/latest/meta-data/hostname") == (200, b"vm-a.novalocal")
    finally:
        again.stop()


def test_relay_carries_one_request_with_its_baked_identity(world: dict[str, Any]) -> None:
    """The guestfwd command itself, as QEMU runs it: the guest's connection on stdin/stdout."""
    a, b = world["a"], world["b"]
    command = metadata_service.relay_command(world["data_dir"])
    guest = type("G", (), {"uuid": b})()
    argv = command(guest).split()  # type: ignore[arg-type]
    assert "," not in command(guest) and argv[1:3] == ["-I", "-S"]  # type: ignore[arg-type]
    assert argv[-1] == b and argv[-2] == str(metadata_paths.service_socket(world["data_dir"]))
    request = f"GET /openstack/latest/meta_data.json HTTP/1.0\r\nX-Instance-ID: {a}\r\n\r\n".encode()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # needs no novalite import
    done = subprocess.run(argv, input=request, capture_output=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["uuid"] == b


def test_relay_without_the_service_answers_503(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    metadata_service.install_relay(tmp_path / "metadata")
    guest = type("G", (), {"uuid": "00000000-0000-0000-0000-000000000000"})()
    argv = metadata_service.relay_command(tmp_path)(guest).split()  # type: ignore[arg-type]
    done = subprocess.run(argv, input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30, check=False)
    assert done.stdout.startswith(b"HTTP/1.0 503")

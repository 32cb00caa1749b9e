"""The config drive ISO, read back with pycdlib as a guest would see it (no QEMU needed)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pycdlib
import pytest

from novalite.virt.configdrive import (
    OPENSTACK_VERSIONS,
    ConfigDriveData,
    build_config_drive,
    write_config_drive,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3c0ZzG3Xv7Zr5K0f0d7bqJxq6d1k8Zl2Xl3m2wqF1n alice@laptop\n"
NETWORK = {
    "links": [
        {
            "id": "tap1",
            "vif_id": "p1",
            "type": "phy",
            "mtu": None,
            "ethernet_mac_address": "fa:16:3e:00:00:01",
        }
    ],
    "networks": [{"id": "network0", "link": "tap1", "network_id": "n1", "type": "ipv4_dhcp"}],
    "services": [],
}


def sample(**overrides: Any) -> ConfigDriveData:
    values: dict[str, Any] = {
        "uuid": "6b0a8c7e-3a8e-4a55-9d1f-1f8e7f6c2d10",
        "hostname": "web-1.novalocal",
        "name": "web 1",
        "public_keys": {"alice": KEY},
        "user_data": b"#!/bin/sh\necho hi\n",
        "network_data": NETWORK,
        "availability_zone": "nova",
        "launch_index": 2,
        "project_id": "proj-1",
        "metadata": {"role": "web"},
    }
    values.update(overrides)
    return ConfigDriveData(**values)


class Iso:
    def __init__(self, image: bytes) -> None:
        self.iso = pycdlib.PyCdlib()
        self.iso.open_fp(io.BytesIO(image))

    def label(self) -> str:
        return self.iso.pvd.volume_identifier.decode().strip()

    def files(self, *, joliet: bool = False) -> set[str]:
        kw = {"joliet_path": "/"} if joliet else {"rr_path": "/"}
        out = set()
        for root, _dirs, names in self.iso.walk(**kw):
            out.update(f"{root.rstrip('/')}/{n}".lstrip("/") for n in names)
        return out

    def read(self, path: str) -> bytes:
        buf = io.BytesIO()
        self.iso.get_file_from_iso_fp(buf, rr_path="/" + path)
        return buf.getvalue()

    def json(self, path: str) -> Any:
        return json.loads(self.read(path))


@pytest.fixture
def iso() -> Iso:
    return Iso(build_config_drive(sample()))


def test_label_and_rock_ridge_and_joliet_names(iso: Iso):
    assert iso.label() == "config-2"
    rr = iso.files()
    assert rr == iso.files(joliet=True)
    for version in (*OPENSTACK_VERSIONS, "latest"):
        assert f"openstack/{version}/meta_data.json" in rr
        assert f"openstack/{version}/user_data" in rr
    assert "openstack/latest/network_data.json" in rr
    assert "openstack/latest/vendor_data2.json" in rr
    assert {"ec2/2009-04-04/meta-data.json", "ec2/latest/meta-data.json", "ec2/latest/user-data"} <= rr
    assert not any(name.endswith("password") for name in rr)


def test_meta_data_content(iso: Iso):
    md = iso.json("openstack/latest/meta_data.json")
    assert md["uuid"] == "6b0a8c7e-3a8e-4a55-9d1f-1f8e7f6c2d10"
    assert md["hostname"] == "web-1.novalocal" and md["name"] == "web 1"
    assert md["public_keys"] == {"alice": KEY}
    assert md["keys"] == [{"name": "alice", "type": "ssh", "data": KEY}]
    assert md["launch_index"] == 2 and md["availability_zone"] == "nova"
    assert md["project_id"] == "proj-1" and md["meta"] == {"role": "web"}
    assert md["devices"] == [] and md["dedicated_cpus"] == []
    assert len(md["random_seed"]) > 600
    assert "admin_pass" not in md
    assert iso.read("openstack/latest/user_data") == b"#!/bin/sh\necho hi\n"
    assert iso.json("openstack/latest/network_data.json") == NETWORK
    assert iso.json("openstack/latest/vendor_data.json") == {}
    assert iso.json("openstack/latest/vendor_data2.json") == {"static": {}}
    ec2 = iso.json("ec2/latest/meta-data.json")
    assert ec2["public-keys"] == {"0": {"openssh-key": KEY}}
    assert ec2["placement"] == {"availability-zone": "nova"}


def test_documents_are_gated_by_version(iso: Iso):
    files = iso.files()
    oldest = iso.json("openstack/2012-08-10/meta_data.json")
    assert "random_seed" not in oldest and "project_id" not in oldest and "devices" not in oldest
    assert "openstack/2012-08-10/network_data.json" not in files
    assert "openstack/2013-04-04/vendor_data.json" not in files
    assert "openstack/2013-10-17/vendor_data.json" in files
    assert "openstack/2015-10-15/network_data.json" in files
    assert "openstack/2016-06-30/vendor_data2.json" not in files
    assert "openstack/2016-10-06/vendor_data2.json" in files
    assert "devices" in iso.json("openstack/2016-06-30/meta_data.json")
    assert "dedicated_cpus" not in iso.json("openstack/2018-08-27/meta_data.json")


def test_no_user_data_no_keys_and_admin_pass():
    iso = Iso(build_config_drive(sample(user_data=None, public_keys={}, admin_pass="s3cret", metadata={})))
    files = iso.files()
    assert not any(name.endswith(("user_data", "user-data")) for name in files)
    md = iso.json("openstack/latest/meta_data.json")
    assert "public_keys" not in md and "keys" not in md and "meta" not in md
    assert md["admin_pass"] == "s3cret"


def test_written_file_is_private(tmp_path: Path):
    path = write_config_drive(sample(), tmp_path / "disk.config")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Iso(path.read_bytes()).label() == "config-2"
    assert [p.name for p in tmp_path.iterdir()] == ["disk.config"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uuid"):
        sample(uuid="")
    with pytest.raises(ValueError, match="user_data"):
        sample(user_data=b"x" * 65536)

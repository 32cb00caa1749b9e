"""Config drive: the ISO 9660 disk Nova attaches to a guest with its metadata.

The drive has volume label ``config-2``, Rock Ridge and Joliet names (cloud-init and the
default guest read it with either), and this tree (as Nova's ``metadata_for_config_drive``)::

    openstack/<v>/meta_data.json         every version below and latest
    openstack/<v>/user_data              when the server has user data
    openstack/<v>/vendor_data.json       v >= 2013-10-17
    openstack/<v>/network_data.json      v >= 2015-10-15
    openstack/<v>/vendor_data2.json      v >= 2016-10-06
    ec2/2009-04-04/meta-data.json, ec2/latest/meta-data.json (+ user-data)

``meta_data.json`` keys are gated by version the same way (``random_seed`` from
2013-04-04, ``project_id`` from 2015-10-15, ``devices`` from 2016-06-30,
``dedicated_cpus`` from 2020-10-14). There is never a ``password`` file on the drive; the
admin password, when given, is ``admin_pass`` in ``meta_data.json``.

:func:`config_drive_files` returns the tree as ``{path: bytes}`` (the metadata service can
serve the same documents); :func:`build_config_drive` returns the ISO image and
:func:`write_config_drive` writes it to a file readable by its owner only.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycdlib

VOLUME_LABEL = "config-2"
PUBLISHER = "novalite"
OPENSTACK_VERSIONS = (
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "2025-04-04",
)
EC2_VERSIONS = ("2009-04-04",)
LATEST = "latest"
MAX_USER_DATA = 65535  # Nova's limit on the decoded user data


@dataclass(frozen=True)
class ConfigDriveData:
    """What the drive says about one instance.

    ``public_keys`` maps key pair names to OpenSSH public keys; ``hostname`` is written as
    given (Nova appends ``.novalocal``: pass the full name); ``network_data`` is the
    ``network_data.json`` document (``{}`` when the instance has no network).
    """

    uuid: str
    hostname: str
    name: str
    public_keys: Mapping[str, str] = field(default_factory=dict)
    user_data: bytes | None = None
    network_data: Mapping[str, Any] = field(default_factory=dict)
    availability_zone: str | None = None
    launch_index: int = 0
    project_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    admin_pass: str | None = None
    vendor_data: Mapping[str, Any] = field(default_factory=dict)
    # EC2 meta-data: ``i-<id as 8 hex digits>``, the flavor's name, the first fixed IPv4
    ec2_instance_id: str = ""
    instance_type: str = ""
    local_ipv4: str = ""

    def __post_init__(self) -> None:
        if not self.uuid:
            raise ValueError("a config drive needs the instance uuid")
        if self.user_data is not None and len(self.user_data) > MAX_USER_DATA:
            raise ValueError(f"user_data is larger than {MAX_USER_DATA} bytes")


def config_drive_files(data: ConfigDriveData) -> dict[str, bytes]:
    """The drive's files, ``{"openstack/latest/meta_data.json": b"...", ...}``."""
    files: dict[str, bytes] = {}
    for version in (*OPENSTACK_VERSIONS, LATEST):
        base = f"openstack/{version}"
        files[f"{base}/meta_data.json"] = _json(meta_data(data, version))
        if data.user_data is not None:
            files[f"{base}/user_data"] = data.user_data
        if _at_least(version, "2013-10-17"):
            files[f"{base}/vendor_data.json"] = _json(dict(data.vendor_data))
        if _at_least(version, "2015-10-15"):
            files[f"{base}/network_data.json"] = _json(dict(data.network_data))
        if _at_least(version, "2016-10-06"):
            files[f"{base}/vendor_data2.json"] = _json({"static": dict(data.vendor_data)})
    for version in (*EC2_VERSIONS, LATEST):
        files[f"ec2/{version}/meta-data.json"] = _json(ec2_meta_data(data))
        if data.user_data is not None:
            files[f"ec2/{version}/user-data"] = data.user_data
    return files


def meta_data(data: ConfigDriveData, version: str = LATEST) -> dict[str, Any]:
    """``openstack/<version>/meta_data.json`` as a dict."""
    md: dict[str, Any] = {"uuid": data.uuid}
    if data.metadata:
        md["meta"] = dict(data.metadata)
    if data.admin_pass is not None:
        md["admin_pass"] = data.admin_pass
    if data.public_keys:
        md["public_keys"] = dict(data.public_keys)
        md["keys"] = [{"name": n, "type": "ssh", "data": k} for n, k in data.public_keys.items()]
    md["hostname"] = data.hostname
    md["name"] = data.name
    md["launch_index"] = data.launch_index
    md["availability_zone"] = data.availability_zone
    if _at_least(version, "2013-04-04"):
        md["random_seed"] = base64.b64encode(os.urandom(512)).decode()
    if _at_least(version, "2015-10-15"):
        md["project_id"] = data.project_id
    if _at_least(version, "2016-06-30"):
        md["devices"] = []
    if _at_least(version, "2020-10-14"):
        md["dedicated_cpus"] = []
    return md


def ec2_meta_data(data: ConfigDriveData) -> dict[str, Any]:
    """The EC2 ``meta-data`` tree (without ``public-keys/0/_name``, as Nova writes it)."""
    md: dict[str, Any] = {
        "ami-launch-index": data.launch_index,
        "ami-manifest-path": "FIXME",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": data.hostname,
        "instance-action": "none",
        "local-hostname": data.hostname,
        "placement": {"availability-zone": data.availability_zone},
        "public-hostname": data.hostname,
        "reservation-id": "",
        "security-groups": [],
    }
    if data.ec2_instance_id:
        md["instance-id"] = data.ec2_instance_id
    if data.instance_type:
        md["instance-type"] = data.instance_type
    if data.local_ipv4:
        md["local-ipv4"] = data.local_ipv4
    if data.public_keys:
        first = next(iter(data.public_keys.values()))
        md["public-keys"] = {"0": {"openssh-key": first}}
    return md


def build_config_drive(data: ConfigDriveData) -> bytes:
    """The ISO 9660 image (label ``config-2``, Rock Ridge 1.09 and Joliet names)."""
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        joliet=3,
        rock_ridge="1.09",
        vol_ident=VOLUME_LABEL,
        pub_ident_str=PUBLISHER,
        app_ident_str="novalite config drive",
    )
    names = _IsoNames()
    made: set[str] = set()
    try:
        for path, content in sorted(config_drive_files(data).items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    iso.add_directory(
                        names.iso(directory, is_dir=True),
                        rr_name=parts[depth - 1],
                        joliet_path="/" + directory,
                    )
            iso.add_fp(
                io.BytesIO(content),
                len(content),
                names.iso(path, is_dir=False),
                rr_name=parts[-1],
                joliet_path="/" + path,
            )
        out = io.BytesIO()
        iso.write_fp(out)
    finally:
        iso.close()
    return out.getvalue()


def write_config_drive(data: ConfigDriveData, path: Path) -> Path:
    """Write the drive to ``path`` (mode 0600, replaced atomically) and return it."""
    image = build_config_drive(data)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(image)
    os.replace(tmp, path)
    return path


class _IsoNames:
    """Plain ISO 9660 names (uppercase 8.3) for each path; Rock Ridge/Joliet carry the real ones."""

    def __init__(self) -> None:
        self._by_path: dict[str, str] = {}
        self._count = 0

    def iso(self, path: str, *, is_dir: bool) -> str:
        parent, _, _ = path.rpartition("/")
        prefix = self._by_path[parent] if parent else ""
        self._count += 1
        leaf = f"D{self._count:07d}" if is_dir else f"F{self._count:07d}.;1"
        full = f"{prefix}/{leaf}"
        if is_dir:
            self._by_path[path] = full
        return full


def _at_least(version: str, since: str) -> bool:
    return version == LATEST or version >= since


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()

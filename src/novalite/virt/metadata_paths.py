"""What the metadata service answers for a path, from one instance's documents (no I/O).

The documents are the config drive's (:func:`novalite.virt.configdrive.config_drive_files`,
their one owner); this module only maps URL paths onto them, as Nova's metadata API does:

    /                                   EC2 versions and ``latest``
    /openstack                          the OpenStack versions and ``latest``
    /openstack/<v>/                     that version's files (``user_data`` only when there is one)
    /openstack/<v>/meta_data.json ...   the config drive's file of that version
    /<ec2 v>/                           ``meta-data/`` (and ``user-data`` when there is some), for
                                        each of Nova's EC2 versions (``1.0`` ... ``2009-04-04``)
    /<ec2 v>/meta-data/...              the EC2 tree: a directory lists its sorted entries (``name/`` for
                                        a subtree), a leaf is its value; ``public-keys/`` lists
                                        ``0=<key name>``
    /<ec2 v>/user-data                  the user data

Anything else, and ``user_data`` of an instance that has none, is 404 (as Nova).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novalite.virt.configdrive import (
    EC2_VERSIONS,
    LATEST,
    OPENSTACK_VERSIONS,
    ConfigDriveData,
    config_drive_files,
    ec2_meta_data,
)

TEXT = "text/plain; charset=UTF-8"
# Nova's EC2 versions: all serve the one tree (the config drive writes only 2009-04-04 and latest)
EC2_ALL_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    *EC2_VERSIONS,
)
OPENSTACK_FILES = (
    "meta_data.json",
    "user_data",
    "vendor_data.json",
    "network_data.json",
    "vendor_data2.json",
)
JSON = "application/json"
BINARY = "application/octet-stream"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT


NOT_FOUND = Answer(404, b"404 Not Found\n\nThe resource could not be found.\n")


def answer(data: ConfigDriveData, path: str) -> Answer:
    """The answer to ``GET <path>`` (query string already removed) for this instance."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return NOT_FOUND
    if not parts:
        return _listing([*EC2_ALL_VERSIONS, LATEST])  # as Nova: ``openstack`` is not listed
    if parts[0] == "openstack":
        return _openstack(data, parts[1:])
    if parts[0] in (*EC2_ALL_VERSIONS, LATEST):
        return _ec2(data, parts[1:])
    return NOT_FOUND


def _openstack(data: ConfigDriveData, parts: list[str]) -> Answer:
    if not parts:
        return _listing([*OPENSTACK_VERSIONS, LATEST])
    version = parts[0]
    if version not in (*OPENSTACK_VERSIONS, LATEST):
        return NOT_FOUND
    prefix = f"openstack/{version}/"
    files = {k[len(prefix) :]: v for k, v in config_drive_files(data).items() if k.startswith(prefix)}
    if len(parts) == 1:
        return _listing([name for name in OPENSTACK_FILES if name in files])
    if len(parts) != 2 or parts[1] not in files:
        return NOT_FOUND
    name = parts[1]
    return Answer(200, files[name], JSON if name.endswith(".json") else BINARY)


def _ec2(data: ConfigDriveData, parts: list[str]) -> Answer:
    if not parts:
        return _listing(["meta-data/", *(["user-data"] if data.user_data is not None else [])])
    if parts[0] == "user-data" and len(parts) == 1:
        return Answer(200, data.user_data, BINARY) if data.user_data is not None else NOT_FOUND
    if parts[0] != "meta-data":
        return NOT_FOUND
    node: Any = ec2_meta_data(data)
    for key in parts[1:]:
        if not isinstance(node, Mapping) or key not in node:
            return NOT_FOUND
        node = node[key]
    if isinstance(node, Mapping):
        if parts[1:] == ["public-keys"]:
            return _listing([f"{i}={name}" for i, name in enumerate(data.public_keys)])
        return _listing([f"{k}/" if isinstance(v, Mapping) else k for k, v in sorted(node.items())])
    return Answer(200, _leaf(node).encode())


def _leaf(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value)


def _listing(entries: list[str]) -> Answer:
    return Answer(200, "\n".join(entries).encode())


def service_socket(data_dir: Any) -> Any:
    """The metadata service's unix socket on a host: ``<data_dir>/metadata/metadata.sock``. The
    relays and the namespace proxies connect to it; its path never changes, so guests started by an
    earlier run of the service (their relay command is in their QEMU command line) still reach it."""
    return data_dir / "metadata" / "metadata.sock"

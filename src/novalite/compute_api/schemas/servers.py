"""Request schemas for /servers, one per microversion range (§1.1, §6.2, §6.3).

``create_schema(version)`` picks the create body schema; ``update_schema`` the PUT body;
``list_query_schema`` the GET /servers query (strict from 2.75). Every gate carries its
microversion in a comment; nothing outside this module and the views compares versions
for servers.
"""

from __future__ import annotations

import base64
import binascii
import copy
from functools import lru_cache
from typing import Any

from novalite.api import common
from novalite.api.microversion import V, Version


@common._format_checker.checks("base64", raises=(binascii.Error, ValueError, TypeError))
def _is_base64(value: object) -> bool:
    if not isinstance(value, str):
        return True
    base64.b64decode(value, validate=True)
    return True


# printable, no leading/trailing whitespace (Nova's format "name")
NAME_PATTERN = r"^(?![\s])[^\x00-\x1f\x7f]*(?<![\s])$"
NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NAME_PATTERN}
DESCRIPTION: dict[str, Any] = {
    "type": ["string", "null"],
    "minLength": 0,
    "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f]*$",
}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
TAG: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
BOOLEAN: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        "True",
        "TRUE",
        "true",
        "1",
        "ON",
        "On",
        "on",
        "YES",
        "Yes",
        "yes",
        False,
        "False",
        "FALSE",
        "false",
        "0",
        "OFF",
        "Off",
        "off",
        "NO",
        "No",
        "no",
    ],
}
POSITIVE_INT: dict[str, Any] = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]*$",
    "minimum": 1,
    "minLength": 1,
}
NON_NEGATIVE_INT: dict[str, Any] = {
    "type": ["integer", "string"],
    "pattern": "^[0-9]*$",
    "minimum": 0,
    "minLength": 1,
}
HOSTLIKE: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[a-zA-Z0-9-._]*$",
}
METADATA: dict[str, Any] = {
    "type": "object",
    "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False,
}
IP_ADDRESS: dict[str, Any] = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
DEVICE_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[a-zA-Z0-9._/-]*$",
}

_LEGACY_BDM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "volume_size": {
            "type": ["integer", "string"],
            "pattern": "^[0-9]+$",
            "minimum": 1,
            "maximum": 2147483647,
        },
        "device_name": DEVICE_NAME,
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
    },
    "additionalProperties": False,
}

_BDM_V2: dict[str, Any] = {
    "type": "object",
    "properties": {
        "virtual_name": {"type": "string", "maxLength": 255},
        "volume_id": UUID,
        "snapshot_id": UUID,
        "image_id": UUID,
        "volume_size": {
            "type": ["integer", "string"],
            "pattern": "^[0-9]+$",
            "minimum": 1,
            "maximum": 2147483647,
        },
        "device_name": DEVICE_NAME,
        "delete_on_termination": BOOLEAN,
        "no_device": {},
        "connection_info": {"type": "string", "maxLength": 16777215},
        "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
        "uuid": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"},
        "destination_type": {"type": "string", "enum": ["local", "volume"]},
        "guest_format": {"type": "string", "maxLength": 255},
        "device_type": {"type": "string", "maxLength": 255},
        "disk_bus": {"type": "string", "maxLength": 255},
        "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
    },
    "additionalProperties": False,
}

_NETWORK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fixed_ip": IP_ADDRESS,
        "port": {"oneOf": [UUID, {"type": "null"}]},
        "uuid": {"type": "string"},
    },
    "additionalProperties": False,
}

_PERSONALITY: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "contents": {"type": "string", "format": "base64"}},
        "additionalProperties": False,
    },
}

HINTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "group": {"oneOf": [UUID, {"type": "array", "items": UUID, "minItems": 1}]},
        "different_host": {"oneOf": [UUID, {"type": "array", "items": UUID}]},
        "same_host": {"oneOf": [UUID, {"type": "array", "items": UUID}]},
        "query": {"type": ["string", "object"]},
        "target_cell": {"type": "string", "minLength": 1, "maxLength": 255},
        "different_cell": {"type": ["string", "array"], "items": {"type": "string"}},
        "build_near_host_ip": IP_ADDRESS,
        "cidr": {"type": "string", "pattern": "^/[0-9a-f.:]+$"},
    },
    "additionalProperties": True,
}

_BASE_SERVER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": NAME,
        "imageRef": {"oneOf": [UUID, {"type": "string", "maxLength": 0}]},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": METADATA,
        "networks": {"type": "array", "items": _NETWORK},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "personality": _PERSONALITY,
        "availability_zone": NAME,
        "block_device_mapping": {"type": "array", "items": _LEGACY_BDM},
        "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
        "config_drive": BOOLEAN,
        "key_name": NAME,
        "min_count": POSITIVE_INT,
        "max_count": POSITIVE_INT,
        "return_reservation_id": BOOLEAN,
        "security_groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}},
                "additionalProperties": False,
            },
        },
        "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}


def _create_server(version: Version) -> dict[str, Any]:
    server = copy.deepcopy(_BASE_SERVER)
    props = server["properties"]
    network_props = props["networks"]["items"]["properties"]
    bdm_props = props["block_device_mapping_v2"]["items"]["properties"]
    if version >= V(2, 19):  # 2.19: description
        props["description"] = DESCRIPTION
    tagged = V(2, 32) <= version < V(2, 37) or version >= V(2, 42)  # 2.32 device tags; gone 2.37-2.41
    if tagged:
        network_props["tag"] = TAG
        bdm_props["tag"] = TAG
    if version >= V(2, 37):  # 2.37: networks required, "auto" / "none", uuid must be a UUID
        network_props["uuid"] = UUID
        props["networks"] = {"oneOf": [props["networks"], {"type": "string", "enum": ["none", "auto"]}]}
        server["required"] = [*server["required"], "networks"]
    if version >= V(2, 52):  # 2.52: tags
        props["tags"] = {"type": "array", "items": TAG, "maxItems": 50}
    if version >= V(2, 57):  # 2.57: personality removed
        del props["personality"]
    if version >= V(2, 63):  # 2.63: trusted image certificates
        props["trusted_image_certificates"] = {
            "type": ["array", "null"],
            "minItems": 1,
            "maxItems": 50,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
        }
    if version >= V(2, 67):  # 2.67: volume_type in BDM v2
        bdm_props["volume_type"] = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
    if version >= V(2, 74):  # 2.74: requested host / hypervisor_hostname
        props["host"] = HOSTLIKE
        props["hypervisor_hostname"] = HOSTLIKE
    if version >= V(2, 94):  # 2.94: FQDN hostnames
        props["hostname"] = HOSTLIKE
    elif version >= V(2, 90):  # 2.90: hostname
        props["hostname"] = {
            "type": "string",
            "minLength": 2,
            "maxLength": 63,
            "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$",
        }
    return server


@lru_cache(maxsize=256)
def create_schema(version: Version) -> dict[str, Any]:
    """Built once per microversion and shared (with its validator, see ``api.common.validate``):
    callers must not change it."""
    return {
        "type": "object",
        "properties": {
            "server": _create_server(version),
            "os:scheduler_hints": HINTS,
            "OS-SCH-HNT:scheduler_hints": HINTS,
        },
        "required": ["server"],
        "additionalProperties": False,
    }


def update_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": NAME,
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    }
    if version >= V(2, 19):  # 2.19: description
        props["description"] = DESCRIPTION
    if version >= V(2, 94):  # 2.94: FQDN hostnames
        props["hostname"] = HOSTLIKE
    elif version >= V(2, 90):  # 2.90: hostname
        props["hostname"] = _create_server(version)["properties"]["hostname"]
    if version >= V(2, 104):  # 2.104: unpin (null) or re-pin the availability zone
        props["pinned_availability_zone"] = {**NAME, "type": ["string", "null"]}
    return {
        "type": "object",
        "properties": {"server": {"type": "object", "properties": props, "additionalProperties": False}},
        "required": ["server"],
        "additionalProperties": False,
    }


# Query parameters understood by GET /servers[/detail] (values are lists: params repeat).
LIST_PARAMS_BASE = {
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "reservation_id",
    "name",
    "status",
    "image",
    "flavor",
    "ip",
    "changes-since",
    "all_tenants",
    "deleted",
    "host",
    "node",
    "project_id",
    "tenant_id",
    "user_id",
    "uuid",
    "ip6",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "changes-before",
    "locked",
    "availability_zone",
    "config_drive",
    "key_name",
    "created_at",
    "launched_at",
    "terminated_at",
    "power_state",
    "task_state",
    "vm_state",
    "progress",
    "hostname",
    "soft_deleted",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "description",
    "display_name",
    "display_description",
    "launch_index",
    "kernel_id",
    "ramdisk_id",
    "root_device_name",
    "image_ref",
    "flavor_id",
    "instance_type_id",
    "architecture",
    "os_type",
    "vm_mode",
    "pinned_availability_zone",
}

NON_ADMIN_FILTERS = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since"}


def non_admin_filters(version: Version) -> set[str]:
    allowed = set(NON_ADMIN_FILTERS)
    if version >= V(2, 5):  # 2.5: ip6
        allowed.add("ip6")
    if version >= V(2, 26):  # 2.26: tag filters
        allowed |= {"tags", "tags-any", "not-tags", "not-tags-any"}
    if version >= V(2, 66):  # 2.66: changes-before
        allowed.add("changes-before")
    if version >= V(2, 73):  # 2.73: locked
        allowed.add("locked")
    if version >= V(2, 83):  # 2.83: more filters for everyone
        allowed |= {
            "availability_zone",
            "config_drive",
            "key_name",
            "created_at",
            "launched_at",
            "terminated_at",
            "power_state",
            "task_state",
            "vm_state",
            "progress",
            "user_id",
        }
    if version >= V(2, 90):  # 2.90: hostname
        allowed.add("hostname")
    return allowed


def strict_list_query(version: Version) -> bool:
    """2.75: unknown query parameters are rejected instead of ignored."""
    return version >= V(2, 75)


def status_filter_strict(version: Version) -> bool:
    """2.38: an unknown status filter value is a 400 instead of an empty list."""
    return version >= V(2, 38)

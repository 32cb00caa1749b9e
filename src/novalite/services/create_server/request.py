"""The create command and its result: one frozen dataclass in, one out.

``CreateServerRequest.from_body`` turns a schema-validated POST /servers body into the
command (§1.3 steps 2-4: admin password, name/description/hostname, counts, hints, disk
config, access IPs, personality). It runs after the schema, so shapes are already right;
it still raises ``BadRequest`` for the checks the schema cannot express (min > max).
"""

from __future__ import annotations

import ipaddress
import string
from dataclasses import dataclass, field
from typing import Any

from novalite.context import RequestContext
from novalite.domain.microversion import V, Version
from novalite.errors import BadRequest
from novalite.randomness import SecureChoices, random_chars

TRUE_STRINGS = {"true", "1", "on", "yes"}

# §1.3 step 2: digits 2-9, upper case without I/O, lower case without l
_PASSWORD_GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")
PASSWORD_LENGTH = 12


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password with at least one character of each group, shuffled (Fisher-Yates)."""
    source = SecureChoices(2 * length + 8)
    chars = [source.choice(group) for group in _PASSWORD_GROUPS]
    alphabet = "".join(_PASSWORD_GROUPS)
    chars += [source.choice(alphabet) for _ in range(length - len(chars))]
    for i in range(len(chars) - 1, 0, -1):
        j = source.below(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def generate_reservation_id() -> str:
    """``r-`` followed by 8 characters from [0-9a-z]."""
    return "r-" + random_chars(string.digits + string.ascii_lowercase, 8)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_STRINGS


@dataclass(frozen=True)
class CreateServerRequest:
    """Everything the pipeline needs, normalised from the request body."""

    ctx: RequestContext
    version: Version
    name: str
    description: str | None
    flavor_ref: str
    image_ref: str
    admin_pass: str
    requested_hostname: str | None = None
    networks: Any = None  # None (pre-2.37 omitted), "auto", "none" or list of dicts
    security_groups: tuple[str, ...] = ("default",)
    security_groups_echo: tuple[dict[str, Any], ...] = ({"name": "default"},)
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    key_name: str | None = None
    availability_zone: str | None = None
    legacy_bdm: tuple[dict[str, Any], ...] = ()
    bdm_v2: tuple[dict[str, Any], ...] = ()
    min_count: int = 1
    max_count: int = 1
    return_reservation_id: bool = False
    config_drive: Any = None
    injected_files: tuple[tuple[str, str], ...] = ()
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool | None = None
    tags: tuple[str, ...] = ()
    trusted_certs: tuple[str, ...] | None = None
    host: str | None = None
    hypervisor_hostname: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)

    @property
    def has_bdm(self) -> bool:
        return bool(self.legacy_bdm or self.bdm_v2)

    @classmethod
    def from_body(cls, body: dict[str, Any], ctx: RequestContext, version: Version) -> CreateServerRequest:
        server: dict[str, Any] = body["server"]
        hints = body.get("os:scheduler_hints", body.get("OS-SCH-HNT:scheduler_hints")) or {}
        min_count = int(server.get("min_count", 1))
        max_count = int(server.get("max_count", min_count))
        if min_count > max_count:
            raise BadRequest("min_count must be <= max_count")
        name = server["name"].strip()
        description = server.get("description") if version >= V(2, 19) else name  # 2.19
        return cls(
            ctx=ctx,
            version=version,
            name=name,
            description=description,
            flavor_ref=_flavor_id(server["flavorRef"]),
            image_ref=server.get("imageRef") or "",
            admin_pass=server.get("adminPass") or generate_password(),
            requested_hostname=server.get("hostname"),
            networks=server.get("networks"),
            **_security_groups(server.get("security_groups")),
            user_data=server.get("user_data"),
            metadata=dict(server.get("metadata") or {}),
            key_name=server.get("key_name"),
            availability_zone=server.get("availability_zone"),
            legacy_bdm=tuple(server.get("block_device_mapping") or ()),
            bdm_v2=tuple(server.get("block_device_mapping_v2") or ()),
            min_count=min_count,
            max_count=max_count,
            return_reservation_id=to_bool(server.get("return_reservation_id", False)),
            config_drive=server.get("config_drive"),
            injected_files=tuple(
                (f.get("path", ""), f.get("contents", "")) for f in server.get("personality") or ()
            ),
            access_ip_v4=normalize_ip(server.get("accessIPv4")),
            access_ip_v6=normalize_ip(server.get("accessIPv6")),
            auto_disk_config=_disk_config(server.get("OS-DCF:diskConfig")),
            tags=tuple(server.get("tags") or ()),
            trusted_certs=tuple(server["trusted_image_certificates"])
            if server.get("trusted_image_certificates")
            else None,
            host=server.get("host"),
            hypervisor_hostname=server.get("hypervisor_hostname"),
            scheduler_hints=dict(hints),
        )


def normalize_ip(value: str | None) -> str | None:
    """Access IPs are kept in their canonical text form
    (``0:0::babe:220.12.22.2`` -> ``::babe:dc0c:1602``)."""
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _flavor_id(ref: Any) -> str:
    """flavorRef may be an id or a URL whose last path segment is the id."""
    text = str(ref)
    return text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text


def _disk_config(value: str | None) -> bool | None:
    if value is None:
        return None
    return value == "AUTO"


def _security_groups(groups: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Names de-duplicated (entries without a name ignored); the response echoes the request."""
    if not groups:
        return {"security_groups": ("default",), "security_groups_echo": ({"name": "default"},)}
    names = tuple(sorted({g["name"] for g in groups if g.get("name")})) or ("default",)
    return {"security_groups": names, "security_groups_echo": tuple(groups)}


@dataclass(frozen=True)
class CreateServerResult:
    """What POST /servers answers: the first instance, the shared reservation id, the password."""

    instance_uuids: tuple[str, ...]
    reservation_id: str
    admin_pass: str
    auto_disk_config: bool
    security_groups_echo: tuple[dict[str, Any], ...]

    @property
    def first_uuid(self) -> str:
        return self.instance_uuids[0]

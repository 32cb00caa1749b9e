"""Read-only checks against flavors, images, key pairs, quotas and server groups (§2.2).

Every function takes an open session (when it reads), raises the Nova error the API shows and
returns what it decided; none writes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import RequestedNetworks
from novalite.errors import BadRequest, Forbidden
from novalite.image.service import ImageInfo, get_image
from novalite.services import flavors, quotas
from novalite.services.create_server import lookups
from novalite.services.create_server.plan import ImageSettings
from novalite.services.create_server.request import CreateServerRequest, to_bool
from novalite.services.create_server.steps import networks
from novalite.services.keypairs import get_keypair

T = TypeVar("T")
GiB = 1024**3
ZERO_DISK_RULE = "os_compute_api:servers:create:zero_disk_flavor"
FALSE_STRINGS = {"false", "0", "off", "no", ""}


def _once(s: Session, key: tuple[Any, ...], read: Callable[[], T]) -> T:
    """``read()`` once per read transaction: the creates checked together in one
    (``pipeline.create_servers``) that ask the same question (the same flavor or image, seen as
    the same project and role) share the answer instead of asking the database again. What is
    shared is only read afterwards."""
    memo: dict[tuple[Any, ...], Any] = s.info.setdefault("create_checks", {})
    if key not in memo:
        memo[key] = read()
    return cast(T, memo[key])


def load_flavor(s: Session, ctx: RequestContext, flavor_ref: str) -> FlavorSnapshot:
    """Flavor by id, as the flavor service sees it for ctx (not found becomes a 400 here);
    disabled -> 400."""
    snapshot = _once(
        s,
        ("flavor", flavor_ref, ctx.is_admin, ctx.project_id),
        lambda: flavors.find_snapshot(s, ctx, flavor_ref),
    )
    if snapshot is None or snapshot.disabled:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.", kind="FlavorNotFound")
    return snapshot


def load_image(s: Session, req: CreateServerRequest, image_ref: str) -> ImageInfo | None:
    """Image boot: the image must be visible (ImageNotFound 400); None without an image."""
    if not image_ref:
        if req.trusted_certs:
            raise BadRequest(
                f"Image signature certificate validation failed for certificate: "
                f"{', '.join(req.trusted_certs)}. Image certificate validation is not "
                "supported when booting from volume",
                kind="CertificateValidationFailed",
            )
        return None
    ctx = req.ctx
    image = _once(s, ("image", image_ref, ctx.is_admin, ctx.project_id), lambda: get_image(s, ctx, image_ref))
    if image is None:
        raise BadRequest("Can not find requested image", kind="ImageNotFound")
    return image


def check_disk_config(req: CreateServerRequest, image: ImageInfo | None, image_ref: str) -> bool:
    """AUTO requested while the image disables automatic disk resize -> 400; else whether the
    disk is configured automatically (the request's choice, else the image's)."""
    props = image.properties if image is not None else {}
    image_setting = str(props.get("auto_disk_config", "")).lower()
    if req.auto_disk_config is True and image_setting == "disabled":
        raise BadRequest(
            f"Requested image {image_ref} has automatic disk resize disabled.",
            kind="AutoDiskConfigDisabledByImage",
        )
    if req.auto_disk_config is not None:
        return req.auto_disk_config
    return image_setting not in FALSE_STRINGS and image_setting != "disabled"


def check_user_data(req: CreateServerRequest) -> None:
    if req.user_data is None:
        return
    try:
        base64.b64decode(req.user_data)
    except (binascii.Error, ValueError):
        raise BadRequest("User data needs to be valid base 64.", kind="InstanceUserDataMalformed") from None


def load_key_pair(s: Session, req: CreateServerRequest) -> tuple[str | None, str | None]:
    """The key pair's name and public key (both None without ``key_name``)."""
    name = req.key_name
    if name is None:
        return None, None
    keypair = get_keypair(s, req.ctx.user_id, name)
    if keypair is None:
        raise BadRequest("Invalid key_name provided.", kind="KeypairNotFound")
    return name, getattr(keypair, "public_key", None)


def check_config_drive(req: CreateServerRequest) -> str:
    """``"True"`` or ``""`` from the request's config_drive."""
    value = req.config_drive
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or str(value).lower() in FALSE_STRINGS | {"true", "1", "on", "yes"}:
        return "True" if to_bool(value) else ""
    raise BadRequest("Invalid config_drive provided.", kind="ConfigDriveInvalidValue")


def check_limits(s: Session, req: CreateServerRequest) -> None:
    """Metadata items and (before 2.57) injected files against the absolute quotas (403)."""
    if req.metadata:  # no items can exceed no limit: the limits are read only when there are some
        quotas.check_metadata_quota(s, req.ctx.project_id, req.metadata)
    if req.injected_files:
        quotas.check_injected_files(s, req.ctx.project_id, list(req.injected_files))


def check_image(ctx: RequestContext, image: ImageInfo | None, flavor: FlavorSnapshot) -> None:
    """§2.2 10.4-10.8: active image, enough RAM and disk, zero-disk flavors for admins only."""
    if image is None:
        return
    if image.status != "active":
        raise BadRequest(f"Image {image.id} is not active.", kind="ImageNotActive")
    if int(flavor.memory_mb) < int(image.min_ram or 0):
        raise BadRequest("Flavor's memory is too small for requested image.", kind="FlavorMemoryTooSmall")
    root_gb = int(flavor.root_gb)
    if root_gb == 0:
        if not ctx.is_admin:
            raise Forbidden(
                "Only volume-backed servers are allowed for flavors with zero disk.",
                kind="BootFromVolumeRequiredForZeroDiskFlavor",
            )
        return
    if (image.size or 0) > root_gb * GiB:
        raise BadRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is {root_gb * GiB} bytes, "
            f"image is {image.size} bytes.",
            kind="FlavorDiskSmallerThanImage",
        )
    if int(image.min_disk or 0) > root_gb:
        raise BadRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is {root_gb * GiB} bytes, "
            f"minimum requested disk is {int(image.min_disk) * GiB} bytes.",
            kind="FlavorDiskSmallerThanMinDisk",
        )


def image_settings(s: Session, ctx: RequestContext, image: ImageInfo | None) -> ImageSettings:
    """Kernel/ramdisk ids (which must exist) and root device name from the image."""
    props: dict[str, Any] = image.properties if image is not None else {}
    kernel, ramdisk = str(props.get("kernel_id") or ""), str(props.get("ramdisk_id") or "")
    if kernel == "nokernel":
        kernel = ramdisk = ""
    for image_id in (kernel, ramdisk):
        if image_id and get_image(s, ctx, image_id) is None:
            raise BadRequest(f"Image {image_id} could not be found.", kind="ImageNotFound")
    root = props.get("root_device_name") or "vda"
    return ImageSettings(
        kernel_id=kernel,
        ramdisk_id=ramdisk,
        root_device_name=root if str(root).startswith("/dev/") else f"/dev/{root}",
    )


def check_image_properties(image: ImageInfo | None, config_drive: str) -> str:
    """§2.2 10.3 and 10.5: encrypted-volume images cannot boot directly; img_config_drive values.
    Returns the config drive (``"True"`` when the image makes it mandatory)."""
    props: dict[str, Any] = image.properties if image is not None else {}
    if image is not None and props.get("cinder_encryption_key_id"):
        raise BadRequest(
            f"Image {image.id} is unacceptable: Direct booting of an image uploaded from an "
            "encrypted volume is unsupported.",
            kind="ImageUnacceptable",
        )
    drive = props.get("img_config_drive")
    if drive is None:
        return config_drive
    if drive not in ("optional", "mandatory"):
        # Nova lets this escape as a 500; a request must never be a 500 here
        raise BadRequest(f"Image's config drive option '{drive}' is invalid", kind="InvalidImageConfigDrive")
    return "True" if drive == "mandatory" else config_drive


def scheduler_hints(s: Session, req: CreateServerRequest) -> tuple[dict[str, list[str]], str | None]:
    """Drop ``_nova*`` keys, make every value a list of strings, check the group exists (400).
    Returns the hints and the server group's uuid (None without one)."""
    hints: dict[str, list[str]] = {}
    for key, value in req.scheduler_hints.items():
        if key.startswith("_nova"):
            continue
        values = value if isinstance(value, list) else [value]
        hints[key] = [v if isinstance(v, str) else _json(v) for v in values]
    group = hints.get("group", [None])[0]
    if group is None:
        return hints, None
    if not lookups.server_group_visible(s, req.ctx, group):
        raise BadRequest(f"Instance group {group} could not be found.", kind="InstanceGroupNotFound")
    return hints, group


def _json(value: Any) -> str:
    return json.dumps(value)


def check_security_groups_and_networks(
    s: Session, req: CreateServerRequest, requested_networks: RequestedNetworks
) -> int:
    """§2.2 5.3-5.4: security groups, then networks; returns the max_count the port quota allows."""
    networks.check_security_groups(s, req)
    return networks.validate_networks(s, req, requested_networks)

"""Cinder quotas: volumes, gigabytes, snapshots, backups and backup_gigabytes per project (defaults
10, 1000, 10, 10, 1000), counted from the live rows; ``gigabytes`` counts volumes and snapshots,
as Cinder's does. Exceeding one is Cinder's 413."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from novalite.db.models.volume import Volume, VolumeBackup, VolumeQuota, VolumeSnapshot
from novalite.errors import BadRequest, RequestTooLarge
from novalite.services import quota_overrides

DEFAULTS: dict[str, int] = {
    "volumes": 10,
    "gigabytes": 1000,
    "snapshots": 10,
    "backups": 10,
    "backup_gigabytes": 1000,
    "groups": 10,
    "per_volume_gigabytes": -1,
}
TYPED = ("volumes", "gigabytes", "snapshots")  # also reported per volume type: volumes___DEFAULT__


def quota_lock(project_id: str) -> str:
    return f"volume-quota:{project_id}"


def limits(s: Session, project_id: str) -> dict[str, int]:
    return quota_overrides.limits(s, VolumeQuota, project_id, DEFAULTS)


def usage(s: Session, project_id: str) -> dict[str, int]:
    count, gigabytes = s.execute(
        select(func.count(), func.coalesce(func.sum(Volume.size), 0)).where(Volume.project_id == project_id)
    ).one()
    snaps, snap_gb = s.execute(
        select(func.count(), func.coalesce(func.sum(VolumeSnapshot.size), 0)).where(
            VolumeSnapshot.project_id == project_id
        )
    ).one()
    backups, backup_gb = s.execute(
        select(func.count(), func.coalesce(func.sum(VolumeBackup.size), 0)).where(
            VolumeBackup.project_id == project_id
        )
    ).one()
    return {
        "volumes": int(count),
        "gigabytes": int(gigabytes) + int(snap_gb),
        "snapshots": int(snaps),
        "backups": int(backups),
        "backup_gigabytes": int(backup_gb),
        "groups": 0,
        "per_volume_gigabytes": 0,
    }


def check_new_volume(s: Session, project_id: str, size: int, *, count: int = 1) -> None:
    """413 when one more volume of ``size`` GiB would exceed the project's volumes or gigabytes."""
    lim, used = limits(s, project_id), usage(s, project_id)
    per_volume = lim["per_volume_gigabytes"]
    if per_volume >= 0 and size > per_volume:
        raise RequestTooLarge(
            f"Requested volume size {size}G is larger than maximum allowed limit {per_volume}G.",
            kind="VolumeSizeExceedsLimit",
        )
    if lim["volumes"] >= 0 and used["volumes"] + count > lim["volumes"]:
        raise RequestTooLarge(
            f"Maximum number of volumes allowed ({lim['volumes']}) exceeded for quota 'volumes'.",
            kind="VolumeLimitExceeded",
        )
    check_gigabytes(s, project_id, size, lim=lim, used=used)


def check_gigabytes(
    s: Session,
    project_id: str,
    delta: int,
    *,
    lim: dict[str, int] | None = None,
    used: dict[str, int] | None = None,
) -> None:
    lim = lim or limits(s, project_id)
    used = used or usage(s, project_id)
    if lim["gigabytes"] >= 0 and used["gigabytes"] + delta > lim["gigabytes"]:
        raise RequestTooLarge(
            f"Requested volume or snapshot exceeds allowed gigabytes quota. Requested {delta}G, "
            f"quota is {lim['gigabytes']}G and {used['gigabytes']}G has been consumed.",
            kind="VolumeSizeExceedsAvailableQuota",
        )


def check_new_snapshot(s: Session, project_id: str, size: int) -> None:
    """413 when one more snapshot of ``size`` GiB would exceed the snapshots or gigabytes quota."""
    lim, used = limits(s, project_id), usage(s, project_id)
    if lim["snapshots"] >= 0 and used["snapshots"] + 1 > lim["snapshots"]:
        raise RequestTooLarge(
            f"Maximum number of snapshots allowed ({lim['snapshots']}) exceeded",
            kind="SnapshotLimitExceeded",
        )
    check_gigabytes(s, project_id, size, lim=lim, used=used)


def check_new_backup(s: Session, project_id: str, size: int) -> None:
    """413 when one more backup of ``size`` GiB would exceed the backups or backup_gigabytes quota."""
    lim, used = limits(s, project_id), usage(s, project_id)
    if lim["backups"] >= 0 and used["backups"] + 1 > lim["backups"]:
        raise RequestTooLarge(
            f"Maximum number of backups allowed ({lim['backups']}) exceeded", kind="BackupLimitExceeded"
        )
    if lim["backup_gigabytes"] >= 0 and used["backup_gigabytes"] + size > lim["backup_gigabytes"]:
        raise RequestTooLarge(
            f"Requested backup exceeds allowed Backup gigabytes quota. Requested {size}G, quota is "
            f"{lim['backup_gigabytes']}G and {used['backup_gigabytes']}G has been consumed.",
            kind="VolumeBackupSizeExceedsAvailableQuota",
        )


def set_limits(s: Session, project_id: str, values: dict[str, object]) -> None:
    """Store overrides; 400 for unknown resources or values that are not integers >= -1."""
    if not project_id or len(project_id) > 64:
        raise BadRequest(
            f"Invalid input received: '{project_id}' is not a valid project id.", kind="InvalidInput"
        )
    for resource, value in values.items():
        if resource in ("tenant_id", "project_id", "id", "force", "check_limit"):
            continue
        if resource not in DEFAULTS:
            raise BadRequest(
                f"Invalid input received: Bad key(s) in quota set: {resource}", kind="InvalidInput"
            )
        try:
            number = quota_overrides.integer_limit(value)
        except ValueError:
            raise BadRequest(
                f"Invalid input received: Quota limit {value} for {resource} must be an integer.",
                kind="InvalidInput",
            ) from None
        if number < -1 or number > quota_overrides.MAX_LIMIT:
            raise BadRequest(
                f"Invalid input received: Quota limit {value} for {resource} must be -1 or greater.",
                kind="InvalidInput",
            )
        quota_overrides.store(s, VolumeQuota, project_id, resource, number)


def reset(s: Session, project_id: str) -> None:
    quota_overrides.reset(s, VolumeQuota, project_id)

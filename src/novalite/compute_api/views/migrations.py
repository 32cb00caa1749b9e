"""Migration records as GET /os-migrations and GET /servers/{id}/migrations show them, per
microversion (§6.1, §6.2 of the move operations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from novalite.db.models.compute import Migration
from novalite.domain.microversion import Version
from novalite.services.migrations import LIVE_IN_PROGRESS, MigrationType

V = Version
_HOST_FIELDS = ("source_compute", "source_node", "dest_compute", "dest_node", "dest_host")


def _time(value: dt.datetime | None) -> str | None:
    """ISO with microseconds and no zone, as Nova's migration views print them."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def migration_item(
    m: Migration, version: Version, *, links: list[dict[str, str]] | None, show_hosts: bool
) -> dict[str, Any]:
    """One entry of GET /os-migrations; ``links`` for in-progress live migrations (2.23)."""
    out: dict[str, Any] = {
        "created_at": _time(m.created_at),
        "updated_at": _time(m.updated_at),
        "id": m.id,
        "instance_uuid": m.instance_uuid,
        "status": m.status,
        **{f: getattr(m, f) if show_hosts else None for f in _HOST_FIELDS},
        "old_instance_type_id": m.old_instance_type_id,
        "new_instance_type_id": m.new_instance_type_id,
    }
    if version >= V(2, 23):  # 2.23: migration_type, and links to in-progress live migrations
        out["migration_type"] = m.migration_type
        if links is not None and in_progress_live(m):
            out["links"] = links
    if version >= V(2, 59):  # 2.59: uuid
        out["uuid"] = m.uuid
    if version >= V(2, 80):  # 2.80: user_id, project_id
        out["user_id"], out["project_id"] = m.user_id, m.project_id
    return out


def in_progress_live(m: Migration) -> bool:
    return m.migration_type == MigrationType.LIVE and m.status in LIVE_IN_PROGRESS


def server_migration(m: Migration, version: Version, *, show_hosts: bool = True) -> dict[str, Any]:
    """One entry of GET /servers/{id}/migrations (2.23)."""
    out: dict[str, Any] = {
        "created_at": _time(m.created_at),
        "updated_at": _time(m.updated_at),
        "id": m.id,
        "server_uuid": m.instance_uuid,
        "status": m.status,
        **{f: getattr(m, f) if show_hosts else None for f in _HOST_FIELDS},
        # the fake driver moves a guest at once: nothing to count
        "memory_total_bytes": None,
        "memory_processed_bytes": None,
        "memory_remaining_bytes": None,
        "disk_total_bytes": None,
        "disk_processed_bytes": None,
        "disk_remaining_bytes": None,
    }
    if version >= V(2, 59):  # 2.59: uuid
        out["uuid"] = m.uuid
    if version >= V(2, 80):  # 2.80: user_id, project_id
        out["user_id"], out["project_id"] = m.user_id, m.project_id
    return out

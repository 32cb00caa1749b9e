"""The one state table: vm_state, task_state, power_state and the API status they map to (§5)."""

from __future__ import annotations

from enum import IntEnum


class VmState:
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState:
    SCHEDULING = "scheduling"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    DELETING = "deleting"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    MIGRATING = "migrating"
    SHELVING = "shelving"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


class PowerState(IntEnum):
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


# vm_state -> (default status, {task_state: status})
_REBOOT = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
}
_REBUILD = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"}
_RESIZE = {
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
}

STATUS_MAP: dict[str, tuple[str, dict[str, str]]] = {
    VmState.ACTIVE: (
        "ACTIVE",
        {**_REBOOT, "updating_password": "PASSWORD", **_REBUILD, "migrating": "MIGRATING", **_RESIZE},
    ),
    VmState.BUILDING: ("BUILD", {}),
    VmState.STOPPED: ("SHUTOFF", {**_RESIZE, **_REBUILD}),
    VmState.RESIZED: ("VERIFY_RESIZE", {"resize_reverting": "REVERT_RESIZE"}),
    VmState.PAUSED: ("PAUSED", {"migrating": "MIGRATING"}),
    VmState.SUSPENDED: ("SUSPENDED", {}),
    VmState.RESCUED: ("RESCUE", {}),
    VmState.ERROR: ("ERROR", {**_REBUILD}),
    VmState.DELETED: ("DELETED", {}),
    VmState.SOFT_DELETED: ("SOFT_DELETED", {}),
    VmState.SHELVED: ("SHELVED", {}),
    VmState.SHELVED_OFFLOADED: ("SHELVED_OFFLOADED", {}),
}

PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


def status_of(vm_state: str, task_state: str | None, *, deleted: bool = False) -> str:
    if deleted:
        return "DELETED"
    entry = STATUS_MAP.get(vm_state)
    if entry is None:
        return "UNKNOWN"
    default, overrides = entry
    return overrides.get(task_state or "", default)


def states_for_status(status: str) -> list[tuple[str, str | None]] | None:
    """Reverse map for the ``status`` list filter: [(vm_state, task_state or None=any)]; None if unknown."""
    status = status.upper()
    out: list[tuple[str, str | None]] = []
    for vm_state, (default, overrides) in STATUS_MAP.items():
        if default == status:
            out.append((vm_state, None))
        for task, st in overrides.items():
            if st == status:
                out.append((vm_state, task))
    return out or None

"""Server actions as data (habit 7): the vm_states and task_states each action accepts and the
state it leaves the server in. Pure: no I/O; ``services.server_actions`` checks and persists them.

The check is Nova's ``check_instance_state``: vm_state, then task_state, then launched_at
(``Transition.refusal``). An action with ``to_vm`` None leaves vm_state unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from novalite.domain.states import PowerState, TaskState, VmState


@dataclass(frozen=True)
class Transition:
    """An action: accepted states, then the state the server is left in (vm_state None = unchanged)."""

    name: str  # as in instance actions and Nova's 409 text
    from_vm: tuple[str, ...]
    to_vm: str | None
    power: PowerState
    from_task: tuple[str | None, ...] = (None,)
    needs_launched: bool = True

    def refusal(self, vm_state: str, task_state: str | None, *, launched: bool) -> tuple[str, Any] | None:
        """The (attribute, value) that forbids the action, or None when it is allowed."""
        if vm_state not in self.from_vm:
            return "vm_state", vm_state
        if task_state not in self.from_task:
            return "task_state", task_state
        if self.needs_launched and not launched:
            return "launched_at", None
        return None


_HARD_REBOOT_TASKS = (
    None,
    "rebooting",
    "reboot_pending",
    "reboot_started",
    "rebooting_hard",
    "reboot_pending_hard",
    "reboot_started_hard",
    TaskState.PAUSING,
    TaskState.UNPAUSING,
    TaskState.SUSPENDING,
    TaskState.RESUMING,
)

# the power actions, by their key in POST /servers/{id}/action
TRANSITIONS: dict[str, Transition] = {
    "os-stop": Transition("stop", (VmState.ACTIVE, VmState.ERROR), VmState.STOPPED, PowerState.SHUTDOWN),
    "os-start": Transition("start", (VmState.STOPPED,), VmState.ACTIVE, PowerState.RUNNING),
    "pause": Transition("pause", (VmState.ACTIVE,), VmState.PAUSED, PowerState.PAUSED),
    "unpause": Transition("unpause", (VmState.PAUSED,), VmState.ACTIVE, PowerState.RUNNING),
    "suspend": Transition("suspend", (VmState.ACTIVE,), VmState.SUSPENDED, PowerState.SUSPENDED),
    "resume": Transition("resume", (VmState.SUSPENDED,), VmState.ACTIVE, PowerState.RUNNING),
}
SOFT_REBOOT = Transition("reboot", (VmState.ACTIVE,), None, PowerState.RUNNING)
HARD_REBOOT = Transition(
    "reboot",
    (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR),
    VmState.ACTIVE,
    PowerState.RUNNING,
    from_task=_HARD_REBOOT_TASKS,
)
RESTORE = Transition(
    "restore", (VmState.SOFT_DELETED,), VmState.ACTIVE, PowerState.RUNNING, needs_launched=False
)
CRASH_DUMP = Transition(
    "trigger_crash_dump",
    (VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED, VmState.ERROR),
    None,
    PowerState.RUNNING,
)
CHANGE_PASSWORD = Transition("changePassword", (VmState.ACTIVE,), None, PowerState.RUNNING)
RESCUE = Transition(
    "rescue", (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR), VmState.RESCUED, PowerState.RUNNING
)
UNRESCUE = Transition("unrescue", (VmState.RESCUED,), VmState.ACTIVE, PowerState.RUNNING)
REBUILD = Transition(
    "rebuild",
    (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
    None,
    PowerState.RUNNING,
    needs_launched=False,
)
SNAPSHOT = Transition(
    "createImage",
    (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
    None,
    PowerState.RUNNING,
)

# moves and shelve (§2, §3, §4 of the move operations); resize and cold migrate share RESIZE
RESIZE = Transition("resize", (VmState.ACTIVE, VmState.STOPPED), None, PowerState.RUNNING)
MIGRATE = Transition("migrate", (VmState.ACTIVE, VmState.STOPPED), None, PowerState.RUNNING)
CONFIRM_RESIZE = Transition("confirmResize", (VmState.RESIZED,), None, PowerState.RUNNING)
REVERT_RESIZE = Transition("revertResize", (VmState.RESIZED,), None, PowerState.RUNNING)
LIVE_MIGRATE = Transition("os-migrateLive", (VmState.ACTIVE, VmState.PAUSED), None, PowerState.RUNNING)
EVACUATE = Transition("evacuate", (VmState.ACTIVE, VmState.STOPPED, VmState.ERROR), None, PowerState.RUNNING)
SHELVE = Transition(
    "shelve",
    (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
    VmState.SHELVED,
    PowerState.SHUTDOWN,
)
SHELVE_OFFLOAD = Transition(
    "shelveOffload", (VmState.SHELVED,), VmState.SHELVED_OFFLOADED, PowerState.SHUTDOWN
)
UNSHELVE = Transition(
    "unshelve", (VmState.SHELVED, VmState.SHELVED_OFFLOADED), VmState.ACTIVE, PowerState.RUNNING
)

# metadata and tag writes: not while building or in error
WRITABLE_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)


def reboot(kind: str) -> Transition:
    """``reboot``'s ``type`` (HARD or SOFT, any case) -> its transition."""
    return HARD_REBOOT if kind.upper() == "HARD" else SOFT_REBOOT


def after_rebuild(vm_state: str) -> tuple[str, PowerState]:
    """A rebuilt server comes back ACTIVE and running; a stopped one stays SHUTOFF."""
    if vm_state == VmState.STOPPED:
        return VmState.STOPPED, PowerState.SHUTDOWN
    return VmState.ACTIVE, PowerState.RUNNING

"""The compute agent's messages for rescue, unrescue, trigger_crash_dump and rebuild of a real
guest (``compute.guest_actions`` carries them out; ``compute.rpcapi`` registers them).

As for ``PowerAction``: the API checked the action and set the server's task state (none for a
crash dump), committed, then cast the message to the server's host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from novalite.messaging.messages import Message


@dataclass(frozen=True)
class RescueInstance(Message):
    """Boot the guest from ``image_ref`` with its own disk attached second (task ``rescuing``)."""

    METHOD: ClassVar[str] = "rescue_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    task_state: str
    image_ref: str


@dataclass(frozen=True)
class UnrescueInstance(Message):
    """Back to the guest's own disks, running (task ``unrescuing``)."""

    METHOD: ClassVar[str] = "unrescue_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    task_state: str


@dataclass(frozen=True)
class TriggerCrashDump(Message):
    """An NMI to the guest (no task state, no state change)."""

    METHOD: ClassVar[str] = "trigger_crash_dump"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str


@dataclass(frozen=True)
class RebuildInstance(Message):
    """Destroy the guest and spawn it from the server's (new) image on the same ports (task
    ``rebuilding``, then ``rebuild_spawning``); a SHUTOFF server is powered off again."""

    METHOD: ClassVar[str] = "rebuild_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    task_state: str


MESSAGES = (RescueInstance, UnrescueInstance, TriggerCrashDump, RebuildInstance)

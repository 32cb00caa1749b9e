"""The compute agent's messages of a live migration between two real hosts (``compute.live_migration``
carries them out; ``compute.rpcapi`` registers them). Both are calls from the source's agent to
the destination's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from novalite.messaging.messages import Message


@dataclass(frozen=True)
class PrepareLiveMigration(Message):
    """A call to the destination: answers ``{"target": {...}}`` or ``{"error": reason}``."""

    METHOD: ClassVar[str] = "prepare_live_migration"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    instance_uuid: str
    host: str  # the destination
    node: str
    source: dict[str, Any]  # the source driver's ``live_migration_source``


@dataclass(frozen=True)
class FinishLiveMigration(Message):
    """A call to the destination: the guest continues there (``abort``: its half is removed);
    answers ``{"done": True}`` or ``{"error": reason}`` (after a failed finish it is aborted)."""

    METHOD: ClassVar[str] = "finish_live_migration"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    instance_uuid: str
    host: str  # the destination
    node: str
    abort: bool = False


@dataclass(frozen=True)
class LiveMigrationControl(Message):
    """A cast to the source while its live migration runs: ``force_complete`` (the guest is paused
    so that the copy converges) or ``abort`` (the copies are cancelled, the guest stays)."""

    METHOD: ClassVar[str] = "live_migration_control"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    instance_uuid: str
    host: str  # the source
    action: str


MESSAGES = (PrepareLiveMigration, FinishLiveMigration, LiveMigrationControl)

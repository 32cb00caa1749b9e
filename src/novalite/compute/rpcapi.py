"""The compute agent's messages and its client. All local agents share the topic ``compute``;
the payload names the host whose agent runs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalite.compute.consoles import GetConsoleEndpoint
from novalite.compute.guest_rpc import MESSAGES as GUEST_ACTION_MESSAGES
from novalite.compute.live_migration_rpc import MESSAGES as LIVE_MIGRATION_MESSAGES
from novalite.context import RequestContext
from novalite.messaging.messages import Message, context_to_dict, registry_of
from novalite.messaging.transport import PeerUnavailable, Transport

LOG = logging.getLogger(__name__)

TOPIC = "compute"


@dataclass(frozen=True)
class BuildAndRunInstance(Message):
    METHOD: ClassVar[str] = "build_and_run_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    node: str
    build_args: dict[str, Any] = field(default_factory=dict)
    alternates: list[dict[str, Any]] = field(default_factory=list)  # HostChoice dicts, in order
    attempt: int = 1
    failures: list[dict[str, str]] = field(default_factory=list)  # [{host, reason}] of earlier attempts


@dataclass(frozen=True)
class TerminateInstance(Message):
    METHOD: ClassVar[str] = "terminate_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str


@dataclass(frozen=True)
class GetDiagnostics(Message):
    """A call (the API waits): the agent answers ``{"power_state", "diagnostics"}``,
    ``diagnostics`` None when its driver cannot report any."""

    METHOD: ClassVar[str] = "get_diagnostics"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str


@dataclass(frozen=True)
class GetConsoleOutput(Message):
    """A call: the agent answers ``{"output"}``, the serial console's last ``length`` lines
    (None: all of it), ``output`` None when its driver keeps no console log."""

    METHOD: ClassVar[str] = "get_console_output"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    length: int | None = None


@dataclass(frozen=True)
class ResizeInstance(Message):
    """A move's source step (resize, cold and live migration): the source agent lets its guest go,
    then casts ``FinishResize`` to the destination."""

    METHOD: ClassVar[str] = "resize_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    host: str  # the source
    dest_host: str
    dest_node: str


@dataclass(frozen=True)
class FinishResize(Message):
    """A move's destination step: the server runs on ``host`` from now on."""

    METHOD: ClassVar[str] = "finish_resize"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    host: str  # the destination
    node: str


@dataclass(frozen=True)
class ShelveInstance(Message):
    """shelve (``offload`` False) or shelveOffload / shelve with shelved_offload_time 0 (True):
    the agent powers the guest off (and destroys it when offloading), then records it."""

    METHOD: ClassVar[str] = "shelve_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    offload: bool = False
    image_id: str | None = None  # set by shelve (its snapshot), None for a later offload


@dataclass(frozen=True)
class UnshelveOnHost(Message):
    """unshelve: start the SHELVED guest where it is, or spawn an offloaded one on ``host``."""

    METHOD: ClassVar[str] = "unshelve_on_host"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    node: str


@dataclass(frozen=True)
class SnapshotInstance(Message):
    """A call (createImage/createBackup on a real host): the agent copies the guest's root disk
    into the queued image ``image_id``; answers ``{"done"}`` or ``{"error"}``."""

    METHOD: ClassVar[str] = "snapshot_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    image_id: str


@dataclass(frozen=True)
class RebuildEvacuated(Message):
    """Evacuate's destination step: spawn the server's guest on ``host`` (``compute.evacuated``)."""

    METHOD: ClassVar[str] = "rebuild_evacuated"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    instance_uuid: str
    host: str  # the destination
    node: str
    stop: bool = False


@dataclass(frozen=True)
class PowerAction(Message):
    """stop, start, reboot, pause, unpause, suspend or resume of a real guest (``compute.power_actions``):
    the API set ``task_state``; the agent runs the driver and writes the final state."""

    METHOD: ClassVar[str] = "power_action"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    action: str
    task_state: str
    hard: bool = False


@dataclass(frozen=True)
class DeviceAction(Message):
    """attach_volume or attach_interface (a call: the agent answers ``{"done"}``, False when its
    driver has no devices to plug, or ``{"error"}``, and the API keeps the records in line), or
    detach_volume / detach_interface (a cast: the guest may take a while to release the device;
    the agent updates the records itself), on a real guest (``compute.devices``)."""

    METHOD: ClassVar[str] = "device_action"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    action: str
    volume_id: str = ""
    port_id: str = ""
    mac: str = ""


DEVICE_TIMEOUT = 240  # the agent may wait UNPLUG_TIMEOUT for a guest, behind other actions on it


REGISTRY = registry_of(
    [
        DeviceAction,
        PowerAction,
        BuildAndRunInstance,
        TerminateInstance,
        GetDiagnostics,
        GetConsoleOutput,
        SnapshotInstance,
        ResizeInstance,
        FinishResize,
        ShelveInstance,
        UnshelveOnHost,
        RebuildEvacuated,
        GetConsoleEndpoint,  # compute.consoles
        *GUEST_ACTION_MESSAGES,  # compute.guest_rpc: rescue, unrescue, crash dump, rebuild
        *LIVE_MIGRATION_MESSAGES,  # compute.live_migration_rpc: a real host's live migration
    ]
)


class ComputeClient:
    """Casts to the compute agents."""

    def __init__(self, transport: Transport):
        self.transport = transport

    def build_and_run_instance(
        self,
        ctx: RequestContext,
        *,
        instance_uuid: str,
        host: str,
        node: str,
        build_args: dict[str, Any],
        alternates: list[dict[str, Any]],
        attempt: int,
        failures: list[dict[str, str]],
    ) -> None:
        self.transport.cast(
            TOPIC,
            BuildAndRunInstance(
                context=context_to_dict(ctx),
                instance_uuid=instance_uuid,
                host=host,
                node=node,
                build_args=build_args,
                alternates=alternates,
                attempt=attempt,
                failures=failures,
            ),
        )

    def terminate_instance(self, ctx: RequestContext, *, instance_uuid: str, host: str) -> None:
        """While the engine process restarts (``PeerUnavailable``) the delete still counts: the
        server stays in task_state deleting and the next engine's recovery finishes it."""
        try:
            self.transport.cast(
                TOPIC, TerminateInstance(context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host)
            )
        except PeerUnavailable:
            LOG.warning("the engine is restarting: the delete of %s waits for its recovery", instance_uuid)

    def resize_instance(
        self, ctx: RequestContext, *, migration_uuid: str, host: str, dest_host: str, dest_node: str
    ) -> None:
        msg = ResizeInstance(
            context=context_to_dict(ctx),
            migration_uuid=migration_uuid,
            host=host,
            dest_host=dest_host,
            dest_node=dest_node,
        )
        self.transport.cast(TOPIC, msg)

    def finish_resize(self, ctx: RequestContext, *, migration_uuid: str, host: str, node: str) -> None:
        msg = FinishResize(context=context_to_dict(ctx), migration_uuid=migration_uuid, host=host, node=node)
        self.transport.cast(TOPIC, msg)

    def rebuild_evacuated(
        self,
        ctx: RequestContext,
        *,
        migration_uuid: str,
        instance_uuid: str,
        host: str,
        node: str,
        stop: bool,
    ) -> None:
        msg = RebuildEvacuated(
            context=context_to_dict(ctx),
            migration_uuid=migration_uuid,
            instance_uuid=instance_uuid,
            host=host,
            node=node,
            stop=stop,
        )
        self.transport.cast(TOPIC, msg)

    def shelve_instance(
        self, ctx: RequestContext, *, instance_uuid: str, host: str, offload: bool, image_id: str | None
    ) -> None:
        msg = ShelveInstance(
            context=context_to_dict(ctx),
            instance_uuid=instance_uuid,
            host=host,
            offload=offload,
            image_id=image_id,
        )
        self.transport.cast(TOPIC, msg)

    def unshelve_on_host(self, ctx: RequestContext, *, instance_uuid: str, host: str, node: str) -> None:
        msg = UnshelveOnHost(context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host, node=node)
        self.transport.cast(TOPIC, msg)

    def power_action(
        self, ctx: RequestContext, *, instance_uuid: str, host: str, action: str, task_state: str, hard: bool
    ) -> None:
        msg = PowerAction(
            context=context_to_dict(ctx),
            instance_uuid=instance_uuid,
            host=host,
            action=action,
            task_state=task_state,
            hard=hard,
        )
        self.transport.cast(TOPIC, msg)

    def get_diagnostics(self, ctx: RequestContext, *, instance_uuid: str, host: str) -> dict[str, Any]:
        msg = GetDiagnostics(context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host)
        answer: dict[str, Any] = self.transport.call(TOPIC, msg)
        return answer

    def get_console_output(
        self, ctx: RequestContext, *, instance_uuid: str, host: str, length: int | None
    ) -> dict[str, Any]:
        msg = GetConsoleOutput(
            context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host, length=length
        )
        answer: dict[str, Any] = self.transport.call(TOPIC, msg)
        return answer

    def snapshot_instance(
        self, ctx: RequestContext, *, instance_uuid: str, host: str, image_id: str
    ) -> dict[str, Any]:
        msg = SnapshotInstance(
            context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host, image_id=image_id
        )
        answer: dict[str, Any] = self.transport.call(TOPIC, msg, timeout=600)
        return answer

    def device_action(
        self,
        ctx: RequestContext,
        *,
        instance_uuid: str,
        host: str,
        action: str,
        volume_id: str = "",
        port_id: str = "",
        mac: str = "",
    ) -> dict[str, Any]:
        msg = DeviceAction(
            context=context_to_dict(ctx),
            instance_uuid=instance_uuid,
            host=host,
            action=action,
            volume_id=volume_id,
            port_id=port_id,
            mac=mac,
        )
        answer: dict[str, Any] = self.transport.call(TOPIC, msg, timeout=DEVICE_TIMEOUT)
        return answer

    def device_cast(
        self,
        ctx: RequestContext,
        *,
        instance_uuid: str,
        host: str,
        action: str,
        volume_id: str = "",
        port_id: str = "",
        mac: str = "",
    ) -> None:
        msg = DeviceAction(
            context=context_to_dict(ctx),
            instance_uuid=instance_uuid,
            host=host,
            action=action,
            volume_id=volume_id,
            port_id=port_id,
            mac=mac,
        )
        self.transport.cast(TOPIC, msg)

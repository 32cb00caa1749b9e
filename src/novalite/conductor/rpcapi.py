"""The conductor's messages and its client (``runtime.services.conductor``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from novalite.context import RequestContext
from novalite.messaging.messages import Message, context_to_dict, registry_of
from novalite.messaging.transport import PeerUnavailable, Transport

LOG = logging.getLogger(__name__)

TOPIC = "conductor"


@dataclass(frozen=True)
class ScheduleAndBuildInstances(Message):
    METHOD: ClassVar[str] = "schedule_and_build_instances"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuids: list[str]
    build_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleAndBuildMany(Message):
    """Several create requests an API process stored together, in one message: each item is the
    fields of a ``ScheduleAndBuildInstances`` (``context``, ``instance_uuids``, ``build_args``).
    One message crosses the broker instead of one per request; the conductor schedules each
    request as if it had come alone."""

    METHOD: ClassVar[str] = "schedule_and_build_many"
    VERSION: ClassVar[str] = "1.0"
    requests: list[dict[str, Any]]

    def each(self) -> list[ScheduleAndBuildInstances]:
        return [
            ScheduleAndBuildInstances(
                context=dict(r["context"]),
                instance_uuids=list(r["instance_uuids"]),
                build_args=dict(r.get("build_args") or {}),
            )
            for r in self.requests
        ]


@dataclass(frozen=True)
class BuildInstances(Message):
    """A reschedule: try the next alternate of one instance."""

    METHOD: ClassVar[str] = "build_instances"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    build_args: dict[str, Any] = field(default_factory=dict)
    alternates: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 2
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class MigrateServer(Message):
    """Resize, cold or live migrate the server of one migration record (``services.server_moves``)."""

    METHOD: ClassVar[str] = "migrate_server"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    host: str | None = None
    ignore_hosts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UnshelveInstance(Message):
    """Schedule an offloaded server anew and start it there (``services.shelve``)."""

    METHOD: ClassVar[str] = "unshelve_instance"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str | None = None


@dataclass(frozen=True)
class EvacuateServer(Message):
    """Rebuild the server of one evacuation record on another host (``services.evacuate``)."""

    METHOD: ClassVar[str] = "evacuate_server"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    migration_uuid: str
    host: str | None = None
    force: bool = False
    stop: bool = False


REGISTRY = registry_of(
    [
        ScheduleAndBuildInstances,
        ScheduleAndBuildMany,
        BuildInstances,
        MigrateServer,
        UnshelveInstance,
        EvacuateServer,
    ]
)


class ConductorClient:
    """What the API and the compute agents call; every method is a cast (returns at once)."""

    def __init__(self, transport: Transport):
        self.transport = transport

    def schedule_and_build_instances(
        self, ctx: RequestContext, instance_uuids: list[str], build_args: dict[str, Any] | None = None
    ) -> None:
        """While the engine process restarts (``PeerUnavailable``) the request is still accepted:
        its instances wait in BUILD/scheduling, where the next engine's recovery finds them and
        schedules them (``compute.recovery``). Unless the build needs what only this message
        carries (volumes to attach, files to inject): then the caller gets the 503."""
        (refused,) = self.schedule_and_build_many([(ctx, list(instance_uuids), dict(build_args or {}))])
        if refused is not None:
            raise refused

    def schedule_and_build_many(
        self, requests: list[tuple[RequestContext, list[str], dict[str, Any]]]
    ) -> list[Exception | None]:
        """Hand create requests over in one message (``ScheduleAndBuildMany``; one request alone
        goes as ``ScheduleAndBuildInstances``). One outcome per request: None once handed over,
        or, while the engine process restarts, the ``PeerUnavailable`` for a request recovery
        cannot build without this message (see ``schedule_and_build_instances``)."""
        items: list[dict[str, Any]] = [
            {"context": context_to_dict(ctx), "instance_uuids": list(uuids), "build_args": dict(args)}
            for ctx, uuids, args in requests
        ]
        msg: Message = (
            ScheduleAndBuildInstances(**items[0]) if len(items) == 1 else ScheduleAndBuildMany(requests=items)
        )
        try:
            self.transport.cast(TOPIC, msg)
        except PeerUnavailable as exc:
            outcomes: list[Exception | None] = []
            for item in items:
                if recoverable_without(item["build_args"]):
                    LOG.warning("the engine is restarting: %s wait for its recovery", item["instance_uuids"])
                    outcomes.append(None)
                else:
                    outcomes.append(exc)
            return outcomes
        return [None] * len(items)

    def build_instances(
        self,
        ctx: RequestContext,
        *,
        instance_uuid: str,
        build_args: dict[str, Any],
        alternates: list[dict[str, Any]],
        attempt: int,
        failures: list[dict[str, str]],
    ) -> None:
        self.transport.cast(
            TOPIC,
            BuildInstances(
                context=context_to_dict(ctx),
                instance_uuid=instance_uuid,
                build_args=build_args,
                alternates=alternates,
                attempt=attempt,
                failures=failures,
            ),
        )

    def migrate_server(
        self, ctx: RequestContext, *, migration_uuid: str, host: str | None, ignore_hosts: list[str]
    ) -> None:
        self.transport.cast(
            TOPIC,
            MigrateServer(
                context=context_to_dict(ctx),
                migration_uuid=migration_uuid,
                host=host,
                ignore_hosts=ignore_hosts,
            ),
        )

    def evacuate_server(
        self, ctx: RequestContext, *, migration_uuid: str, host: str | None, force: bool, stop: bool
    ) -> None:
        msg = EvacuateServer(
            context=context_to_dict(ctx), migration_uuid=migration_uuid, host=host, force=force, stop=stop
        )
        self.transport.cast(TOPIC, msg)

    def unshelve_instance(self, ctx: RequestContext, *, instance_uuid: str, host: str | None) -> None:
        self.transport.cast(
            TOPIC, UnshelveInstance(context=context_to_dict(ctx), instance_uuid=instance_uuid, host=host)
        )


def recoverable_without(build_args: dict[str, Any]) -> bool:
    """Whether recovery can build the instances without ``build_args`` (it reads only the
    database): no volume to attach, no file to inject. (The admin password is not re-injected.)"""
    bdms = build_args.get("block_device_mapping") or []
    volumes = any(isinstance(b, dict) and b.get("destination_type") == "volume" for b in bdms)
    return not volumes and not build_args.get("injected_files")

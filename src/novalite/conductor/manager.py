"""The conductor: schedule a request's instances, hand each to its compute agent, reschedule
failed builds onto alternates, and bury what cannot be placed (see README.md).

Errors never escape to the client (it already has its 202): they end as ERROR instances
with a fault and an action event.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session

from novalite.batching import CastBatcher
from novalite.compute import actions
from novalite.compute.rpcapi import ComputeClient
from novalite.conductor import periodic
from novalite.conductor.rpcapi import (
    BuildInstances,
    EvacuateServer,
    MigrateServer,
    ScheduleAndBuildInstances,
    ScheduleAndBuildMany,
    UnshelveInstance,
)
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, RequestSpec
from novalite.db.models.placement import Allocation
from novalite.domain.request_spec import RequestSpecDoc, RequestSpecVersionError
from novalite.domain.states import TaskState, VmState
from novalite.messaging.messages import Message, context_from_dict, context_to_dict
from novalite.placement import allocations
from novalite.scheduler.service import HostChoice, Outcome, ScheduleRequest, SchedulerService, Unplaced
from novalite.services import evacuate, server_moves, shelve

LOG = logging.getLogger(__name__)
BURY_EVENT = "conductor_schedule_and_build_instances"
# instances still waiting for a first claim: alive, scheduling, on no host, holding no allocation.
# A request that arrives twice (an engine's recovery hands over what a create also cast to it)
# finds its instances claimed the second time and leaves them to the first.
_LIVE_SPECS = (
    select(RequestSpec.instance_uuid, RequestSpec.spec)
    .join(Instance, Instance.uuid == RequestSpec.instance_uuid)
    .where(
        RequestSpec.instance_uuid.in_(bindparam("uuids", expanding=True)),
        Instance.deleted.is_(False),
        Instance.task_state == TaskState.SCHEDULING,
        Instance.host.is_(None),
        ~exists().where(Allocation.consumer_id == Instance.uuid),
    )
)


class ConductorManager:
    def __init__(
        self, *, db: Database, scheduler: SchedulerService, compute: ComputeClient, max_attempts: int
    ):
        self.db, self.scheduler, self.compute = db, scheduler, compute
        self.max_attempts = max_attempts
        self.batcher: CastBatcher[ScheduleAndBuildInstances] = CastBatcher(
            self.schedule_batch, name="conductor-batcher"
        )
        self.periodic: Callable[[], None] | None = None

    def handle(self, _topic: str, msg: Message) -> None:
        """The consumer's handler: first builds go to the batcher, reschedules run here."""
        if isinstance(msg, ScheduleAndBuildInstances):
            self.batcher.submit(msg)
        elif isinstance(msg, ScheduleAndBuildMany):
            for one in msg.each():
                self.batcher.submit(one)
        elif isinstance(msg, BuildInstances):
            self.build_instances(msg)
        elif isinstance(msg, MigrateServer):
            self.migrate_server(msg)
        elif isinstance(msg, UnshelveInstance):
            self.unshelve_instance(msg)
        elif isinstance(msg, EvacuateServer):
            self.evacuate_server(msg)

    def start(self) -> None:
        self.batcher.start()
        self.periodic = periodic.start(
            self.db, self.scheduler.settings, self.compute, self.schedule_and_build_instances_of
        )

    def stop(self) -> None:
        if self.periodic is not None:
            self.periodic()
            self.periodic = None
        self.batcher.stop()

    # --- moves (resize, cold and live migration) and unshelve ---------------------------------
    def migrate_server(self, msg: MigrateServer) -> None:
        """Source allocation to the migration, claim a destination for the instance, finish the
        move there; any failure puts the allocations back and ends the migration in ``error``."""
        start = self.db.write(lambda s: server_moves.start_move(s, msg.migration_uuid))
        if start is None:
            return
        try:
            spec = start.spec
            if msg.host:
                spec = dataclasses.replace(spec, requested_host=msg.host, availability_zone=None)
            hosts = self.scheduler.select_destinations(
                spec,
                [start.instance_uuid],
                project_id=start.project_id,
                user_id=start.user_id,
                ignore_hosts=msg.ignore_hosts,
            )
            dest = hosts[start.instance_uuid][0]
        except Exception as exc:  # NoValidHost or anything else: the server stays where it was
            LOG.info("moving %s failed: %s", start.instance_uuid, exc)
            reason = getattr(exc, "message", None) or str(exc)
            self.db.write(lambda s: server_moves.fail_move(s, msg.migration_uuid, reason))
            return
        if start.source_host is None:  # nothing to leave: recorded on the destination at once
            self.db.write(
                lambda s: server_moves.finish_move(s, msg.migration_uuid, host=dest.host, node=dest.node)
            )
            return
        self.compute.resize_instance(
            context_from_dict(msg.context),
            migration_uuid=msg.migration_uuid,
            host=start.source_host,
            dest_host=dest.host,
            dest_node=dest.node,
        )

    def evacuate_server(self, msg: EvacuateServer) -> None:
        """Source allocation to the migration, a destination claimed for the instance (any host
        but the source; a given host is the scheduler's only candidate, or forced past its
        filters below 2.68), then the destination's agent rebuilds the guest."""
        start = self.db.write(lambda s: evacuate.start(s, msg.migration_uuid))
        if start is None:
            return
        try:
            spec = start.spec
            if msg.host and msg.force:
                spec = dataclasses.replace(spec, force_hosts=(msg.host,), availability_zone=None)
            elif msg.host:
                spec = dataclasses.replace(spec, requested_host=msg.host, availability_zone=None)
            hosts = self.scheduler.select_destinations(
                spec,
                [start.instance_uuid],
                project_id=start.project_id,
                user_id=start.user_id,
                ignore_hosts=[start.source_host],
            )
            dest = hosts[start.instance_uuid][0]
        except Exception as exc:  # NoValidHost or anything else: the server goes to ERROR
            LOG.info("evacuating %s failed: %s", start.instance_uuid, exc)
            reason = getattr(exc, "message", None) or str(exc)
            self.db.write(lambda s: evacuate.fail(s, msg.migration_uuid, reason, scheduling=True))
            return
        self.compute.rebuild_evacuated(
            context_from_dict(msg.context),
            migration_uuid=msg.migration_uuid,
            instance_uuid=start.instance_uuid,
            host=dest.host,
            node=dest.node,
            stop=msg.stop,
        )

    def unshelve_instance(self, msg: UnshelveInstance) -> None:
        """Schedule an offloaded server anew; NoValidHost leaves it SHELVED_OFFLOADED (§4.5)."""
        spec = self.db.write(lambda s: shelve.unshelve_spec(s, msg.instance_uuid))
        if spec is None:
            return
        if msg.host:
            spec = dataclasses.replace(spec, requested_host=msg.host)
        try:
            hosts = self.scheduler.select_destinations(
                spec, [msg.instance_uuid], project_id=spec.project_id, user_id=spec.user_id
            )
            dest = hosts[msg.instance_uuid][0]
        except Exception as exc:
            LOG.info("unshelving %s failed: %s", msg.instance_uuid, exc)
            reason = getattr(exc, "message", None) or str(exc)
            self.db.write(lambda s: shelve.unshelve_failed(s, msg.instance_uuid, reason))
            return
        self.compute.unshelve_on_host(
            context_from_dict(msg.context), instance_uuid=msg.instance_uuid, host=dest.host, node=dest.node
        )

    # --- first build ----------------------------------------------------------------------
    def schedule_and_build_instances(
        self, ctx: RequestContext, instance_uuids: Sequence[str], build_args: dict[str, Any]
    ) -> None:
        """Schedule one request now (in this thread)."""
        self.schedule_batch(
            [
                ScheduleAndBuildInstances(
                    context=context_to_dict(ctx), instance_uuids=list(instance_uuids), build_args=build_args
                )
            ]
        )

    def schedule_and_build_instances_of(self, ctx: RequestContext, instance_uuids: list[str]) -> None:
        """Schedule instances taken back from a down host (their build arguments were lost with
        the build message: the instance rows say the rest)."""
        self.schedule_and_build_instances(ctx, instance_uuids, {})

    def schedule_batch(self, msgs: Sequence[ScheduleAndBuildInstances]) -> None:
        """Schedule several requests together (one read per distinct query, one claim transaction);
        each request still succeeds or is buried on its own."""
        docs = self._live_docs([u for m in msgs for u in m.instance_uuids])
        work: list[tuple[ScheduleAndBuildInstances, list[str], RequestSpecDoc]] = []
        for m in msgs:
            # the same instance twice in one batch: its first request schedules it
            mine = {u: docs.pop(u) for u in m.instance_uuids if u in docs}
            uuids = list(mine)
            spec = self._request_spec(uuids, mine) if uuids else None
            if spec is not None:
                work.append((m, uuids, spec))
        if not work:
            return
        requests = [
            ScheduleRequest(spec, tuple(uuids), spec.project_id, spec.user_id) for _m, uuids, spec in work
        ]
        try:
            outcomes: list[Outcome] = self.scheduler.select_batch(requests)
        except Exception as exc:  # the scheduler itself failed: nobody of this batch gets a host
            LOG.exception("scheduling a batch of %d requests failed", len(work))
            outcomes = [Unplaced(str(exc))] * len(work)
        # the batch's builds go out in one confirm window (transport.batch) when the loop ends
        with self.compute.transport.batch():
            self._hand_out(work, outcomes)

    def _hand_out(
        self, work: list[tuple[ScheduleAndBuildInstances, list[str], RequestSpecDoc]], outcomes: list[Outcome]
    ) -> None:
        for (msg, uuids, spec), outcome in zip(work, outcomes, strict=True):
            if isinstance(outcome, Unplaced):
                LOG.info("scheduling %s failed: %s", uuids, outcome.message)
                self.bury(uuids, outcome.message, outcome.message)
                continue
            ctx = context_from_dict(msg.context)
            for uuid in uuids:
                dests = outcome.hosts.get(uuid)
                if dests:
                    args = {**msg.build_args, "instance_group": spec.instance_group}
                    self._cast_build(ctx, uuid, dests[0], dests[1:], args, attempt=1, failures=[])

    def _live_docs(self, instance_uuids: Sequence[str]) -> dict[str, Any]:
        """The stored RequestSpec documents of the instances not deleted meanwhile."""
        with self.db.reader() as s:
            rows = s.connection().execute(_LIVE_SPECS, {"uuids": list(instance_uuids)})
            return {u: doc for u, doc in rows}

    def _request_spec(self, uuids: list[str], docs: dict[str, Any]) -> RequestSpecDoc | None:
        """The request's RequestSpec: its first live instance's (the create writes the same spec
        for each instance but the uuid). One this release cannot read (a newer major version, or
        a document that does not parse) buries that request's instances with the reason, and
        only them: None."""
        try:
            return RequestSpecDoc.from_doc(docs[uuids[0]] or {})
        except RequestSpecVersionError as exc:
            reason = str(exc)
        except Exception as exc:  # a malformed document must not stop the rest of the batch
            reason = f"RequestSpec of {uuids[0]} could not be read: {type(exc).__name__}: {exc}"
        LOG.error("RequestSpec of %s: %s", uuids[0], reason)
        self.bury(uuids, reason, reason)
        return None

    def _cast_build(
        self,
        ctx: RequestContext,
        uuid: str,
        dest: HostChoice,
        alternates: Sequence[HostChoice],
        build_args: dict[str, Any],
        *,
        attempt: int,
        failures: list[dict[str, str]],
    ) -> None:
        self.compute.build_and_run_instance(
            ctx,
            instance_uuid=uuid,
            host=dest.host,
            node=dest.node,
            build_args=build_args,
            alternates=[a.to_dict() for a in alternates],
            attempt=attempt,
            failures=failures,
        )

    # --- reschedule -----------------------------------------------------------------------
    def build_instances(self, msg: BuildInstances) -> None:
        """Claim the next alternate and build there; exhausted -> ERROR naming every host's failure."""
        ctx = context_from_dict(msg.context)
        alternates = [HostChoice.from_dict(a) for a in msg.alternates]
        if msg.attempt <= self.max_attempts:
            try:
                outcome = self.db.write(lambda s: _take_alternate(s, msg.instance_uuid, alternates))
            except Exception as exc:  # never leave the instance in BUILD: it ends in ERROR with why
                LOG.exception("rescheduling %s failed", msg.instance_uuid)
                failures = [*msg.failures, {"host": "(conductor)", "reason": f"{type(exc).__name__}: {exc}"}]
                self.bury(
                    [msg.instance_uuid],
                    f"Rescheduling instance {msg.instance_uuid} failed: {type(exc).__name__}: {exc}",
                    _failure_details(failures),
                    event=None,
                )
                return
            if outcome is None:  # deleted (or moved on) meanwhile: nothing to build
                return
            chosen, rest = outcome
            if chosen is not None:
                self._cast_build(
                    ctx,
                    msg.instance_uuid,
                    chosen,
                    rest,
                    msg.build_args,
                    attempt=msg.attempt,
                    failures=list(msg.failures),
                )
                return
        self.bury(
            [msg.instance_uuid],
            _retries_message(msg, self.max_attempts),
            _failure_details(msg.failures),
            event=None,
        )

    # --- burial ---------------------------------------------------------------------------
    def bury(
        self, instance_uuids: Sequence[str], message: str, details: str, *, event: str | None = BURY_EVENT
    ) -> None:
        """ERROR + fault (code 500) + failed action event for every live instance; claims released."""
        self.db.write(lambda s: self._bury(s, instance_uuids, message, details, event))

    @staticmethod
    def _bury(
        s: Session, instance_uuids: Sequence[str], message: str, details: str, event: str | None
    ) -> None:
        rows = list(s.scalars(select(Instance).where(Instance.uuid.in_(list(instance_uuids)))))
        for row in rows:
            allocations.release(s, row.uuid)
            if row.deleted:
                continue
            row.vm_state, row.task_state, row.host, row.node = VmState.ERROR, None, None, None
            row.updated_at = utcnow()
            actions.add_fault(s, row.uuid, message=message, details=details)
            action = actions.find_action(
                s, row.uuid, "create", user_id=row.user_id, project_id=row.project_id
            )
            if event is not None:
                actions.record_event(
                    s, action, event, ok=False, host=None, traceback=details, details=message
                )
            else:
                actions.mark_error(s, action)


def _owner(s: Session, uuid: str) -> tuple[str, str] | None:
    row = s.execute(
        select(Instance.project_id, Instance.user_id).where(
            Instance.uuid == uuid, Instance.deleted.is_(False), Instance.task_state == TaskState.SCHEDULING
        )
    ).first()
    return (row[0], row[1]) if row else None


def _take_alternate(
    s: Session, uuid: str, alternates: list[HostChoice]
) -> tuple[HostChoice | None, list[HostChoice]] | None:
    """Claim the first alternate that still fits (and record its zone); None when the instance
    is no longer waiting for a host (its allocations, if any, are released)."""
    owner = _owner(s, uuid)
    if owner is None:
        allocations.release(s, uuid)
        return None
    chosen, rest = _claim_alternate(s, uuid, owner, alternates)
    if chosen is not None:
        s.execute(
            update(Instance)
            .where(Instance.uuid == uuid)
            .values(availability_zone=chosen.availability_zone)
            .execution_options(synchronize_session=False)
        )
    return chosen, rest


def _claim_alternate(
    s: Session, uuid: str, owner: tuple[str, str], alternates: list[HostChoice]
) -> tuple[HostChoice | None, list[HostChoice]]:
    consumer = allocations.ConsumerRef(uuid, owner[0], owner[1])
    for i, dest in enumerate(alternates):
        try:
            allocations.claim(s, consumer, dest.allocation_request)
        except allocations.AllocationConflict as exc:
            LOG.info("alternate %s for %s is gone (%s)", dest.host, uuid, exc)
            continue
        return dest, alternates[i + 1 :]
    return None, []


def _retries_message(msg: BuildInstances, max_attempts: int) -> str:
    hosts = ", ".join(f["host"] for f in msg.failures)
    last = msg.failures[-1]["reason"] if msg.failures else ""
    if msg.attempt > max_attempts:
        head = (
            f"Exceeded maximum number of retries. Exceeded max scheduling attempts {max_attempts} "
            f"for instance {msg.instance_uuid}."
        )
    else:
        head = f"Exhausted all hosts available for retrying build failures for instance {msg.instance_uuid}."
    return f"{head} Hosts tried: {hosts}. Last exception: {last}"


def _failure_details(failures: list[dict[str, str]]) -> str:
    return "\n".join(f"{f['host']}: {f['reason']}" for f in failures)

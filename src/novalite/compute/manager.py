"""The compute agent: one per simulated host; builds and deletes that host's instances.

Builds run in the shared worker pool (``Settings.max_concurrent_builds``); no database
transaction is open while the driver works. Outcomes (§4.2):

* success -> ACTIVE; the node's failed-build counter resets;
* ``Reschedule`` -> host/node cleared, task_state scheduling, own allocation released, the
  conductor is asked (``build_instances``) to try the next alternate;
* ``Abort`` or any other error -> ERROR with a fault, allocation released;
* ``Vanished`` (deleted meanwhile) -> guest destroyed, resources released, no fault.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from novalite import notifications
from novalite.compute import (
    actions,
    build,
    build_resources,
    cleanup,
    devices,
    evacuated,
    guest_actions,
    live_migration,
    live_migration_rpc,
    moves,
    power_actions,
    resource_tracker,
    shelving,
    snapshots,
)
from novalite.compute.build import Abort, Build, Reschedule, Vanished
from novalite.compute.consoles import GetConsoleEndpoint, console_endpoint
from novalite.compute.guest_rpc import RebuildInstance, RescueInstance, TriggerCrashDump, UnrescueInstance
from novalite.compute.guest_spec import guest_spec
from novalite.compute.rpcapi import (
    BuildAndRunInstance,
    DeviceAction,
    FinishResize,
    GetConsoleOutput,
    GetDiagnostics,
    PowerAction,
    RebuildEvacuated,
    ResizeInstance,
    ShelveInstance,
    SnapshotInstance,
    TerminateInstance,
    UnshelveOnHost,
)
from novalite.conductor.rpcapi import ConductorClient
from novalite.db import group_commit
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.placement import ComputeNode
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.messaging.messages import context_from_dict
from novalite.services import migrations
from novalite.virt.driver import BuildAbort, Driver, DriverError, GuestSpec, ServiceStopping

LOG = logging.getLogger(__name__)
TERMINATE_EVENT = "compute_terminate_instance"
_TERMINATING = select(
    Instance.id,
    Instance.uuid,
    Instance.deleted,
    Instance.node,
    Instance.flavor,
    Instance.requested_networks,
    Instance.user_id,
    Instance.project_id,
).where(Instance.uuid == bindparam("instance_uuid"))
_UNREAD: Any = object()  # ``ComputeAgent._owns``: the instance's host not read yet
_BUILD_TASK_STATES = {
    None,
    TaskState.SCHEDULING,
    TaskState.NETWORKING,
    TaskState.BLOCK_DEVICE_MAPPING,
    TaskState.SPAWNING,
}


class ComputeAgent:
    def __init__(
        self,
        *,
        host: str,
        node_uuid: str,
        db: Database,
        driver: Driver,
        conductor: ConductorClient,
        max_attempts: int,
    ):
        self.host, self.node_uuid = host, node_uuid
        self.db, self.driver, self.conductor = db, driver, conductor
        self.max_attempts = max_attempts

    # --- build -------------------------------------------------------------------------
    def build_and_run_instance(self, msg: BuildAndRunInstance) -> None:
        b = Build(
            ctx=context_from_dict(msg.context),
            instance_uuid=msg.instance_uuid,
            host=self.host,
            node=msg.node,
            node_uuid=self.node_uuid,
            build_args=dict(msg.build_args),
            attempt=msg.attempt,
            guest_details=self.driver.capabilities().guest_details,
        )
        guest: GuestSpec | None = None
        try:
            guest = build.accept(self.db, b, build_resources.allocate_networks)
            notifications.instance_in(self.db, "instance.create.start", b.instance_uuid, host=self.host)
            if build_resources.needs_block_devices(b):
                build_resources.prepare_block_devices(self.db, b)
                if b.guest_details:  # a real guest boots from its root volume, with the others attached
                    guest = replace(guest, block_devices=devices.block_devices(self.db, b.instance_uuid))
            try:
                self.driver.spawn(guest)
            except BuildAbort as exc:
                raise Abort(str(exc)) from exc
            except DriverError as exc:
                raise Reschedule(str(exc)) from exc
            build.finish(self.db, b, self.driver.get_info(guest).state)
            notifications.instance_in(self.db, "instance.create.end", b.instance_uuid, host=self.host)
        except ServiceStopping:
            LOG.info("build of %s abandoned: the service is stopping", b.instance_uuid)
        except Vanished:
            self._vanished(b, guest)
        except Reschedule as exc:
            self._destroy_quietly(guest)
            self._reschedule(b, msg, exc)
        except Abort as exc:
            self._destroy_quietly(guest)
            self._fail(b, exc.reason, traceback.format_exc())
        except Exception as exc:  # an unexpected error still ends in ERROR, never stuck in BUILD
            LOG.exception("build of %s on %s failed", b.instance_uuid, self.host)
            self._destroy_quietly(guest)
            self._fail(b, f"Build of instance {b.instance_uuid} aborted: {exc}", traceback.format_exc())

    def _destroy_quietly(self, guest: GuestSpec | None) -> None:
        if guest is None:
            return
        try:
            self.driver.destroy(guest)
        except DriverError:
            LOG.warning("could not clean up guest %s on %s", guest.uuid, self.host)

    def _vanished(self, b: Build, guest: GuestSpec | None) -> None:
        self._destroy_quietly(guest)

        def give_back(s: Session) -> None:  # run again from scratch by db.write after a deadlock
            row = s.scalars(select(Instance).where(Instance.uuid == b.instance_uuid)).first()
            if row is not None and row.deleted:
                cleanup.release_resources(s, b.instance_uuid, row.requested_networks)
            if b.event_id is not None:
                actions.finish_event(
                    s, b.event_id, ok=False, details="Instance was deleted during the build."
                )

        self.db.write(give_back)

    def _reschedule(self, b: Build, msg: BuildAndRunInstance, exc: Reschedule) -> None:
        if self.max_attempts <= 1:
            self._fail(b, exc.reason, traceback.format_exc())
            return
        tb = traceback.format_exc()
        notifications.build_failed(self.db, b.instance_uuid, exc.reason, host=self.host)  # as Nova: each try

        def give_back(s: Session) -> bool:  # run again from scratch by db.write after a deadlock
            if b.event_id is not None:
                actions.finish_event(s, b.event_id, ok=False, traceback=tb, details=exc.reason)
            if not exc.by_policy:
                resource_tracker.record_build_result(s, self.node_uuid, ok=False)
            if not self._owns(s, b.instance_uuid):  # taken from this host meanwhile: not ours to free
                return False
            cleanup.release_ports(s, b.instance_uuid, b.requested_networks)
            cleanup.allocations.release(s, b.instance_uuid)
            current = _current_task(s, b.instance_uuid)
            if current not in _BUILD_TASK_STATES:  # being deleted: the delete finishes the job
                return False
            try:
                build.set_task_state(
                    s, b.instance_uuid, current, TaskState.SCHEDULING, host=None, node=None, network_info=[]
                )
            except Vanished:
                return False
            return True

        if not self.db.write(give_back):
            return
        failures = [*msg.failures, {"host": self.host, "reason": exc.reason}]
        self.conductor.build_instances(
            b.ctx,
            instance_uuid=b.instance_uuid,
            build_args=b.build_args,
            alternates=list(msg.alternates),
            attempt=msg.attempt + 1,
            failures=failures,
        )

    def _fail(self, b: Build, reason: str, tb: str) -> None:
        self.db.write(lambda s: self._record_failure(s, b, reason, tb))
        notifications.build_failed(self.db, b.instance_uuid, reason, host=self.host)

    def _record_failure(self, s: Session, b: Build, reason: str, tb: str) -> None:
        if b.event_id is not None:
            actions.finish_event(s, b.event_id, ok=False, traceback=tb, details=reason)
        resource_tracker.record_build_result(s, self.node_uuid, ok=False)
        row = s.scalars(select(Instance).where(Instance.uuid == b.instance_uuid)).first()
        if row is None:
            return
        if not row.deleted and not self._owns(s, b.instance_uuid, row.host):
            return  # taken from this host meanwhile (down-host recovery): its new host's now
        cleanup.release_resources(s, b.instance_uuid, row.requested_networks)
        if row.deleted:
            return
        row.vm_state, row.task_state, row.host, row.node = VmState.ERROR, None, None, None
        row.updated_at = utcnow()
        actions.add_fault(s, b.instance_uuid, message=reason, details=tb, host=self.host)

    def _owns(self, s: Session, uuid: str, host: Any = _UNREAD) -> bool:
        """Whether the instance is still this host's to give back: placed here, or not placed yet
        with its claim on this node. A stale build message (the instance rescheduled elsewhere,
        or taken back from this host while it was down) must not release another host's claim."""
        if host is _UNREAD:
            host = s.execute(select(Instance.host).where(Instance.uuid == uuid)).scalar()
        if host is not None:
            return bool(host == self.host)
        return resource_tracker.instance_claim(s, uuid, self.node_uuid)

    # --- delete ------------------------------------------------------------------------
    def terminate_instance(self, msg: TerminateInstance) -> None:
        ctx = context_from_dict(msg.context)
        uuid = msg.instance_uuid
        with self.db.reader() as s:
            conn = s.connection()
            row = conn.execute(_TERMINATING, {"instance_uuid": uuid}).first()
            if row is None or row.deleted:
                return
            metadata = {k: v for k, v in build._METADATA.all(conn, {"instance_uuid": uuid})}
            has_volumes = cleanup.has_volumes(s, uuid)
        guest = guest_spec(
            row,
            self.host,
            metadata=metadata,
        )
        notifications.instance_in(self.db, "instance.delete.start", uuid, host=self.host)
        try:
            self.driver.destroy(guest)
        except DriverError as exc:
            self._delete_failed(ctx.request_id, row, str(exc), traceback.format_exc())
            return

        def deleted(s: Session) -> None:
            action = actions.find_action(
                s, uuid, "delete", user_id=ctx.user_id, project_id=ctx.project_id, request_id=ctx.request_id
            )
            cleanup.release_resources(s, uuid, row.requested_networks)
            migrations.release_for_deleted(s, uuid)  # a move's source allocation, if any
            if cleanup.mark_deleted(s, uuid):
                actions.record_event(s, action, TERMINATE_EVENT, ok=True, host=self.host)

        # deletes finishing together share one transaction (each retried alone if it fails);
        # volumes have storage outside the database: such an instance gets its own transaction
        if has_volumes:
            self.db.write(deleted)
        else:
            group_commit.group(self.db, build.GROUP).run(self.db, deleted)
        notifications.instance_in(self.db, "instance.delete.end", uuid, host=self.host)

    def _delete_failed(self, request_id: str, row: Any, reason: str, tb: str) -> None:
        with self.db.session() as s:
            action = actions.find_action(
                s, row.uuid, "delete", user_id=row.user_id, project_id=row.project_id, request_id=request_id
            )
            actions.record_event(
                s, action, TERMINATE_EVENT, ok=False, host=self.host, traceback=tb, details=reason
            )
            current = s.scalars(select(Instance).where(Instance.uuid == row.uuid)).first()
            if current is None or current.deleted:
                return
            current.vm_state, current.task_state, current.updated_at = VmState.ERROR, None, utcnow()
            actions.add_fault(s, row.uuid, message=reason, details=tb, host=self.host)


def get_diagnostics(agent: ComputeAgent, msg: GetDiagnostics) -> dict[str, Any]:
    """The guest's power state (the database's: the simulated actions record it there) and,
    when it runs and the driver can tell, the driver's diagnostics."""
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if inst is None or inst.deleted:
            return {"power_state": None, "diagnostics": None}
        guest = guest_spec(
            inst,
            agent.host,
        )
        power, config_drive = int(inst.power_state), bool(inst.config_drive)
    report = getattr(agent.driver, "diagnostics", None)  # optional: not every driver has it
    if power != PowerState.RUNNING or report is None:
        return {"power_state": power, "diagnostics": None}
    found = dict(report(guest))
    if found.get("config_drive") is None:  # the instance's, when the driver cannot tell
        found["config_drive"] = config_drive
    return {"power_state": power, "diagnostics": found}


def get_console_output(agent: ComputeAgent, msg: GetConsoleOutput) -> dict[str, Any]:
    """The guest's serial console from the driver (None: the driver keeps no console log)."""
    read = getattr(agent.driver, "console_output", None)  # optional: the QEMU driver has it
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if read is None or inst is None or inst.deleted:
            return {"output": None}
        guest = guest_spec(
            inst,
            agent.host,
            flavor={},
        )
    return {"output": read(guest, msg.length)}


def _current_task(s: Session, uuid: str) -> str | None:
    return s.execute(select(Instance.task_state).where(Instance.uuid == uuid)).scalar()


def node_uuids(db: Database, hosts: list[str]) -> dict[str, str]:
    """host -> its compute node uuid (simulated hosts have one node each)."""
    with db.reader() as s:
        return {
            h: u
            for h, u in s.execute(
                select(ComputeNode.host, ComputeNode.uuid).where(
                    ComputeNode.host.in_(hosts), ComputeNode.deleted.is_(False)
                )
            )
        }


def dispatch(agents: dict[str, ComputeAgent]) -> Any:
    """The consumer's handler: route each message to the agent of the host it names."""

    def handle(_topic: str, msg: Any) -> Any:
        agent = agents.get(msg.host)
        if agent is None:
            LOG.error("no compute agent for host %s here; dropping %s", msg.host, msg.METHOD)
            return None
        if isinstance(msg, BuildAndRunInstance):
            agent.build_and_run_instance(msg)
        elif isinstance(msg, TerminateInstance):
            agent.terminate_instance(msg)
        elif isinstance(msg, PowerAction):
            power_actions.power_action(agent, msg)
        elif isinstance(msg, GetDiagnostics):
            return get_diagnostics(agent, msg)
        elif isinstance(msg, GetConsoleOutput):
            return get_console_output(agent, msg)
        elif isinstance(msg, SnapshotInstance):
            return snapshots.snapshot_instance(agent, msg.instance_uuid, msg.image_id)
        elif isinstance(msg, DeviceAction):
            return devices.device_action(agent, msg)
        elif isinstance(msg, GetConsoleEndpoint):
            return console_endpoint(agent, msg)
        elif isinstance(msg, ResizeInstance):
            moves.resize_instance(agent, msg)
        elif isinstance(msg, FinishResize):
            moves.finish_resize(agent, msg)
        elif isinstance(msg, ShelveInstance):
            shelving.shelve_instance(agent, msg)
        elif isinstance(msg, UnshelveOnHost):
            shelving.unshelve_on_host(agent, msg)
        elif isinstance(msg, RebuildEvacuated):
            evacuated.rebuild_evacuated(agent, msg)
        elif isinstance(msg, RescueInstance):
            guest_actions.rescue_instance(agent, msg)
        elif isinstance(msg, UnrescueInstance):
            guest_actions.unrescue_instance(agent, msg)
        elif isinstance(msg, TriggerCrashDump):
            guest_actions.trigger_crash_dump(agent, msg)
        elif isinstance(msg, RebuildInstance):
            guest_actions.rebuild_instance(agent, msg)
        elif isinstance(msg, live_migration_rpc.PrepareLiveMigration):
            return live_migration.prepare_here(agent, msg)
        elif isinstance(msg, live_migration_rpc.FinishLiveMigration):
            return live_migration.finish_here(agent, msg)
        elif isinstance(msg, live_migration_rpc.LiveMigrationControl):
            live_migration.control_here(agent, msg)
        return None

    return handle

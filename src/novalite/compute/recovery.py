"""What a (re)starting engine does about the work its predecessor lost (Nova's ``_init_instance``).

The database says how far each interrupted build got; recovery continues from there and never
claims a second allocation for an instance that holds one (issue 16, item 4: resubmitting
claimed instances to the scheduler made every claim fail with "consumer already has
allocations" and buried them as "claims lost to concurrent requests" on empty hosts).

    interrupted where                          database shows                    recovery
    ─────────────────────────────────────────  ───────────────────────────────  ─────────────────────────
    on one of this engine's hosts              BUILDING, host set, task          ports released, host
      (networking, block devices, spawning)    networking / block_device_map /   cleared, task scheduling;
                                               spawning, allocation on the node  the allocation is kept
                                                                                 and the build resumes on
                                                                                 that node (below)
      ... with volumes attached or booting     same, plus volume attachments /   ERROR with a fault, every
      from a volume                            is_bfv                            allocation, port and
                                                                                 attachment released
    claimed, the build message lost            BUILDING, scheduling, no host,    build cast to the node
      (memory:// only)                         allocation held                   that holds the allocation
                                                                                 (reused, never re-claimed)
    not scheduled yet (memory:// only)         BUILDING, scheduling, no host,    handed to the conductor
                                               no allocation                     again, one request per
                                                                                 reservation
    a delete on a host (memory:// only)        task deleting, host set           terminate cast again
    a server deleted during a move whose end   deleted row, migration not over   the migration's allocation
      was lost                                 (it may hold the source's)        released, status error
                                                                                 (confirmed if finished)

The block device mapping and the admin password travel in the build message only; the database
keeps neither. So an instance that boots from a volume (its RequestSpec says so) or has volumes
attached is not rebuilt from a guess: it goes to ERROR with a fault that says why, and everything
it held is released. With RabbitMQ (not ``memory://``) messages not yet consumed are still queued:
only builds that had been accepted by one of this engine's agents are resumed here.

Every write checks the state it read (``build.set_task_state``): a server deleted meanwhile is
left to its delete.

Actions on a QEMU guest left in their task state (stop, reboot, rescue, rebuild ...) are settled
by the host's agent from the guest's power state: ``compute.action_recovery``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from novalite.compute import actions, cleanup
from novalite.compute.build import Vanished, set_task_state
from novalite.compute.rpcapi import ComputeClient
from novalite.conductor.rpcapi import ConductorClient
from novalite.context import RequestContext
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, Migration, RequestSpec
from novalite.db.models.placement import Allocation, ComputeNode, ResourceProvider
from novalite.domain.states import TaskState, VmState
from novalite.services import migrations

LOG = logging.getLogger(__name__)
INTERRUPTED = "Instance build was interrupted by a restart of its compute service."
INTERRUPTED_VOLUMES = (
    "Instance build was interrupted by a restart of its compute service; its block device mapping "
    "was lost with the build request, so the build is not resumed."
)
_BUILD_STEPS = (TaskState.NETWORKING, TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING)


@dataclass
class Report:
    """What one recovery did, by instance uuid."""

    rewound: list[str] = field(default_factory=list)  # accepted builds taken back to "claimed"
    resumed: list[str] = field(default_factory=list)  # build cast to the node holding its allocation
    rescheduled: list[str] = field(default_factory=list)  # handed to the conductor
    failed: list[str] = field(default_factory=list)  # ERROR + fault, everything released
    deletes: list[str] = field(default_factory=list)  # terminate cast again
    moves_released: list[str] = field(default_factory=list)  # deleted servers' moves given up

    def __bool__(self) -> bool:
        return bool(self.resumed or self.rescheduled or self.failed or self.deletes or self.moves_released)


def _ctx(project_id: str, user_id: str) -> RequestContext:
    return RequestContext(user_id=user_id, project_id=project_id, roles=("member",))


def _needs_volumes(s: Session, uuid: str) -> bool:
    """Whether the build needs the block device mapping, which only its lost message carried."""
    if cleanup.has_volumes(s, uuid):
        return True
    spec = s.execute(select(RequestSpec.spec).where(RequestSpec.instance_uuid == uuid)).scalar()
    return isinstance(spec, dict) and bool(spec.get("is_bfv"))


def _fail(s: Session, row: Instance, message: str) -> None:
    cleanup.release_resources(s, row.uuid, row.requested_networks)
    actions.add_fault(s, row.uuid, message=message, host=row.host)
    row.vm_state, row.task_state, row.host, row.node = VmState.ERROR, None, None, None
    row.updated_at = utcnow()


def rewind_interrupted_builds(db: Database, hosts: Sequence[str], report: Report) -> None:
    """Builds accepted on ``hosts`` that died: back to "claimed, waiting for its build" (ports
    released, allocation kept), or ERROR when they need volumes. ``resume_waiting`` then builds
    them on the node of their allocation."""
    if not hosts:
        return

    def rewind(s: Session) -> tuple[list[str], list[str]]:
        rewound, failed = [], []
        rows = s.scalars(
            select(Instance).where(
                Instance.vm_state == VmState.BUILDING,
                Instance.deleted.is_(False),
                Instance.host.in_(list(hosts)),
            )
        ).all()
        for row in rows:
            if row.task_state == TaskState.DELETING:  # deleted during its build: finish_deletes
                continue
            if row.task_state not in _BUILD_STEPS or _needs_volumes(s, row.uuid):
                _fail(s, row, INTERRUPTED_VOLUMES if row.task_state in _BUILD_STEPS else INTERRUPTED)
                failed.append(row.uuid)
                continue
            uuid, task, networks = row.uuid, row.task_state, row.requested_networks
            try:
                set_task_state(s, uuid, task, TaskState.SCHEDULING, host=None, node=None, network_info=[])
            except Vanished:  # deleted (or deleting) meanwhile: the delete finishes it
                continue
            cleanup.release_ports(s, uuid, networks)
            rewound.append(uuid)
        return rewound, failed

    rewound, failed = db.write(rewind)
    report.rewound.extend(rewound)
    report.failed.extend(failed)
    if rewound or failed:
        LOG.warning(
            "%d interrupted builds will resume on their claimed hosts; %d set to ERROR",
            len(rewound),
            len(failed),
        )


@dataclass(frozen=True)
class _Waiting:
    uuid: str
    reservation_id: str
    project_id: str
    user_id: str
    host: str | None  # where its allocation is (None: not claimed)
    node: str | None


def _waiting(s: Session) -> list[_Waiting]:
    rows = s.execute(
        select(Instance.uuid, Instance.reservation_id, Instance.project_id, Instance.user_id)
        .where(
            Instance.vm_state == VmState.BUILDING,
            Instance.task_state == TaskState.SCHEDULING,
            Instance.host.is_(None),
            Instance.deleted.is_(False),
        )
        .order_by(Instance.reservation_id, Instance.launch_index)
    ).all()
    if not rows:
        return []
    claimed = {
        consumer: (host, node)
        for consumer, host, node in s.execute(
            select(Allocation.consumer_id, ComputeNode.host, ComputeNode.hypervisor_hostname)
            .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
            .outerjoin(
                ComputeNode, (ComputeNode.uuid == ResourceProvider.uuid) & ComputeNode.deleted.is_(False)
            )
            .where(Allocation.consumer_id.in_([r[0] for r in rows]))
        )
    }
    out = []
    for uuid, reservation, project_id, user_id in rows:
        host, node = claimed.get(uuid, (None, None))
        out.append(_Waiting(uuid, reservation, project_id, user_id, host, node))
    return out


def resume_waiting(
    db: Database,
    conductor: ConductorClient,
    compute: ComputeClient | None,
    *,
    hosts: Sequence[str] | None,
    report: Report,
) -> None:
    """Every instance waiting for its build: claimed on one of ``hosts`` (None: any) -> built
    there on that claim; claimed elsewhere (or no such node) -> claim released, scheduled again;
    a volume boot -> ERROR; not claimed -> scheduled again."""
    with db.reader() as s:
        waiting = _waiting(s)
    reschedule: dict[str, list[_Waiting]] = {}

    def _local(host: str) -> bool:
        return compute is not None and (hosts is None or host in hosts)

    stale = [w for w in waiting if w.host is not None and (not _local(w.host) or w.node is None)]
    volume_boots: list[str] = []

    def tidy(s: Session) -> None:
        volume_boots.clear()
        for w in waiting:
            if _needs_volumes(s, w.uuid):
                volume_boots.append(w.uuid)
        for w in stale:
            cleanup.allocations.release(s, w.uuid)
        if volume_boots:
            for row in s.scalars(select(Instance).where(Instance.uuid.in_(volume_boots))).all():
                if not row.deleted and row.task_state == TaskState.SCHEDULING and row.host is None:
                    _fail(s, row, INTERRUPTED_VOLUMES)

    if waiting:
        db.write(tidy)
    report.failed.extend(volume_boots)
    for w in waiting:
        if w.uuid in volume_boots:
            continue
        if compute is not None and w.host is not None and w.node is not None and _local(w.host):
            _build_on_claim(compute, w)
            report.resumed.append(w.uuid)
        else:
            reschedule.setdefault(w.reservation_id, []).append(w)
    for members in reschedule.values():
        conductor.schedule_and_build_instances(
            _ctx(members[0].project_id, members[0].user_id), [m.uuid for m in members], {}
        )
        report.rescheduled.extend(m.uuid for m in members)


def finish_deletes(db: Database, compute: ComputeClient, *, hosts: Sequence[str], report: Report) -> None:
    """Deletes of servers on ``hosts`` whose terminate message was lost: cast it again."""
    if not hosts:
        return
    with db.reader() as s:
        rows = s.execute(
            select(Instance.uuid, Instance.host, Instance.project_id, Instance.user_id).where(
                Instance.task_state == TaskState.DELETING,
                Instance.deleted.is_(False),
                Instance.host.in_(list(hosts)),
            )
        ).all()
    for uuid, host, project_id, user_id in rows:
        compute.terminate_instance(_ctx(project_id, user_id), instance_uuid=uuid, host=str(host))
        report.deletes.append(uuid)


def release_deleted_moves(db: Database, report: Report) -> None:
    """Servers deleted during a move whose end was lost with the engine: a migration not over
    still holds its allocation (the source host's) though the server is gone. As the delete of a
    server on a host does (``migrations.release_for_deleted``), it is released and the migration
    ends (``confirmed`` when it had finished, else ``error``)."""

    def release(s: Session) -> list[str]:
        uuids = s.scalars(
            select(Migration.instance_uuid)
            .distinct()
            .outerjoin(Instance, Instance.uuid == Migration.instance_uuid)
            .where(Migration.status.in_(migrations.UNFINISHED), or_(Instance.id.is_(None), Instance.deleted))
        ).all()
        for uuid in uuids:
            migrations.release_for_deleted(s, uuid)
        return list(uuids)

    released = db.write(release)
    report.moves_released.extend(released)


def rewind(db: Database, hosts: Sequence[str]) -> Report:
    """Recovery's first half, before this engine's consumers start (a build they accepted must
    not be taken for an interrupted one): ``rewind_interrupted_builds``."""
    report = Report()
    rewind_interrupted_builds(db, hosts, report)
    return report


def hand_over(
    db: Database,
    conductor: ConductorClient,
    compute: ComputeClient,
    *,
    hosts: Sequence[str],
    messages_lost: bool,
    report: Report,
) -> Report:
    """Recovery's second half, once the consumers serve (casts must reach this engine's own
    queues): builds resumed on their claims or scheduled again, deletes finished.
    ``messages_lost``: the transport kept nothing of the previous engine's queues (``memory://``)."""
    if messages_lost:
        resume_waiting(db, conductor, compute, hosts=hosts, report=report)
        finish_deletes(db, compute, hosts=hosts, report=report)
    else:  # a broker still holds what was not consumed; the rewound builds' messages were
        resume_rewound(db, compute, hosts=hosts, report=report)
    release_deleted_moves(db, report)
    if report:
        LOG.warning(
            "recovery: %d builds resumed on their claimed hosts, %d scheduled again, %d set to ERROR, "
            "%d deletes finished, %d deleted servers' moves released",
            len(report.resumed),
            len(report.rescheduled),
            len(report.failed),
            len(report.deletes),
            len(report.moves_released),
        )
    return report


def resume_rewound(db: Database, compute: ComputeClient, *, hosts: Sequence[str], report: Report) -> None:
    """With a broker: build the rewound instances again on their claims (the other waiting
    instances still have their messages queued)."""
    rewound = set(report.rewound)
    with db.reader() as s:
        waiting = [w for w in _waiting(s) if w.uuid in rewound and w.host in set(hosts) and w.node]
    for w in waiting:
        _build_on_claim(compute, w)
        report.resumed.append(w.uuid)


def _build_on_claim(compute: ComputeClient, w: _Waiting) -> None:
    compute.build_and_run_instance(
        _ctx(w.project_id, w.user_id),
        instance_uuid=w.uuid,
        host=str(w.host),
        node=str(w.node),
        build_args={},
        alternates=[],
        attempt=1,
        failures=[],
    )


def resubmit_waiting(db: Database, conductor: ConductorClient, compute: ComputeClient | None = None) -> int:
    """``resume_waiting`` on every host (``compute`` None: claimed instances are scheduled
    again after their claim is released); returns how many instances were handed on."""
    report = Report()
    resume_waiting(db, conductor, compute, hosts=[] if compute is None else None, report=report)
    return len(report.resumed) + len(report.rescheduled)


# for the conductor's down-host recovery (conductor/down_hosts.py), which treats builds stranded
# on a dead host as this module treats interrupted ones
needs_volumes = _needs_volumes
fail = _fail

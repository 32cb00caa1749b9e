"""The scheduler service: turn RequestSpecs into claimed hosts.

``select_batch`` = read (candidates, host snapshots, group) -> plan (the pure
``runner.select_hosts``) -> commit (claim in placement, in ranked order, every instance of
the request in one transaction: all-or-nothing). Each request's outcome is a value:
``Placed`` (instance uuid -> [chosen, alternates...]) or ``Unplaced`` (nothing claimed; its
reason names how many hosts each filter dropped). ``select_destinations`` is the one-request
form that raises ``NoValidHost`` for an ``Unplaced``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, update
from sqlalchemy.orm import Session

from novalite.config import Settings
from novalite.db.base import Database, savepoint, utcnow
from novalite.db.models.compute import Instance
from novalite.db.precompiled import Precompiled
from novalite.domain.request_spec import RequestSpecDoc
from novalite.domain.zones import DEFAULT_ZONE
from novalite.errors import NovaliteError
from novalite.placement import allocations, candidates
from novalite.placement.providers import DISK_GB, MEMORY_MB, STATUS_DISABLED_TRAIT, VCPU
from novalite.scheduler import filters as filter_registry
from novalite.scheduler import hostdata, runner
from novalite.scheduler import weighers as weigher_registry
from novalite.scheduler.snapshots import HostSnapshot, RequestView, Selection
from novalite.services import zones

LOG = logging.getLogger(__name__)


class NoValidHost(NovaliteError):
    """Scheduling failed; ``message`` is what the instance fault shows."""

    status = 500

    def __init__(self, reason: str = ""):
        super().__init__(_no_valid_host_message(reason), kind="NoValidHost")


def _no_valid_host_message(reason: str) -> str:
    return f"No valid host was found. {reason}".rstrip() if reason else "No valid host was found. "


@dataclass(frozen=True)
class HostChoice:
    """The host chosen for one instance (or one it may go to, as an alternate); JSON-able for
    messages."""

    host: str
    node: str
    compute_node_uuid: str
    allocation_request: dict[str, dict[str, int]] = field(default_factory=dict)
    availability_zone: str = DEFAULT_ZONE

    def to_dict(self) -> dict[str, Any]:
        """What ``asdict`` gives, written out (its recursive deep copy is costly: bench/README.md,
        "Costs behind the code's choices")."""
        return {
            "host": self.host,
            "node": self.node,
            "compute_node_uuid": self.compute_node_uuid,
            "allocation_request": {p: dict(r) for p, r in self.allocation_request.items()},
            "availability_zone": self.availability_zone,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostChoice:
        return cls(
            **{
                k: d[k]
                for k in ("host", "node", "compute_node_uuid", "allocation_request", "availability_zone")
                if k in d
            }
        )

    @classmethod
    def of(cls, h: HostSnapshot) -> HostChoice:
        return cls(
            host=h.host,
            node=h.node,
            compute_node_uuid=h.uuid,
            allocation_request={k: dict(v) for k, v in h.allocation_request.items()},
            availability_zone=h.availability_zone,
        )


@dataclass(frozen=True)
class ScheduleRequest:
    """One request to place: its first RequestSpec, its instances and their owner."""

    spec: RequestSpecDoc
    instance_uuids: tuple[str, ...]
    project_id: str
    user_id: str
    ignore_hosts: tuple[str, ...] = ()  # a move's source host


@dataclass(frozen=True, slots=True)
class Placed:
    """A request whose live instances are claimed: instance uuid -> [chosen, alternates...]
    (instances deleted meanwhile are left out)."""

    hosts: dict[str, list[HostChoice]]


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A request that got no hosts (nothing of it claimed); ``message`` is what the instance
    fault shows."""

    reason: str = ""

    @property
    def message(self) -> str:
        return _no_valid_host_message(self.reason)

    def error(self) -> NoValidHost:
        return NoValidHost(self.reason)


Outcome = Placed | Unplaced


@dataclass(frozen=True)
class Plan:
    view: RequestView
    selection: Selection
    query: candidates.ResourceQuery
    found: int  # candidates placement returned


def parse_multipliers(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out


def request_view(spec: RequestSpecDoc, instance_uuids: Sequence[str]) -> RequestView:
    """The scheduler's view of the first RequestSpec of a request."""
    return RequestView(
        instance_uuids=tuple(instance_uuids),
        flavor=spec.flavor,
        project_id=spec.project_id,
        image_properties=spec.image.properties if spec.image is not None else {},
        is_bfv=spec.is_bfv,
        availability_zone=spec.availability_zone,
        force_hosts=spec.force_hosts,
        force_nodes=spec.force_nodes,
        requested_host=spec.requested_host,
        requested_node=spec.requested_node,
        hints=spec.scheduler_hints,
    )


def resources_for(view: RequestView) -> dict[str, int]:
    """The placement query of the unnumbered group (DISK_GB omitted when 0)."""
    res = {VCPU: view.flavor.vcpus, MEMORY_MB: view.flavor.memory_mb}
    disk = view.flavor.disk_gb(view.is_bfv)
    if disk:
        res[DISK_GB] = disk
    return res


class SchedulerService:
    """Loads the enabled filters and weighers once (unknown names fail at start-up)."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self.filters = filter_registry.load(settings.filter_names)
        names = [n.strip() for n in settings.enabled_weighers.split(",") if n.strip()]
        self.weighers = weigher_registry.load(names, parse_multipliers(settings.weigher_multipliers))
        self.rng = random.Random()
        # instance counts per host cost a GROUP BY over instances: read them only when used
        self.counts_needed = any(
            w.weigher.name == "NumInstancesWeigher" and w.multiplier != 0 for w in self.weighers
        )
        # the order placement returns a limited candidate list in: the RAM weigher's (else the CPU
        # weigher's) own order, so the first ``scheduler_candidate_window`` candidates are the
        # hosts the weighers would rank first; by provider id when neither weighs anything
        self.order: tuple[str, bool] | None = None
        for name, rc in (("RAMWeigher", MEMORY_MB), ("CPUWeigher", VCPU)):
            m = next((w.multiplier for w in self.weighers if w.weigher.name == name), 0.0)
            if m != 0:
                self.order = (rc, m > 0)
                break

    def _query(self, s: Session, view: RequestView) -> candidates.ResourceQuery:
        names: set[str] | None = None
        if view.availability_zone and not (view.force_hosts or view.force_nodes):
            zone_hosts = zones.hosts_in_zone(s, view.availability_zone)
            if zone_hosts is not None:
                names = set(zone_hosts)
        for wanted in (
            set(view.force_hosts) | set(view.force_nodes),
            {view.requested_host} - {None},
            {view.requested_node} - {None},
        ):
            if wanted:
                names = set(wanted) if names is None else names & set(wanted)  # type: ignore[arg-type]
        limit = None if names is not None else self._limit(view)
        return candidates.ResourceQuery(
            resources=resources_for(view),
            forbidden_traits=(STATUS_DISABLED_TRAIT,),
            provider_names=tuple(sorted(names)) if names is not None else None,
            limit=limit,
            order_by_free=self.order if limit is not None else None,
        )

    def _limit(self, view: RequestView) -> int | None:
        """How many candidates placement returns: ``max_placement_results`` widened by every host a
        hint or an anti-affinity group may rule out (so that many usable hosts remain); None (every
        host) when only particular hosts qualify (affinity, soft-affinity, same_host)."""
        if view.hints.get("same_host"):
            return None
        extra = len(view.hint_list("different_host"))
        if view.hints.get("group") or view.group is not None:
            if view.group is None or view.group.policy not in ("anti-affinity", "soft-anti-affinity"):
                return None
            extra += len(view.group.hosts) + len(view.instance_uuids)
        return self.settings.max_placement_results + extra

    def _first_window(
        self, query: candidates.ResourceQuery, items: list[tuple[int, RequestView]]
    ) -> int | None:
        """How many candidates to read first: ``scheduler_candidate_window``, at least what the
        requests need (their instances, the alternates, the random subset); None: all ``limit``."""
        if query.limit is None or query.order_by_free is None:
            return None
        need = (
            sum(len(v.instance_uuids) for _i, v in items)
            + self.settings.max_attempts
            + self.settings.host_subset_size
        )
        window = max(self.settings.scheduler_candidate_window, need)
        return window if window < query.limit else None

    def _enough(self, selection: Selection) -> bool:
        """The plan is as good as one over every candidate could be: each instance placed with
        its full set of alternates and a full random subset to pick from."""
        if selection.error is not None:
            return False
        alts = max(0, self.settings.max_attempts - 1)
        subset = self.settings.host_subset_size
        return all(len(a) >= alts for a in selection.alternates) and all(
            len(r) >= subset for r in selection.ranked
        )

    def _plan_group(
        self,
        s: Session,
        items: list[tuple[int, RequestView]],
        query: candidates.ResourceQuery,
        plans: list[Plan | None],
    ) -> None:
        """Requests with the same placement query share one read; each sees the hosts as the
        earlier ones of the batch left them (their chosen hosts consumed).

        A limited query first reads a small window of the best candidates (``_first_window``);
        when the filters leave too few hosts there (``_enough``) and placement had more, the
        window grows x4 and the plan is made again, up to ``limit``: a request that fits within
        ``limit`` candidates is never refused because of the window, and a refusal is reported
        over the same candidates as without it."""
        window = self._first_window(query, items)
        hinted = [u for _i, v in items for u in v.hint_list("same_host") + v.hint_list("different_host")]
        counts = self.counts_needed or any(
            "num_instances" in k for _i, v in items for k in v.flavor.extra_specs
        )
        while True:
            q = query if window is None else dataclasses.replace(query, limit=window)
            found, nodes = hostdata.candidates_with_nodes(s, q)
            hosts = hostdata.host_snapshots(
                s,
                found,
                service_down_time=self.settings.service_down_time,
                hinted_uuids=hinted,
                instance_counts=counts,
                nodes=nodes,
            )
            made: list[tuple[int, Plan]] = []
            for i, view in items:
                selection = runner.select_hosts(
                    view,
                    hosts,
                    filters=self.filters,
                    weighers=self.weighers,
                    host_subset_size=self.settings.host_subset_size,
                    max_attempts=self.settings.max_attempts,
                    rng=self.rng,
                )
                made.append((i, Plan(view=view, selection=selection, query=q, found=len(found))))
                if selection.error is None and len(items) > 1:
                    hosts = _consumed(hosts, selection, view)
            if window is None or len(found) < window or all(self._enough(p.selection) for _i, p in made):
                break
            assert query.limit is not None
            window = window * 4 if window * 4 < query.limit else None
        for i, plan in made:
            plans[i] = plan

    def plan_batch(self, requests: Sequence[ScheduleRequest]) -> list[Plan]:
        """Read the inputs (once per distinct placement query) and run the pure scheduler."""
        plans: list[Plan | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[tuple[int, RequestView]]] = {}
        queries: dict[tuple[Any, ...], candidates.ResourceQuery] = {}
        with self.db.reader() as s:
            for i, req in enumerate(requests):
                view = request_view(req.spec, req.instance_uuids)
                view = dataclasses.replace(
                    view, group=hostdata.load_group(s, req.spec.instance_group), ignore_hosts=req.ignore_hosts
                )
                query = self._query(s, view)
                key = _shape(query)
                queries[key] = query
                groups.setdefault(key, []).append((i, view))
            for key, items in groups.items():
                self._plan_group(s, items, queries[key], plans)
        return [p for p in plans if p is not None]

    def _unplaced(self, plan: Plan, *, claim_failed: bool = False) -> Unplaced:
        return self._missing_destination(plan) or Unplaced(
            _reason(plan.selection, self.excluded_by_placement(plan), claim_failed=claim_failed)
        )

    def _missing_destination(self, plan: Plan) -> Unplaced | None:
        """A forced or requested host/node that does not exist is "No such host" (§3.3 step 2)."""
        names = plan.query.provider_names
        if names is None or plan.found:
            return None
        v = plan.view
        if not (v.force_hosts or v.force_nodes or v.requested_host or v.requested_node):
            return None
        with self.db.reader() as s:
            if candidates.count_providers(s, names) == 0:
                host = (v.force_hosts or (v.requested_host,))[0]
                node = (v.force_nodes or (v.requested_node,))[0]
                return Unplaced(f"No such host - host: {host} node: {node}")
        return None

    def excluded_by_placement(self, plan: Plan) -> int:
        """How many providers placement left out (counted only when a failure needs the figure)."""
        if plan.query.limit is not None and plan.found >= plan.query.limit:
            return 0
        with self.db.reader() as s:
            return max(0, candidates.count_providers(s, plan.query.provider_names) - plan.found)

    def select_batch(self, requests: Sequence[ScheduleRequest]) -> list[Outcome]:
        """Per request, ``Placed`` (instance uuid -> [chosen, alternates...], claimed, the instance's
        AZ set in the same transaction; instances deleted meanwhile left out) or ``Unplaced``.
        Every request's claims are all-or-nothing; one transaction holds the whole batch."""
        plans = self.plan_batch(requests)
        outcomes: list[Outcome | None] = [self._unplaced(p) if p.selection.error else None for p in plans]
        claimed: dict[int, dict[str, HostChoice]] = {}
        pending = [i for i, o in enumerate(outcomes) if o is None]
        lost: set[int] = set()
        if pending:
            lone = len(pending) == 1  # alone in the transaction: a lost claim rolls it all back

            def claim_pending(s: Session) -> None:  # run again from scratch by db.write after a deadlock
                claimed.clear()
                lost.clear()
                if self._claim_set_based(s, [(i, requests[i], plans[i]) for i in pending], claimed):
                    return
                for i in pending:
                    req, plan = requests[i], plans[i]
                    try:
                        with contextlib.nullcontext() if lone else savepoint(s):
                            claimed[i] = self._claim_all(
                                s, plan.view, plan.selection, project_id=req.project_id, user_id=req.user_id
                            )
                    except _ClaimLost:
                        if lone:
                            s.rollback()
                        lost.add(i)  # its Unplaced is made below, outside the write transaction

            self.db.write(claim_pending)
        for i, plan in enumerate(plans):
            if i in claimed:
                outcomes[i] = Placed(self._host_lists(plan, claimed[i]))
            elif i in lost:
                outcomes[i] = self._unplaced(plan, claim_failed=True)
        return [o if o is not None else Placed({}) for o in outcomes]

    def select_destinations(
        self,
        spec: RequestSpecDoc | Mapping[str, Any],
        instance_uuids: Sequence[str],
        *,
        project_id: str,
        user_id: str,
        ignore_hosts: Sequence[str] = (),
    ) -> dict[str, list[HostChoice]]:
        """``select_batch`` for one request (its first RequestSpec, or that spec's stored document);
        raises ``NoValidHost`` for an ``Unplaced``. ``ignore_hosts``: hosts a move must leave."""
        if not isinstance(spec, RequestSpecDoc):
            spec = RequestSpecDoc.from_doc(spec)
        request = ScheduleRequest(spec, tuple(instance_uuids), project_id, user_id, tuple(ignore_hosts))
        [outcome] = self.select_batch([request])
        if isinstance(outcome, Unplaced):
            raise outcome.error()
        return outcome.hosts

    def _host_lists(self, plan: Plan, chosen: dict[str, HostChoice]) -> dict[str, list[HostChoice]]:
        taken = {d.host for d in chosen.values()}
        out: dict[str, list[HostChoice]] = {}
        for uuid, ranked in zip(plan.view.instance_uuids, plan.selection.ranked, strict=False):
            if uuid in chosen:
                alts = runner.alternates(ranked, taken, max(0, self.settings.max_attempts - 1))
                out[uuid] = [chosen[uuid], *(HostChoice.of(h) for h in alts)]
        return out

    def _claim_set_based(
        self,
        s: Session,
        items: list[tuple[int, ScheduleRequest, Plan]],
        claimed: dict[int, dict[str, HostChoice]],
    ) -> bool:
        """Claim every instance of the batch in set-based statements (one UPDATE of the instance
        rows, one INSERT of the consumers, per provider one generation bump and one UPDATE of the
        usage, one INSERT of the allocations); an instance whose host no longer fits goes on to
        its next ranked host, only it. True when every request got all its live instances
        (``claimed`` filled); False when one could not, or a consumer existed already: then
        nothing of this attempt remains and the caller claims request by request, as before."""
        entries: list[_Entry] = []
        for i, req, plan in items:
            for uuid, ranked in zip(plan.view.instance_uuids, plan.selection.ranked, strict=True):
                entries.append(
                    _Entry(i, allocations.ConsumerRef(uuid, req.project_id, req.user_id), tuple(ranked))
                )
        if not entries or any(not e.ranked for e in entries):
            return False
        try:
            with savepoint(s):
                chosen = _claim_entries(s, entries)
        except _ClaimLost:
            return False
        for i, _req, _plan in items:
            claimed[i] = {}
        for e in entries:
            if e.consumer.uuid in chosen:
                claimed[e.request][e.consumer.uuid] = HostChoice.of(chosen[e.consumer.uuid])
        return True

    def _claim_all(
        self, s: Session, view: RequestView, selection: Selection, *, project_id: str, user_id: str
    ) -> dict[str, HostChoice]:
        """Claims for every live instance; ``_ClaimLost`` when one cannot be placed (the caller's
        savepoint then undoes the others)."""
        chosen: dict[str, HostChoice] = {}
        for uuid, ranked in zip(view.instance_uuids, selection.ranked, strict=True):
            # the first choice's zone is written with the row lock; another host's after its claim
            zone = ranked[0].availability_zone if ranked else None
            if not _still_wanted(s, uuid, zone):
                continue
            consumer = allocations.ConsumerRef(uuid, project_id, user_id)
            for host in ranked:
                try:
                    allocations.claim(s, consumer, host.allocation_request)
                except allocations.AllocationConflict as exc:
                    LOG.info("claim of %s on %s lost a race (%s); trying the next host", uuid, host.host, exc)
                    continue
                chosen[uuid] = HostChoice.of(host)
                if chosen[uuid].availability_zone != zone:
                    _SET_ZONE.run(
                        s, {"instance_uuid": uuid, "zone": chosen[uuid].availability_zone, "now": utcnow()}
                    )
                break
            else:
                raise _ClaimLost(uuid)
        return chosen


class _ClaimLost(Exception):
    pass


@dataclass(eq=False)  # compared (and hashed) by identity: a key of take_many's results
class _Entry:
    """One instance of a set-based claim: its request's index, its consumer, its ranked hosts and
    which of them it is trying."""

    request: int
    consumer: allocations.ConsumerRef
    ranked: tuple[HostSnapshot, ...]
    position: int = 0

    @property
    def host(self) -> HostSnapshot:
        return self.ranked[self.position]


def _claim_entries(s: Session, entries: list[_Entry]) -> dict[str, HostSnapshot]:
    """``_claim_set_based``'s statements: instance uuid -> the host it holds a claim on (the
    instances deleted meanwhile left out); ``_ClaimLost`` when one ran out of hosts or its
    consumer existed already (the caller's savepoint undoes the rest)."""
    first_zone = {e.consumer.uuid: e.ranked[0].availability_zone for e in entries}
    live = _touch_many(s, first_zone)
    entries = [e for e in entries if e.consumer.uuid in live]
    added = allocations.add_new_consumers(s, [e.consumer for e in entries])
    if added is None or len(added) != len(entries):
        raise _ClaimLost("a consumer exists already")
    rows: list[dict[str, Any]] = []
    chosen: dict[str, HostSnapshot] = {}
    todo = entries
    while todo:
        taken = allocations.take_many(s, [(e, e.consumer.uuid, e.host.allocation_request) for e in todo])
        for e in todo:
            if e in taken.failed:
                continue
            rows.extend(taken.rows.get(e, ()))
            chosen[e.consumer.uuid] = e.host
        todo = [e for e in todo if e in taken.failed]
        for e in todo:
            LOG.info("claim of %s on %s lost a race; trying the next host", e.consumer.uuid, e.host.host)
            e.position += 1
            if e.position >= len(e.ranked):
                raise _ClaimLost(e.consumer.uuid)
    allocations.add_allocations(s, rows)
    now = utcnow()
    for uuid, host in chosen.items():
        if host.availability_zone != first_zone[uuid]:
            _SET_ZONE.run(s, {"instance_uuid": uuid, "zone": host.availability_zone, "now": now})
    return chosen


def _shape(query: candidates.ResourceQuery) -> tuple[Any, ...]:
    return (
        tuple(sorted(query.resources.items())),
        query.required_traits,
        query.forbidden_traits,
        query.member_of,
        query.provider_names,
        query.limit,
    )


def _consumed(hosts: list[HostSnapshot], selection: Selection, view: RequestView) -> list[HostSnapshot]:
    """``hosts`` after the request's chosen hosts took their instances."""
    taken: dict[str, int] = {}
    for h in selection.chosen:
        taken[h.uuid] = taken.get(h.uuid, 0) + 1
    out = []
    for h in hosts:
        for _ in range(taken.get(h.uuid, 0)):
            h = h.consume(view.flavor, is_bfv=view.is_bfv)
        out.append(h)
    return out


_INSTANCES = cast(Table, Instance.__table__)
_TOUCH = Precompiled(
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("instance_uuid"), _INSTANCES.c.deleted.is_(False))
    .values(updated_at=bindparam("now"))
)
_TOUCH_ZONE = Precompiled(
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("instance_uuid"), _INSTANCES.c.deleted.is_(False))
    .values(updated_at=bindparam("now"), availability_zone=bindparam("zone"))
)
_SET_ZONE = Precompiled(
    update(_INSTANCES)
    .where(_INSTANCES.c.uuid == bindparam("instance_uuid"))
    .values(availability_zone=bindparam("zone"), updated_at=bindparam("now"))
)


def _touch_many(s: Session, zones: dict[str, str]) -> set[str]:
    """``_still_wanted`` for many instances in one statement (each given its zone): the uuids of
    the rows it locked (those not deleted)."""
    if not zones:
        return set()
    statement = (
        update(_INSTANCES)
        .where(_INSTANCES.c.uuid.in_(list(zones)), _INSTANCES.c.deleted.is_(False))
        .values(
            updated_at=utcnow(),
            availability_zone=case(zones, value=_INSTANCES.c.uuid, else_=_INSTANCES.c.availability_zone),
        )
        .returning(_INSTANCES.c.uuid)
        .execution_options(synchronize_session=False)
    )
    return {uuid for (uuid,) in s.connection().execute(statement)}


def _still_wanted(s: Session, instance_uuid: str, zone: str | None = None) -> bool:
    """Locks the instance row for the claim transaction (setting ``zone`` when given); False once
    the user deleted it."""
    params = {"instance_uuid": instance_uuid, "now": utcnow()}
    if zone is None:
        return _TOUCH.run(s, params) == 1
    params["zone"] = zone
    return _TOUCH_ZONE.run(s, params) == 1


def _reason(selection: Selection, excluded: int, *, claim_failed: bool = False) -> str:
    summary = selection.summary({"placement": excluded} if excluded else None)
    base = runner.NOT_ENOUGH_HOSTS
    if claim_failed:
        summary = "; ".join(filter(None, [summary, "claims lost to concurrent requests"]))
    return f"{base} ({summary})" if summary else base

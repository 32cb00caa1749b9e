"""POST /servers as named steps, in Nova's order (§1.3, §2.1-2.3).

    parse (no database)          destination -> block devices -> image ref -> networks -> pre-checks
    check_in (read-only session) AZ / host -> flavor -> image -> disk config -> user data -> networks
                                 -> key pair -> boot sequence -> BDM sources (volumes, images)
                                 -> metadata / files quota -> image vs flavor
                                 -> BDM vs flavor -> scheduler hints / server group
    store_group (serialized on the project's quota lock)
                                 quota (may build fewer) -> insert instances, specs, actions -> recheck
                                 -> server group membership (member quota)
    hand off                     conductor.schedule_and_build_instances (a cast)
                                 compensation: a failed cast deletes what persist wrote

Each step raises the Nova error the API renders; nothing is written before ``store_group``.
``create_servers`` runs them for the creates that arrive together (one read transaction for their
checks, one group for their stores), each create with its own outcome.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from novalite.db import group_commit
from novalite.db.models.compute import Instance, InstanceAction, InstanceMetadata, InstanceTag, RequestSpec
from novalite.errors import BadRequest
from novalite.services.create_server import lookups
from novalite.services.create_server.plan import BuildPlan
from novalite.services.create_server.request import (
    CreateServerRequest,
    CreateServerResult,
    generate_reservation_id,
)
from novalite.services.create_server.steps import (
    block_devices,
    checks,
    destination,
    networks,
    persist,
    volumes,
)

LOG = logging.getLogger(__name__)


def parse(req: CreateServerRequest) -> BuildPlan:
    """§1.3 steps 6-10 and §2.1: everything decided from the request alone."""
    plan = BuildPlan(request=req, reservation_id=generate_reservation_id(), max_count=req.max_count)
    dest = destination.parse_availability_zone(req)
    plan.destination = destination.add_requested_destination(req, dest)
    if req.legacy_bdm and req.bdm_v2:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed.")
    v2 = block_devices.convert_v2(req)
    plan.image_ref = block_devices.resolve_image_ref(req)
    plan.legacy_bdm = not req.bdm_v2
    plan.block_devices = v2 if req.bdm_v2 else block_devices.convert_legacy(req, plan.image_ref)
    plan.requested_networks = networks.parse_networks(req)
    networks.precheck_networks(req, plan.requested_networks)
    if req.requested_hostname and req.max_count > 1:
        raise BadRequest(
            "Unable to allocate a single hostname to multiple instances.",
            kind="AmbiguousHostnameForMultipleInstances",
        )
    return plan


def check_in(s: Session, plan: BuildPlan) -> None:
    """§2.2: read-only checks in Nova's order, in the read transaction ``s`` (the creates of a
    batch share one: ``_check_all``)."""
    req = plan.request
    plan.destination = destination.reconcile_forced_host_zone(s, plan.destination)
    destination.check_availability_zone(s, plan.destination)
    checks.load_flavor(s, plan)
    checks.load_image(s, plan)
    checks.check_disk_config(plan)
    checks.check_user_data(req)
    checks.check_security_groups_and_networks(s, plan)
    checks.image_settings(s, plan)
    checks.check_config_drive(plan)
    checks.load_key_pair(s, plan)
    block_devices.check_boot_sequence(plan.block_devices)
    block_devices.check_multi_create(req, plan.block_devices)
    plan.is_bfv = block_devices.is_boot_from_volume(plan.block_devices)
    volumes.check_block_device_sources(s, plan)
    checks.check_limits(s, req)
    checks.check_image_properties(plan)
    checks.check_image(plan)
    block_devices.check_against_flavor(plan.block_devices, plan.flavor)
    checks.scheduler_hints(s, plan)
    destination.check_requested_destination(s, plan.destination)


def _store_unit(s: Session, plan: BuildPlan) -> None:
    persist.check_quota(s, plan)
    persist.insert_instances(s, plan)
    persist.recheck_quota(s, plan)
    persist.join_server_group(s, plan)


def _store_batch(s: Session, plans: list[BuildPlan]) -> list[BaseException | None]:
    """``_store_unit`` for a group of creates of one project with one quota read and one insert per
    table: each create's quota is judged as if it ran after the ones before it
    (``quotas.InstanceQuotaBatch``); one that does not fit gets its own 403 and writes nothing.
    Creates of several users, or into server groups, run unit by unit in the same transaction."""
    from novalite.errors import OverQuota
    from novalite.services import quotas

    ctx = plans[0].request.ctx
    if any(p.request.ctx.user_id != ctx.user_id or p.instance_group is not None for p in plans):
        for plan in plans:
            _store_unit(s, plan)
        return [None] * len(plans)
    checker = quotas.InstanceQuotaBatch(s, ctx.project_id, ctx.user_id)
    outcomes: list[BaseException | None] = []
    accepted: list[BuildPlan] = []
    for plan in plans:
        try:
            plan.num_instances = checker.fit(plan.flavor, plan.request.min_count, plan.max_count)
        except OverQuota as exc:
            outcomes.append(exc)
            continue
        outcomes.append(None)
        accepted.append(plan)
    persist.insert_many(s, accepted)
    checker.recheck(s)
    return outcomes


def store_group(db: Any, key: str, plans: Sequence[BuildPlan]) -> list[Any]:
    """§2.3 for creates of one project: ``_store_unit`` each under the quota lock ``key``. They
    join the project's group commit together (with any other creates queued there meanwhile) and
    share one transaction, stored as one batch (``_store_batch``): each one's quota is judged as if
    it had run after the ones before it, and one that does not fit gets its own 403. Should the
    batch itself fail, each create runs again alone, so an error is always its own. One outcome per
    plan: None, or the exception that stopped it (nothing of it written)."""
    units = [(functools.partial(_store_unit, plan=plan), plan) for plan in plans]
    return group_commit.group(db, key).run_all(
        db, units, begin=functools.partial(db.serialized, key), batch=_store_batch
    )


def unstore(runtime: Any, plan: BuildPlan) -> None:
    """Compensation for ``store_group``: remove every row it wrote for ``plan``."""
    uuids = plan.instance_uuids
    with runtime.db.session() as s:
        lookups.forget_group_members(s, uuids)
        for model in (RequestSpec, InstanceMetadata, InstanceTag, InstanceAction):
            s.execute(delete(model).where(model.instance_uuid.in_(uuids)))
        s.execute(delete(Instance).where(Instance.uuid.in_(uuids)))


def build_args(plan: BuildPlan) -> dict[str, Any]:
    req = plan.request
    return {
        "admin_password": req.admin_pass,
        "injected_files": [list(f) for f in req.injected_files],
        "requested_networks": plan.requested_networks,
        "block_device_mapping": plan.block_devices,
        "tags": list(req.tags),
    }


def hand_off(runtime: Any, plan: BuildPlan) -> None:
    conductor = runtime.services.conductor
    if conductor is None:
        LOG.warning("no conductor running; instances %s stay in BUILD", plan.instance_uuids)
        return
    conductor.schedule_and_build_instances(plan.request.ctx, list(plan.instance_uuids), build_args(plan))


def create_servers(runtime: Any, reqs: Sequence[CreateServerRequest]) -> list[CreateServerResult | Exception]:
    """Run the pipeline for requests that arrived together (POST /servers, ``api.batching``), each
    as if it had run alone: every one gets its own result or the error that stopped it, and one
    request's error costs no other its work.

    They share what does not change their outcome: the checks run in one read transaction (a
    consistent view, as each would have had alone), the stores of one project are one
    ``store_group`` (each judged against the quota as if it had run after the ones before it), and
    the hand-offs follow. On a failed hand-off that request's rows are removed again."""
    outcomes: list[CreateServerResult | Exception | None] = [None] * len(reqs)
    plans: dict[int, BuildPlan] = {}
    for i, req in enumerate(reqs):
        try:
            plans[i] = parse(req)
        except Exception as exc:
            outcomes[i] = exc
    _check_all(runtime, plans, outcomes)
    _store_all(runtime.db, plans, outcomes)
    for i, plan in plans.items():
        try:
            hand_off(runtime, plan)
        except Exception as exc:
            unstore(runtime, plan)
            outcomes[i] = exc
            continue
        req = plan.request
        outcomes[i] = CreateServerResult(
            instance_uuids=tuple(plan.instance_uuids),
            reservation_id=plan.reservation_id,
            admin_pass=req.admin_pass,
            auto_disk_config=plan.auto_disk_config,
            security_groups_echo=req.security_groups_echo,
        )
    return [o if o is not None else RuntimeError("create left without an outcome") for o in outcomes]


def _check_all(runtime: Any, plans: dict[int, BuildPlan], outcomes: list[Any]) -> None:
    """``check_in`` for each plan, in one read transaction. A plan that fails leaves ``plans`` with
    its error in ``outcomes``, and the plans after it go on in a new transaction (a statement that
    failed may have ended the first one, as PostgreSQL does with any error)."""
    todo = list(plans)
    while todo:
        with runtime.db.reader() as s:
            while todo:
                i = todo.pop(0)
                try:
                    check_in(s, plans[i])
                except Exception as exc:
                    outcomes[i] = exc
                    del plans[i]
                    break


def _store_all(db: Any, plans: dict[int, BuildPlan], outcomes: list[Any]) -> None:
    """``store_group`` for the plans of each project."""
    by_project: dict[str, list[int]] = {}
    for i, plan in plans.items():
        by_project.setdefault(plan.request.ctx.project_id, []).append(i)
    for project_id, indexes in by_project.items():
        results = store_group(db, f"quota:{project_id}", [plans[i] for i in indexes])
        for i, result in zip(indexes, results, strict=True):
            if isinstance(result, BaseException):
                outcomes[i] = result
                del plans[i]

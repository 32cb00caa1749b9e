"""POST /servers as named steps, in Nova's order (§1.3, §2.1-2.3).

    parse (no database)          destination -> block devices -> image ref -> networks -> pre-checks
    check_in (read-only session) AZ / host -> flavor -> image -> disk config -> user data -> networks
                                 -> key pair -> boot sequence -> BDM sources (volumes, images)
                                 -> metadata / files quota -> image vs flavor
                                 -> BDM vs flavor -> scheduler hints / server group
    store_group (serialized on the project's quota lock)
                                 quota (may build fewer) -> insert instances, specs, actions -> recheck
                                 -> server group membership (member quota)
    hand off                     conductor.schedule_and_build_many (one cast for the creates
                                 stored together)
                                 compensation: a failed cast deletes what persist wrote

Each step raises the Nova error the API renders and returns what it decided; nothing is written
before ``store_group``. The stages hand on frozen values (``plan.py``): ``parse`` -> ``ParsedCreate``,
``check_in`` -> ``CheckedCreate``, ``store_group`` -> ``StoredCreate`` per create.
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
from novalite.domain.request_spec import networks_to_doc
from novalite.errors import BadRequest, OverQuota
from novalite.services import quotas
from novalite.services.create_server import lookups
from novalite.services.create_server.plan import CheckedCreate, ParsedCreate, StoredCreate
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


def parse(req: CreateServerRequest) -> ParsedCreate:
    """§1.3 steps 6-10 and §2.1: everything decided from the request alone."""
    reservation_id = generate_reservation_id()
    placement = destination.add_requested_destination(req, destination.parse_availability_zone(req))
    if req.legacy_bdm and req.bdm_v2:
        raise BadRequest("Using different block_device_mapping syntaxes is not allowed.")
    v2 = block_devices.convert_v2(req)
    image_ref = block_devices.resolve_image_ref(req)
    bdms = v2 if req.bdm_v2 else block_devices.convert_legacy(req, image_ref)
    requested_networks = networks.parse_networks(req)
    networks.precheck_networks(req, requested_networks)
    if req.requested_hostname and req.max_count > 1:
        raise BadRequest(
            "Unable to allocate a single hostname to multiple instances.",
            kind="AmbiguousHostnameForMultipleInstances",
        )
    return ParsedCreate(
        request=req,
        reservation_id=reservation_id,
        placement=placement,
        image_ref=image_ref,
        block_devices=bdms,
        requested_networks=requested_networks,
    )


def check_in(s: Session, parsed: ParsedCreate) -> CheckedCreate:
    """§2.2: read-only checks in Nova's order, in the read transaction ``s`` (the creates of a
    batch share one: ``_check_all``); each step returns what it decided."""
    req, ctx, bdms = parsed.request, parsed.request.ctx, parsed.block_devices
    placement = destination.reconcile_forced_host_zone(s, parsed.placement)
    destination.check_availability_zone(s, placement)
    flavor = checks.load_flavor(s, ctx, req.flavor_ref)
    image = checks.load_image(s, req, parsed.image_ref)
    auto_disk_config = checks.check_disk_config(req, image, parsed.image_ref)
    checks.check_user_data(req)
    max_count = checks.check_security_groups_and_networks(s, req, parsed.requested_networks)
    settings = checks.image_settings(s, ctx, image)
    config_drive = checks.check_config_drive(req)
    key_name, key_data = checks.load_key_pair(s, req)
    block_devices.check_boot_sequence(bdms)
    block_devices.check_multi_create(req, bdms)
    is_bfv = block_devices.is_boot_from_volume(bdms)
    volumes.check_block_device_sources(s, ctx, parsed.image_ref, bdms)
    checks.check_limits(s, req)
    config_drive = checks.check_image_properties(image, config_drive)
    checks.check_image(ctx, image, flavor)
    block_devices.check_against_flavor(bdms, flavor)
    hints, group = checks.scheduler_hints(s, req)
    destination.check_requested_destination(s, placement)
    return CheckedCreate(
        request=req,
        reservation_id=parsed.reservation_id,
        placement=placement,
        image_ref=parsed.image_ref,
        block_devices=bdms,
        requested_networks=parsed.requested_networks,
        flavor=flavor,
        image=image,
        is_bfv=is_bfv,
        auto_disk_config=auto_disk_config,
        key_name=key_name,
        key_data=key_data,
        config_drive=config_drive,
        image_settings=settings,
        scheduler_hints=hints,
        instance_group=group,
        max_count=max_count,
    )


def _store_unit(s: Session, checked: CheckedCreate) -> StoredCreate:
    count = persist.check_quota(s, checked)
    [stored] = persist.insert_many(s, [(checked, count)])
    persist.recheck_quota(s, checked, count)
    persist.join_server_group(s, checked, stored)
    return stored


def _store_batch(s: Session, creates: list[CheckedCreate]) -> list[StoredCreate | BaseException]:
    """``_store_unit`` for a group of creates of one project with one quota read and one insert per
    table: each create's quota is judged as if it ran after the ones before it
    (``quotas.InstanceQuotaBatch``); one that does not fit gets its own 403 and writes nothing.
    Creates of several users, or into server groups, run unit by unit in the same transaction."""
    ctx = creates[0].request.ctx
    if any(c.request.ctx.user_id != ctx.user_id or c.instance_group is not None for c in creates):
        return [_store_unit(s, c) for c in creates]
    checker = quotas.InstanceQuotaBatch(s, ctx.project_id, ctx.user_id)
    refused: list[BaseException | None] = []
    accepted: list[tuple[CheckedCreate, int]] = []
    for c in creates:
        try:
            count = checker.fit(c.flavor, c.request.min_count, c.max_count)
        except OverQuota as exc:
            refused.append(exc)
            continue
        refused.append(None)
        accepted.append((c, count))
    stored = iter(persist.insert_many(s, accepted))
    checker.recheck(s)
    return [exc if exc is not None else next(stored) for exc in refused]


def store_group(db: Any, key: str, creates: Sequence[CheckedCreate]) -> list[StoredCreate | BaseException]:
    """§2.3 for creates of one project: ``_store_unit`` each under the quota lock ``key``. They
    join the project's group commit together (with any other creates queued there meanwhile) and
    share one transaction, stored as one batch (``_store_batch``): each one's quota is judged as if
    it had run after the ones before it, and one that does not fit gets its own 403. Should the
    batch itself fail, each create runs again alone, so an error is always its own. One outcome per
    create: the ``StoredCreate``, or the exception that stopped it (nothing of it written)."""
    units = [(functools.partial(_store_unit, checked=c), c) for c in creates]
    return group_commit.group(db, key).run_all(
        db, units, begin=functools.partial(db.serialized, key), batch=_store_batch
    )


def unstore(runtime: Any, stored: StoredCreate) -> None:
    """Compensation for ``store_group``: remove every row it wrote for one create."""
    uuids = list(stored.instance_uuids)
    with runtime.db.session() as s:
        lookups.forget_group_members(s, uuids)
        for model in (RequestSpec, InstanceMetadata, InstanceTag, InstanceAction):
            s.execute(delete(model).where(model.instance_uuid.in_(uuids)))
        s.execute(delete(Instance).where(Instance.uuid.in_(uuids)))


def build_args(checked: CheckedCreate) -> dict[str, Any]:
    req = checked.request
    return {
        "admin_password": req.admin_pass,
        "injected_files": [list(f) for f in req.injected_files],
        "requested_networks": networks_to_doc(checked.requested_networks),
        "block_device_mapping": checked.block_devices,
        "tags": list(req.tags),
    }


def hand_off_all(runtime: Any, items: list[tuple[CheckedCreate, StoredCreate]]) -> list[Exception | None]:
    """§2.4 for the creates stored together: one message to the conductor carries them all
    (``ScheduleAndBuildMany``). One outcome per create: None once handed over, or the exception
    that stopped it (its rows are then the caller's to remove)."""
    conductor = runtime.services.conductor
    if conductor is None:
        for _c, stored in items:
            LOG.warning("no conductor running; instances %s stay in BUILD", list(stored.instance_uuids))
        return [None] * len(items)
    return list(
        conductor.schedule_and_build_many(
            [(c.request.ctx, list(stored.instance_uuids), build_args(c)) for c, stored in items]
        )
    )


def create_servers(runtime: Any, reqs: Sequence[CreateServerRequest]) -> list[CreateServerResult | Exception]:
    """Run the pipeline for requests that arrived together (POST /servers, ``batching``), each
    as if it had run alone: every one gets its own result or the error that stopped it, and one
    request's error costs no other its work.

    They share what does not change their outcome: the checks run in one read transaction (a
    consistent view, as each would have had alone), the stores of one project are one
    ``store_group`` (each judged against the quota as if it had run after the ones before it), and
    the hand-offs follow in one message. On a failed hand-off that request's rows are removed again."""
    outcomes: list[CreateServerResult | Exception | None] = [None] * len(reqs)
    parsed: dict[int, ParsedCreate] = {}
    for i, req in enumerate(reqs):
        try:
            parsed[i] = parse(req)
        except Exception as exc:
            outcomes[i] = exc
    checked = _check_all(runtime, parsed, outcomes)
    stored = _store_all(runtime.db, checked, outcomes)
    handed: dict[int, StoredCreate] = {}
    order = list(stored)
    try:
        results = hand_off_all(runtime, [(checked[i], stored[i]) for i in order]) if order else []
    except Exception as exc:  # the publish failed: none of the hand-offs is sure to be there
        results = [exc] * len(order)
    for i, result in zip(order, results, strict=True):
        if result is not None:
            unstore(runtime, stored[i])
            outcomes[i] = result
        else:
            handed[i] = stored[i]
    for i, done in handed.items():
        create = checked[i]
        outcomes[i] = CreateServerResult(
            instance_uuids=done.instance_uuids,
            reservation_id=create.reservation_id,
            admin_pass=create.request.admin_pass,
            auto_disk_config=create.auto_disk_config,
            security_groups_echo=create.request.security_groups_echo,
        )
    return [o if o is not None else RuntimeError("create left without an outcome") for o in outcomes]


def _check_all(
    runtime: Any, parsed: dict[int, ParsedCreate], outcomes: list[Any]
) -> dict[int, CheckedCreate]:
    """``check_in`` for each parsed create, in one read transaction. One that fails gets its error
    in ``outcomes``, and the creates after it go on in a new transaction (a statement that failed
    may have ended the first one, as PostgreSQL does with any error)."""
    checked: dict[int, CheckedCreate] = {}
    todo = list(parsed)
    while todo:
        with runtime.db.reader() as s:
            while todo:
                i = todo.pop(0)
                try:
                    checked[i] = check_in(s, parsed[i])
                except Exception as exc:
                    outcomes[i] = exc
                    break
    return checked


def _store_all(db: Any, checked: dict[int, CheckedCreate], outcomes: list[Any]) -> dict[int, StoredCreate]:
    """``store_group`` for the checked creates of each project."""
    by_project: dict[str, list[int]] = {}
    for i, create in checked.items():
        by_project.setdefault(create.request.ctx.project_id, []).append(i)
    stored: dict[int, StoredCreate] = {}
    for project_id, indexes in by_project.items():
        results = store_group(db, f"quota:{project_id}", [checked[i] for i in indexes])
        for i, result in zip(indexes, results, strict=True):
            if isinstance(result, BaseException):
                outcomes[i] = result
            else:
                stored[i] = result
    return dict(sorted(stored.items()))  # hand-offs in the order the creates arrived

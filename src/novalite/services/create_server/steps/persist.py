"""Quota check, instance rows, request specs and the ``create`` actions: one transaction (§2.3).

Runs inside ``db.serialized("quota:<project>")`` so concurrent creates of one project count
and insert one after another; the recheck after the insert is the safety net Nova also has.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from novalite.db.base import new_uuid, utcnow
from novalite.db.models.compute import Instance, InstanceAction, InstanceMetadata, InstanceTag, RequestSpec
from novalite.db.precompiled import Precompiled
from novalite.domain.request_spec import ImageSnapshot, RequestSpecDoc, networks_to_doc
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.services import quotas, server_groups
from novalite.services.create_server.plan import CheckedCreate, StoredCreate
from novalite.services.create_server.steps import naming

_SKIPPED_IMAGE_PROPS = {"block_device_mapping", "bdm_v2", "mappings"}


def check_quota(s: Session, checked: CheckedCreate) -> int:
    """How many instances fit between min_count and max_count (partial multi-create); 403 otherwise."""
    req = checked.request
    return quotas.check_instance_quota(s, req.ctx, checked.flavor, req.min_count, checked.max_count)


def recheck_quota(s: Session, checked: CheckedCreate, count: int) -> None:
    """After the insert (flushed, same transaction): usage must still be within the limits."""
    ctx = checked.request.ctx
    s.flush()
    quotas.recheck_instance_quota(s, ctx.project_id, ctx.user_id, checked.flavor, count)


def system_metadata(checked: CheckedCreate) -> dict[str, Any]:
    """``image_<prop>`` (truncated to 255) plus the image basics and the owner names."""
    meta: dict[str, Any] = {
        "owner_user_name": checked.request.ctx.user_name,
        "owner_project_name": checked.request.ctx.project_name,
    }
    image = checked.image
    if image is None:
        return meta
    for key, value in image.properties.items():
        if key not in _SKIPPED_IMAGE_PROPS:
            meta[f"image_{key}"] = str(value)[:255]
    root_gb = int(checked.flavor.root_gb or 0)
    min_disk = (
        int(image.min_disk or 0) if image.disk_format == "vhd" else max(int(image.min_disk or 0), root_gb)
    )
    meta.update(
        image_min_ram=str(image.min_ram or 0),
        image_min_disk=str(min_disk),
        image_disk_format=image.disk_format or "",
        image_container_format=image.container_format or "",
        image_base_image_ref=image.id,
    )
    return meta


def build_instances(checked: CheckedCreate, instance_uuids: tuple[str, ...]) -> list[dict[str, Any]]:
    """The ``instances`` rows (column -> value); columns left out take their defaults. What all
    instances of the create share is built once."""
    req, flavor, placement = checked.request, checked.flavor, checked.placement
    count = len(instance_uuids)
    shared = dict(
        project_id=req.ctx.project_id,
        user_id=req.ctx.user_id,
        display_description=req.description,
        reservation_id=checked.reservation_id,
        image_ref=checked.image_ref,
        kernel_id=checked.image_settings.kernel_id,
        ramdisk_id=checked.image_settings.ramdisk_id,
        flavor_id=str(flavor.flavorid),
        flavor=flavor.to_dict(),
        memory_mb=int(flavor.memory_mb),
        vcpus=int(flavor.vcpus),
        root_gb=int(flavor.root_gb),
        ephemeral_gb=int(flavor.ephemeral_gb or 0),
        key_name=checked.key_name,
        key_data=checked.key_data,
        user_data=req.user_data,
        config_drive=checked.config_drive,
        access_ip_v4=req.access_ip_v4,
        access_ip_v6=req.access_ip_v6,
        availability_zone=placement.availability_zone,
        requested_availability_zone=placement.availability_zone,
        auto_disk_config=checked.auto_disk_config,
        root_device_name=checked.image_settings.root_device_name,
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        power_state=int(PowerState.NOSTATE),
        progress=0,
        locked=False,
        trusted_certs=list(req.trusted_certs) if req.trusted_certs else None,
        requested_networks=networks_to_doc(checked.requested_networks),
        system_metadata=system_metadata(checked),
        network_info=[],
    )
    return [
        dict(
            shared,
            uuid=u,
            display_name=naming.display_name(req.name, index, count),
            hostname=naming.hostname(req.name, req.requested_hostname, u, index, count),
            launch_index=index,
            security_groups=[{"name": n} for n in req.security_groups],
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        for index, u in enumerate(instance_uuids)
    ]


def request_spec(checked: CheckedCreate, count: int) -> RequestSpecDoc:
    """The RequestSpec the conductor and scheduler read (``domain/request_spec.py``), for every
    instance of the create (``to_docs`` gives each its own ``instance_uuid``)."""
    req, image, placement = checked.request, checked.image, checked.placement
    return RequestSpecDoc(
        instance_uuid="",
        project_id=req.ctx.project_id,
        user_id=req.ctx.user_id,
        flavor=checked.flavor,
        image=(
            None
            if image is None or checked.is_bfv
            else ImageSnapshot(
                id=image.id,
                name=image.name,
                properties=image.properties,
                min_ram=image.min_ram,
                min_disk=image.min_disk,
                size=image.size,
                disk_format=image.disk_format,
                container_format=image.container_format,
            )
        ),
        is_bfv=checked.is_bfv,
        num_instances=count,
        reservation_id=checked.reservation_id,
        availability_zone=placement.availability_zone,
        force_hosts=(placement.forced_host,) if placement.forced_host else (),
        force_nodes=(placement.forced_node,) if placement.forced_node else (),
        requested_host=placement.requested_host,
        requested_node=placement.requested_node,
        scheduler_hints={k: tuple(v) for k, v in checked.scheduler_hints.items()},
        instance_group=checked.instance_group,
        security_groups=req.security_groups,
        requested_networks=checked.requested_networks,
    )


# Core statements built once: plain column inserts, no ORM objects or unit of work (every
# POST /servers runs them while it holds the project's quota lock)
# (straight to the DBAPI cursor: ``db.precompiled``)
_INSERT_INSTANCE = Precompiled(insert(Instance.__table__))  # type: ignore[arg-type]
_INSERT_SPEC = Precompiled(insert(RequestSpec.__table__))  # type: ignore[arg-type]
_INSERT_METADATA = Precompiled(insert(InstanceMetadata.__table__))  # type: ignore[arg-type]
_INSERT_TAG = Precompiled(insert(InstanceTag.__table__))  # type: ignore[arg-type]
_INSERT_ACTION = Precompiled(insert(InstanceAction.__table__))  # type: ignore[arg-type]


def insert_many(s: Session, creates: list[tuple[CheckedCreate, int]]) -> list[StoredCreate]:
    """One Instance, RequestSpec, metadata/tags and ``create`` InstanceAction per instance of each
    ``(create, how many instances)``: each table in one executemany, instances first."""
    instances: list[dict[str, Any]] = []
    specs: list[dict[str, Any]] = []
    metadata: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    stored: list[StoredCreate] = []
    for checked, count in creates:
        req = checked.request
        uuids = tuple(new_uuid() for _ in range(count))
        stored.append(StoredCreate(instance_uuids=uuids))
        instances.extend(build_instances(checked, uuids))
        specs.extend(
            {"instance_uuid": u, "spec": doc}
            for u, doc in zip(uuids, request_spec(checked, count).to_docs(uuids), strict=True)
        )
        metadata.extend(
            {"instance_uuid": u, "key": k, "value": v} for u in uuids for k, v in req.metadata.items()
        )
        tags.extend({"instance_uuid": u, "tag": t} for u in uuids for t in dict.fromkeys(req.tags))
        started = utcnow()
        actions.extend(
            {
                "instance_uuid": u,
                "action": "create",
                "request_id": req.ctx.request_id,
                "user_id": req.ctx.user_id,
                "project_id": req.ctx.project_id,
                "start_time": started,
            }
            for u in uuids
        )
    if not instances:
        return stored
    conn = s.connection()
    _INSERT_INSTANCE.run_many(conn, instances)
    _INSERT_SPEC.run_many(conn, specs)
    _INSERT_METADATA.run_many(conn, metadata)
    _INSERT_TAG.run_many(conn, tags)
    _INSERT_ACTION.run_many(conn, actions)
    return stored


def join_server_group(s: Session, checked: CheckedCreate, stored: StoredCreate) -> None:
    """§2.3 7.10: each new server becomes a member of the requested group (403 over its quota)."""
    if checked.instance_group is None:
        return
    for instance_uuid in stored.instance_uuids:
        server_groups.add_member(s, checked.request.ctx, checked.instance_group, instance_uuid)

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
from novalite.domain.states import PowerState, TaskState, VmState
from novalite.services.create_server.plan import BuildPlan
from novalite.services.create_server.steps import naming

_SKIPPED_IMAGE_PROPS = {"block_device_mapping", "bdm_v2", "mappings"}


def check_quota(s: Session, plan: BuildPlan) -> None:
    """How many instances fit between min_count and max_count (partial multi-create); 403 otherwise."""
    from novalite.services import quotas

    req = plan.request
    plan.num_instances = quotas.check_instance_quota(s, req.ctx, plan.flavor, req.min_count, plan.max_count)


def recheck_quota(s: Session, plan: BuildPlan) -> None:
    """After the insert (flushed, same transaction): usage must still be within the limits."""
    from novalite.services import quotas

    ctx = plan.request.ctx
    s.flush()
    quotas.recheck_instance_quota(s, ctx.project_id, ctx.user_id, plan.flavor, plan.num_instances)


def system_metadata(plan: BuildPlan) -> dict[str, Any]:
    """``image_<prop>`` (truncated to 255) plus the image basics and the owner names."""
    meta: dict[str, Any] = {
        "owner_user_name": plan.request.ctx.user_name,
        "owner_project_name": plan.request.ctx.project_name,
    }
    image = plan.image
    if image is None:
        return meta
    for key, value in image.properties.items():
        if key not in _SKIPPED_IMAGE_PROPS:
            meta[f"image_{key}"] = str(value)[:255]
    root_gb = int(plan.flavor.root_gb or 0)
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


def build_instance(plan: BuildPlan, index: int, instance_uuid: str) -> dict[str, Any]:
    """The ``instances`` row (column -> value); columns left out take their defaults."""
    req, flavor = plan.request, plan.flavor
    count = plan.num_instances
    return dict(
        uuid=instance_uuid,
        project_id=req.ctx.project_id,
        user_id=req.ctx.user_id,
        display_name=naming.display_name(req.name, index, count),
        display_description=req.description,
        hostname=naming.hostname(req.name, req.requested_hostname, instance_uuid, index, count),
        reservation_id=plan.reservation_id,
        launch_index=index,
        image_ref=plan.image_ref,
        kernel_id=plan.kernel_id,
        ramdisk_id=plan.ramdisk_id,
        flavor_id=str(flavor.flavorid),
        flavor=flavor.to_dict(),
        memory_mb=int(flavor.memory_mb),
        vcpus=int(flavor.vcpus),
        root_gb=int(flavor.root_gb),
        ephemeral_gb=int(flavor.ephemeral_gb or 0),
        key_name=plan.key_name,
        key_data=plan.key_data,
        user_data=req.user_data,
        config_drive=plan.config_drive,
        access_ip_v4=req.access_ip_v4,
        access_ip_v6=req.access_ip_v6,
        availability_zone=plan.destination.availability_zone,
        requested_availability_zone=plan.destination.availability_zone,
        auto_disk_config=plan.auto_disk_config,
        root_device_name=plan.root_device_name,
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        power_state=int(PowerState.NOSTATE),
        progress=0,
        locked=False,
        trusted_certs=list(req.trusted_certs) if req.trusted_certs else None,
        security_groups=[{"name": n} for n in req.security_groups],
        requested_networks=plan.requested_networks,
        system_metadata=system_metadata(plan),
        network_info=[],
        created_at=utcnow(),
        updated_at=utcnow(),
    )


def request_spec(plan: BuildPlan, instance_uuid: str) -> dict[str, Any]:
    """The RequestSpec document the conductor and scheduler read (DEVELOPING.md contract)."""
    req, flavor, image, dest = plan.request, plan.flavor, plan.image, plan.destination
    image_doc: dict[str, Any] = (
        {}
        if image is None or plan.is_bfv
        else {
            "id": image.id,
            "name": image.name,
            "properties": dict(image.properties),
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "size": image.size,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
        }
    )
    return {
        "instance_uuid": instance_uuid,
        "project_id": req.ctx.project_id,
        "user_id": req.ctx.user_id,
        "num_instances": plan.num_instances,
        "reservation_id": plan.reservation_id,
        "flavor": {
            "flavorid": flavor.flavorid,
            "name": flavor.name,
            "memory_mb": flavor.memory_mb,
            "vcpus": flavor.vcpus,
            "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb,
            "swap": flavor.swap,
            "extra_specs": dict(flavor.extra_specs),
        },
        "image": image_doc,
        "is_bfv": plan.is_bfv,
        "availability_zone": dest.availability_zone,
        "force_hosts": [dest.forced_host] if dest.forced_host else [],
        "force_nodes": [dest.forced_node] if dest.forced_node else [],
        "requested_destination": dest.requested_destination,
        "scheduler_hints": plan.scheduler_hints,
        "instance_group": plan.instance_group,
        "security_groups": list(req.security_groups),
        "requested_networks": plan.requested_networks,
    }


# Core statements built once: plain column inserts, no ORM objects or unit of work (every
# POST /servers runs them while it holds the project's quota lock)
# (straight to the DBAPI cursor: ``db.precompiled``)
_INSERT_INSTANCE = Precompiled(insert(Instance.__table__))  # type: ignore[arg-type]
_INSERT_SPEC = Precompiled(insert(RequestSpec.__table__))  # type: ignore[arg-type]
_INSERT_METADATA = Precompiled(insert(InstanceMetadata.__table__))  # type: ignore[arg-type]
_INSERT_TAG = Precompiled(insert(InstanceTag.__table__))  # type: ignore[arg-type]
_INSERT_ACTION = Precompiled(insert(InstanceAction.__table__))  # type: ignore[arg-type]


def insert_instances(s: Session, plan: BuildPlan) -> None:
    """One Instance, RequestSpec, metadata/tags and ``create`` InstanceAction per instance
    (each table in one executemany, instances first)."""
    insert_many(s, [plan])


def insert_many(s: Session, plans: list[BuildPlan]) -> None:
    """``insert_instances`` for several creates at once: still one executemany per table."""
    instances: list[dict[str, Any]] = []
    specs: list[dict[str, Any]] = []
    metadata: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for plan in plans:
        req = plan.request
        plan.instance_uuids = uuids = [new_uuid() for _ in range(plan.num_instances)]
        instances.extend(build_instance(plan, index, u) for index, u in enumerate(uuids))
        specs.extend({"instance_uuid": u, "spec": request_spec(plan, u)} for u in uuids)
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
        return
    conn = s.connection()
    _INSERT_INSTANCE.run_many(conn, instances)
    _INSERT_SPEC.run_many(conn, specs)
    _INSERT_METADATA.run_many(conn, metadata)
    _INSERT_TAG.run_many(conn, tags)
    _INSERT_ACTION.run_many(conn, actions)


def join_server_group(s: Session, plan: BuildPlan) -> None:
    """§2.3 7.10: each new server becomes a member of the requested group (403 over its quota)."""
    if plan.instance_group is None:
        return
    from novalite.services import server_groups

    for instance_uuid in plan.instance_uuids:
        server_groups.add_member(s, plan.request.ctx, plan.instance_group, instance_uuid)

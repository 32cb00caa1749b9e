"""The server representation per microversion (§6.1). Every version gate for servers' output is here.

The service layer (``services.server_queries``) loads what a view needs besides the ``Instance``
row (metadata, tags, latest fault, addresses, server groups) into ``ServerExtras`` in bulk, so a
page of servers costs a fixed number of queries; views do no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from fastapi import Request

from novalite.api.common import compute_links, link_prefixes
from novalite.api.microversion import V, Version
from novalite.context import RequestContext
from novalite.db.models.compute import Instance
from novalite.domain.states import PROGRESS_STATUSES, VmState, status_of
from novalite.services.server_queries import ServerExtras


def isotime(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def usage_time(value: dt.datetime | None) -> str | None:
    """``OS-SRV-USG`` times: naive, with microseconds."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def host_id(project_id: str, host: str | None) -> str:
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def instance_name(inst: Instance) -> str:
    return f"instance-{inst.id:08x}"


def status(inst: Instance) -> str:
    return status_of(inst.vm_state, inst.task_state, deleted=bool(inst.deleted))


def server_summary(request: Request, inst: Instance) -> dict[str, Any]:
    return {"id": inst.uuid, "name": inst.display_name, "links": compute_links(request, "servers", inst.uuid)}


def server_summaries(request: Request, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """``server_summary`` for a page of (uuid, name) rows, the link prefixes built once."""
    self_prefix, bookmark_prefix = link_prefixes(request, "servers")
    return [
        {
            "id": uuid,
            "name": name,
            "links": [
                {"rel": "self", "href": self_prefix + uuid},
                {"rel": "bookmark", "href": bookmark_prefix + uuid},
            ],
        }
        for uuid, name in rows
    ]


# 2.98: the standard image properties (Nova's ``ImageMetaProps`` fields and their legacy names)
# that ``image_<name>`` system metadata keeps; other image properties are not shown.
_STANDARD_IMAGE_PROPS = frozenset(
    """hw_architecture hw_emulation_architecture hw_auto_disk_config hw_boot_menu hw_cdrom_bus
    hw_cpu_cores hw_cpu_sockets hw_cpu_max_cores hw_cpu_max_sockets hw_cpu_max_threads hw_cpu_policy
    hw_cpu_thread_policy hw_cpu_realtime_mask hw_cpu_threads hw_device_id hw_disk_bus hw_disk_type
    hw_floppy_bus hw_firmware_type hw_firmware_stateless hw_input_bus hw_ipxe_boot hw_locked_memory
    hw_machine_type hw_mem_encryption hw_mem_encryption_model hw_mem_page_size hw_numa_nodes
    hw_numa_cpus hw_numa_mem hw_pci_numa_affinity_policy hw_pointer_model hw_pmu hw_qemu_guest_agent
    hw_rescue_bus hw_rescue_device hw_rng_model hw_time_hpet hw_serial_port_count hw_scsi_model
    hw_video_model hw_video_ram hw_vif_model hw_viommu_model hw_vm_mode hw_watchdog_action
    hw_vif_multiqueue_enabled hw_tpm_model hw_tpm_version hw_ephemeral_encryption
    hw_ephemeral_encryption_format hw_ephemeral_encryption_secret_uuid hw_virtio_packed_ring
    hw_maxphysaddr_mode hw_maxphysaddr_bits hw_sound_model hw_usb_model hw_redirected_usb_ports
    img_bittorrent img_bdm_v2 img_block_device_mapping img_cache_in_nova img_compression_level
    img_hv_requested_version img_hv_type img_config_drive img_linked_clone img_mappings img_owner_id
    img_root_device_name img_use_agent img_version img_signature img_signature_hash_method
    img_signature_certificate_uuid img_signature_key_type img_hide_hypervisor_id os_admin_user
    os_command_line os_distro os_require_quiesce os_secure_boot os_skip_agent_inject_files_at_boot
    os_skip_agent_inject_ssh os_type traits_required
    architecture owner_id vmware_disktype vmware_image_version vmware_ostype auto_disk_config
    ipxe_boot xenapi_device_id xenapi_image_compression_level vmware_linked_clone xenapi_use_agent
    xenapi_skip_agent_inject_ssh xenapi_skip_agent_inject_files_at_boot cache_in_nova vm_mode
    bittorrent mappings block_device_mapping bdm_v2 root_device_name hypervisor_version_requires
    hypervisor_type""".split()
)


def image_properties(inst: Instance) -> dict[str, Any]:
    """2.98: ``image.properties``, the standard properties of the boot image as the server keeps them."""
    out: dict[str, Any] = {}
    for key, value in (inst.system_metadata or {}).items():
        if key.startswith("image_") and key[6:] in _STANDARD_IMAGE_PROPS and value is not None:
            out[key[6:]] = value
    return out


def _image(request: Request, inst: Instance, version: Version) -> Any:
    if not inst.image_ref:
        return ""  # boot from volume
    link = compute_links(request, "images", inst.image_ref)[1]
    out: dict[str, Any] = {"id": inst.image_ref, "links": [link]}
    if version >= V(2, 98):  # 2.98: the image's standard properties
        out["properties"] = image_properties(inst)
    return out


def shows_scheduler_hints(version: Version) -> bool:
    """2.100: server views carry ``scheduler_hints`` (lists load them only then)."""
    return version >= V(2, 100)


def _flavor(request: Request, inst: Instance, version: Version) -> dict[str, Any]:
    snap = inst.flavor or {}
    if version < V(2, 47):
        return {"id": inst.flavor_id, "links": [compute_links(request, "flavors", inst.flavor_id)[1]]}
    # 2.47: the flavor embedded as it was at boot
    return {
        "vcpus": snap.get("vcpus", inst.vcpus),
        "ram": snap.get("memory_mb", inst.memory_mb),
        "disk": snap.get("root_gb", inst.root_gb),
        "ephemeral": snap.get("ephemeral_gb", inst.ephemeral_gb),
        "swap": snap.get("swap") or 0,
        "original_name": snap.get("name", ""),
        "extra_specs": dict(snap.get("extra_specs") or {}),
    }


def _fault(inst: Instance, extras: ServerExtras, ctx: RequestContext) -> dict[str, Any] | None:
    fault = extras.fault
    if fault is None or status(inst) not in ("ERROR", "DELETED"):
        return None
    out: dict[str, Any] = {"code": fault.code, "created": isotime(fault.created_at), "message": fault.message}
    if ctx.is_admin or fault.code != 500:
        out["details"] = fault.details or ""
    return out


def _admin_attrs(inst: Instance, version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "OS-EXT-SRV-ATTR:host": inst.host,
        "OS-EXT-SRV-ATTR:instance_name": instance_name(inst),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": inst.node,
    }
    if version >= V(2, 3):  # 2.3: more extended attributes
        out.update(
            {
                "OS-EXT-SRV-ATTR:hostname": inst.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": inst.kernel_id or "",
                "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                "OS-EXT-SRV-ATTR:ramdisk_id": inst.ramdisk_id or "",
                "OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                "OS-EXT-SRV-ATTR:root_device_name": inst.root_device_name,
                "OS-EXT-SRV-ATTR:user_data": inst.user_data,
            }
        )
    return out


def _base(request: Request, inst: Instance, extras: ServerExtras, version: Version) -> dict[str, Any]:
    building = inst.vm_state == VmState.BUILDING
    return {
        "id": inst.uuid,
        "name": inst.display_name,
        "status": status(inst),
        "tenant_id": inst.project_id,
        "user_id": inst.user_id,
        "metadata": dict(extras.metadata),
        "hostId": host_id(inst.project_id, inst.host),
        "image": _image(request, inst, version),
        "flavor": _flavor(request, inst, version),
        "created": isotime(inst.created_at),
        "updated": isotime(inst.updated_at),
        "addresses": {} if building else extras.addresses,
        "accessIPv4": inst.access_ip_v4 or "",
        "accessIPv6": inst.access_ip_v6 or "",
        "links": compute_links(request, "servers", inst.uuid),
        "OS-DCF:diskConfig": "AUTO" if inst.auto_disk_config else "MANUAL",
        "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
        "config_drive": inst.config_drive or "",
        "key_name": inst.key_name,
        "OS-SRV-USG:launched_at": usage_time(inst.launched_at),
        "OS-SRV-USG:terminated_at": usage_time(inst.terminated_at),
        "OS-EXT-STS:task_state": inst.task_state,
        "OS-EXT-STS:vm_state": inst.vm_state,
        "OS-EXT-STS:power_state": inst.power_state,
        "os-extended-volumes:volumes_attached": [
            {k: v for k, v in vol.items() if k != "delete_on_termination" or version >= V(2, 3)}  # 2.3
            for vol in extras.volumes_attached
        ],
    }


def server_detail(
    request: Request,
    inst: Instance,
    extras: ServerExtras,
    *,
    version: Version,
    ctx: RequestContext,
    show: bool = False,
) -> dict[str, Any]:
    """One server as GET /servers/{id} (``show=True``) or an item of /servers/detail shows it."""
    out = _base(request, inst, extras, version)
    if extras.security_groups:  # from the ports' groups: no ports (or groups), no key
        out["security_groups"] = [{"name": n} for n in dict.fromkeys(extras.security_groups)]
    if status(inst) in PROGRESS_STATUSES:
        out["progress"] = inst.progress or 0
    fault = _fault(inst, extras, ctx)
    if fault is not None:
        out["fault"] = fault
    if ctx.is_admin:
        out.update(_admin_attrs(inst, version))
    if version >= V(2, 9):  # 2.9: locked
        out["locked"] = bool(inst.locked)
    if version >= V(2, 16) and ctx.is_admin:  # 2.16: host_status (admin policy)
        out["host_status"] = (
            extras.host_status if extras.host_status is not None else ("UP" if inst.host else "")
        )
    if version >= V(2, 19):  # 2.19: description
        out["description"] = inst.display_description
    if version >= V(2, 26):  # 2.26: tags
        out["tags"] = list(extras.tags)
    if version >= V(2, 63):  # 2.63: trusted image certificates
        out["trusted_image_certificates"] = list(inst.trusted_certs) if inst.trusted_certs else None
    if version >= V(2, 71) and show:  # 2.71: server groups (show, update, rebuild only)
        out["server_groups"] = list(extras.server_groups)
    if version >= V(2, 73):  # 2.73: locked reason
        out["locked_reason"] = inst.locked_reason if inst.locked else None
    if version >= V(2, 90):  # 2.90: hostname for everyone
        out["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
    if version >= V(2, 96):  # 2.96: the AZ the user asked for
        out["pinned_availability_zone"] = inst.requested_availability_zone
    if shows_scheduler_hints(version):  # 2.100: the hints the server was created with
        out["scheduler_hints"] = dict(extras.scheduler_hints or {})
    return out


# What PUT /servers/{id} leaves out before 2.75 (Nova's reduced update view).
_NOT_IN_UPDATE = (
    "key_name",
    "security_groups",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "OS-EXT-AZ:availability_zone",
    "config_drive",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
    "host_status",
)


def server_update_view(
    request: Request, inst: Instance, extras: ServerExtras, *, version: Version, ctx: RequestContext
) -> dict[str, Any]:
    """PUT's answer: the show view; before 2.75 without the extension attributes."""
    out = server_detail(request, inst, extras, version=version, ctx=ctx, show=True)
    if version >= V(2, 75):  # 2.75: update answers with the same fields as show
        return out
    for key in _NOT_IN_UPDATE:
        out.pop(key, None)
    for key in [
        k
        for k in out
        if k.startswith("OS-EXT-SRV-ATTR:") and not (version >= V(2, 90) and k.endswith(":hostname"))
    ]:
        out.pop(key)
    out["addresses"] = {
        net: [{"version": a["version"], "addr": a["addr"]} for a in addrs]
        for net, addrs in out["addresses"].items()
    }
    return out


def server_rebuild_view(
    request: Request,
    inst: Instance,
    extras: ServerExtras,
    *,
    version: Version,
    ctx: RequestContext,
    admin_pass: str,
) -> dict[str, Any]:
    """The rebuild answer: the update view plus key_name (2.54), user_data (2.57) and adminPass."""
    out = server_update_view(request, inst, extras, version=version, ctx=ctx)
    if version >= V(2, 54):  # 2.54: key_name in the rebuild answer
        out["key_name"] = inst.key_name
    if version >= V(2, 57):  # 2.57: user_data in the rebuild answer
        out["user_data"] = inst.user_data
    if version >= V(2, 75):  # 2.75: show's fields, but user_data only as the plain key
        out.pop("OS-EXT-SRV-ATTR:user_data", None)
    out["adminPass"] = admin_pass
    return out


def create_response(
    request: Request,
    instance_uuid: str,
    *,
    admin_pass: str,
    auto_disk_config: bool,
    security_groups: list[dict[str, Any]],
) -> dict[str, Any]:
    """The 202 body of POST /servers (§1.3 step 12)."""
    return {
        "server": {
            "id": instance_uuid,
            "links": compute_links(request, "servers", instance_uuid),
            "OS-DCF:diskConfig": "AUTO" if auto_disk_config else "MANUAL",
            "security_groups": security_groups,
            "adminPass": admin_pass,
        }
    }

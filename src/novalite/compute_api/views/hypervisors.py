"""The hypervisor representation per microversion (§6.12). Every version gate for hypervisors'
output is here: 2.28 ``cpu_info`` as an object, 2.53 uuid ids, 2.75 ``servers`` always when asked
for, 2.88 no resource fields and ``uptime`` in detail and show."""

from __future__ import annotations

import json
from typing import Any

from novalite.api.microversion import V, Version
from novalite.db.base import utcnow
from novalite.services.hypervisors import Node
from novalite.services.zones import service_is_up

_STATISTICS = (
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "free_ram_mb",
    "free_disk_gb",
    "current_workload",
    "running_vms",
    "disk_available_least",
)


def uptime(node: Node) -> str | None:
    svc = node.service
    if svc is None:
        return None
    now = utcnow()
    up = now - svc.created_at
    hours, rest = divmod(int(up.total_seconds()) % 86400, 3600)
    return (
        f" {now:%H:%M:%S} up {up.days} days, {hours:2d}:{rest // 60:02d},  1 users,  "
        "load average: 0.00, 0.00, 0.00"
    )


def _resources(version: Version, node: Node) -> dict[str, Any]:
    n = node.node
    vcpus_used = node.used.get("VCPU", 0)
    mem_used, disk_used = node.used.get("MEMORY_MB", 0), node.used.get("DISK_GB", 0)
    body: dict[str, Any] = {
        "vcpus": n.vcpus,
        "memory_mb": n.memory_mb,
        "local_gb": n.local_gb,
        "vcpus_used": vcpus_used,
        "memory_mb_used": mem_used,
        "local_gb_used": disk_used,
        "free_ram_mb": n.memory_mb - mem_used,
        "free_disk_gb": n.local_gb - disk_used,
        "current_workload": node.workload,
        "running_vms": node.running_vms,
        "disk_available_least": n.disk_available_least
        if n.disk_available_least is not None
        else n.local_gb - disk_used,
    }
    # 2.28: cpu_info is an object (a JSON string before)
    body["cpu_info"] = dict(n.cpu_info or {}) if version >= V(2, 28) else json.dumps(n.cpu_info or {})
    return body


def hypervisor_view(
    version: Version, node: Node, *, detail: bool, down_time: int, with_servers: bool = False
) -> dict[str, Any]:
    """One hypervisor; ``with_servers``: the request asked for its servers."""
    n, svc = node.node, node.service
    body: dict[str, Any] = {
        "id": n.uuid if version >= V(2, 53) else n.id,  # 2.53: uuid ids
        "hypervisor_hostname": n.hypervisor_hostname,
        "state": "up" if svc is not None and service_is_up(svc, down_time) else "down",
        "status": "disabled" if svc is not None and svc.disabled else "enabled",
    }
    if detail:
        body.update(
            hypervisor_type=n.hypervisor_type, hypervisor_version=n.hypervisor_version, host_ip=n.host_ip
        )
        body["service"] = {
            "host": n.host,
            "id": (svc.uuid if version >= V(2, 53) else svc.id) if svc else None,  # 2.53: uuid ids
            "disabled_reason": svc.disabled_reason if svc else None,
        }
        if version >= V(2, 88):  # 2.88: no resource fields; uptime here
            body["uptime"] = uptime(node)
        else:
            body.update(_resources(version, node))
    if node.servers is not None:
        body["servers"] = node.servers
    elif with_servers and version >= V(2, 75):  # 2.75: servers always
        body["servers"] = []
    return body


def page_marker(version: Version, node: Node) -> Any:
    """What ``hypervisors_links`` pages by."""
    return node.node.uuid if version >= V(2, 53) else node.node.id  # 2.53: uuid ids


def uptime_view(version: Version, node: Node, *, down_time: int) -> dict[str, Any]:
    """``/os-hypervisors/{id}/uptime`` (before 2.88)."""
    body = hypervisor_view(version, node, detail=False, down_time=down_time)
    body["uptime"] = uptime(node)
    return {"hypervisor": body}


def statistics_view(nodes: list[Node]) -> dict[str, Any]:
    """``/os-hypervisors/statistics`` (before 2.88): the resource fields summed over the nodes."""
    totals = dict.fromkeys(_STATISTICS, 0)
    for node in nodes:
        res = _resources(V(2, 1), node)
        for key in totals:
            totals[key] += int(res[key])
    return {"hypervisor_statistics": {"count": len(nodes), **totals}}

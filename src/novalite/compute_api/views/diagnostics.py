"""Server diagnostics per microversion.

2.48 made them a fixed shape: every key present, null when the driver does not know it.
Before 2.48 the answer was the driver's own flat dict; a libvirt host's keys are
``cpu<N>_time``, ``memory``/``memory-actual`` (KiB), ``vd<x>_read|_read_req|_write|_write_req|
_errors`` per disk and ``tap<N>_rx|_rx_packets|_rx_errors|_rx_drop|_tx|...`` per port, which is
what this derives from the same report.
"""

from __future__ import annotations

from typing import Any

FIELDS = (
    "state",
    "driver",
    "hypervisor",
    "hypervisor_os",
    "uptime",
    "config_drive",
    "num_cpus",
    "num_nics",
    "num_disks",
)
CPU = ("id", "time", "utilisation")
NIC = (
    "mac_address",
    "rx_octets",
    "rx_errors",
    "rx_drop",
    "rx_packets",
    "rx_rate",
    "tx_octets",
    "tx_errors",
    "tx_drop",
    "tx_packets",
    "tx_rate",
)
DISK = ("read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count")


def _only(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: item.get(k) for k in keys}


def diagnostics_view(report: dict[str, Any]) -> dict[str, Any]:
    """2.48 and later."""
    out = {k: report.get(k) for k in FIELDS}
    out["cpu_details"] = [_only(c, CPU) for c in report.get("cpu_details") or []]
    out["nic_details"] = [_only(n, NIC) for n in report.get("nic_details") or []]
    out["disk_details"] = [_only(d, DISK) for d in report.get("disk_details") or []]
    memory = report.get("memory_details") or {}
    out["memory_details"] = {"maximum": memory.get("maximum"), "used": memory.get("used")}
    return out


def legacy_diagnostics_view(report: dict[str, Any]) -> dict[str, Any]:
    """Before 2.48: the flat dict a libvirt host answers with."""
    out: dict[str, Any] = {}
    for cpu in report.get("cpu_details") or []:
        out[f"cpu{cpu.get('id', 0)}_time"] = cpu.get("time")
    for index, disk in enumerate(report.get("disk_details") or []):
        name = "vd" + chr(ord("a") + index % 26)
        out[f"{name}_read"] = disk.get("read_bytes")
        out[f"{name}_read_req"] = disk.get("read_requests")
        out[f"{name}_write"] = disk.get("write_bytes")
        out[f"{name}_write_req"] = disk.get("write_requests")
        out[f"{name}_errors"] = disk.get("errors_count")
    for index, nic in enumerate(report.get("nic_details") or []):
        name = f"tap{index}"
        for key, field in (("rx", "rx_octets"), ("tx", "tx_octets")):
            out[f"{name}_{key}"] = nic.get(field)
        for key in ("rx_packets", "rx_errors", "rx_drop", "tx_packets", "tx_errors", "tx_drop"):
            out[f"{name}_{key}"] = nic.get(key)
    memory = report.get("memory_details") or {}
    if memory.get("maximum") is not None:
        out["memory"] = int(memory["maximum"]) * 1024
        out["memory-actual"] = int(memory["maximum"]) * 1024
    if memory.get("used") is not None:
        out["memory-rss"] = int(memory["used"]) * 1024
    return out

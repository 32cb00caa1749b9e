"""ComputeCapabilitiesFilter: flavor extra specs that name host capabilities must match.

Checked keys: ``capabilities:<attr>[:<sub>...]`` and unscoped keys naming a host attribute
(``hypervisor_type``, ``vcpus``, ``free_ram_mb``, a ``stats`` entry, ...). Other scoped keys
(``hw:``, ``quota:``, ``aggregate_instance_extra_specs:``, ...) are someone else's business.
``hw:maxphysaddr_bits`` asks for ``cpu_info.maxphysaddr.bits`` >= the value.
"""

from __future__ import annotations

from typing import Any, ClassVar

from novalite.scheduler.filters import extra_specs_ops
from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView

_MISSING = object()
_ATTRIBUTES = (
    "hypervisor_type",
    "hypervisor_version",
    "cpu_info",
    "supported_instances",
    "vcpus_total",
    "vcpus_used",
    "memory_mb_total",
    "memory_mb_used",
    "free_ram_mb",
    "free_disk_mb",
    "num_instances",
    "host",
    "node",
    "disk_gb_total",
)


def _host_value(host: HostSnapshot, path: list[str]) -> Any:
    head, rest = path[0], path[1:]
    if head in _ATTRIBUTES:
        value: Any = getattr(host, head)
    elif head in host.stats:
        value = host.stats[head]
    else:
        return _MISSING
    for part in rest:
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value)
            except ValueError:
                return _MISSING
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _maxphysaddr_ok(host: HostSnapshot, wanted: str) -> bool:
    bits = (host.cpu_info.get("maxphysaddr") or {}).get("bits") if isinstance(host.cpu_info, dict) else None
    try:
        return bits is not None and int(bits) >= int(wanted)
    except (TypeError, ValueError):
        return False


class ComputeCapabilitiesFilter:
    name: ClassVar[str] = "ComputeCapabilitiesFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        for key, requirement in spec.flavor.extra_specs.items():
            if key == "hw:maxphysaddr_bits":
                if not _maxphysaddr_ok(host, requirement):
                    return fail(f"cpu maxphysaddr bits below {requirement}")
                continue
            parts = key.split(":")
            if len(parts) > 1 and parts[0] != "capabilities":
                continue
            path = parts[1:] if parts[0] == "capabilities" else parts
            if not path:
                continue
            value = _host_value(host, path)
            if value is _MISSING:
                if parts[0] == "capabilities":
                    return fail(f"host has no capability {key}")
                continue
            if not extra_specs_ops.match(value, str(requirement)):
                return fail(f"{key}={value!r} does not satisfy {requirement!r}")
        return PASS

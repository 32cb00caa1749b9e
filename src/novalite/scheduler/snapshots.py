"""The scheduler's inputs and outputs: frozen, I/O-free snapshots.

``HostSnapshot`` is one candidate compute node as the conductor read it (capacity and usage
from placement, service state, aggregates); ``RequestView`` is what one request asks for;
``Selection`` is the plan ``runner.select_hosts`` returns: per instance the hosts in ranked
order (chosen first), plus every dropped host with the filter and reason that dropped it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.zones import DEFAULT_ZONE


@dataclass(frozen=True)
class AggregateSnapshot:
    uuid: str
    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get("availability_zone")


@dataclass(frozen=True)
class HostSnapshot:
    """One compute node. ``uuid`` is the compute node's (= its resource provider's) uuid."""

    uuid: str
    host: str
    node: str
    service_up: bool = True
    service_disabled: bool = False
    disabled_reason: str | None = None
    vcpus_total: int = 0
    vcpus_used: int = 0
    cpu_allocation_ratio: float = 1.0
    memory_mb_total: int = 0
    memory_mb_used: int = 0
    memory_mb_reserved: int = 0
    ram_allocation_ratio: float = 1.0
    disk_gb_total: int = 0
    disk_gb_used: int = 0
    disk_allocation_ratio: float = 1.0
    num_instances: int = 0
    failed_builds: int = 0
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 0
    cpu_info: Mapping[str, Any] = field(default_factory=dict)
    supported_instances: tuple[tuple[str, str, str], ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    aggregates: tuple[AggregateSnapshot, ...] = ()
    instance_uuids: frozenset[str] = frozenset()  # instances here that the request mentions (hints)
    allocation_request: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def free_ram_mb(self) -> float:
        return (
            self.memory_mb_total * self.ram_allocation_ratio - self.memory_mb_reserved - self.memory_mb_used
        )

    @property
    def free_disk_mb(self) -> float:
        return (self.disk_gb_total * self.disk_allocation_ratio - self.disk_gb_used) * 1024

    @property
    def free_vcpus(self) -> float:
        return self.vcpus_total * self.cpu_allocation_ratio - self.vcpus_used

    @property
    def availability_zone(self) -> str:
        for agg in self.aggregates:
            if agg.availability_zone:
                return agg.availability_zone
        return DEFAULT_ZONE

    def aggregate_metadata(self) -> dict[str, set[str]]:
        """key -> every value the host's aggregates give it."""
        out: dict[str, set[str]] = {}
        for agg in self.aggregates:
            for key, value in agg.metadata.items():
                out.setdefault(key, set()).add(value)
        return out

    def consume(self, flavor: FlavorView, *, is_bfv: bool = False) -> HostSnapshot:
        """The host after placing one more instance of ``flavor`` (used inside multi-create)."""
        return dataclasses.replace(
            self,
            vcpus_used=self.vcpus_used + flavor.vcpus,
            memory_mb_used=self.memory_mb_used + flavor.memory_mb,
            disk_gb_used=self.disk_gb_used + flavor.disk_gb(is_bfv),
            num_instances=self.num_instances + 1,
        )

    def fits(self, flavor: FlavorView, *, is_bfv: bool = False) -> bool:
        return (
            self.free_vcpus >= flavor.vcpus
            and self.free_ram_mb >= flavor.memory_mb
            and self.free_disk_mb >= flavor.disk_gb(is_bfv) * 1024
        )


# The scheduler sees a flavor as the snapshot the RequestSpec carries (``disk_gb`` included).
FlavorView = FlavorSnapshot


@dataclass(frozen=True)
class GroupView:
    """A server group as the filters see it: policy, rules and where its members run."""

    uuid: str
    policy: str
    rules: Mapping[str, Any] = field(default_factory=dict)
    member_hosts: Mapping[str, str] = field(default_factory=dict)  # member instance uuid -> host

    @property
    def hosts(self) -> set[str]:
        return set(self.member_hosts.values())

    def members_on(self, host: str, *, excluding: str | None = None) -> int:
        return sum(1 for uuid, h in self.member_hosts.items() if h == host and uuid != excluding)

    def with_member(self, instance_uuid: str, host: str) -> GroupView:
        return dataclasses.replace(self, member_hosts={**self.member_hosts, instance_uuid: host})


@dataclass(frozen=True)
class RequestView:
    """One scheduling request: the first RequestSpec (``service.request_view``) plus every instance
    uuid to place."""

    instance_uuids: tuple[str, ...]
    flavor: FlavorView
    project_id: str = ""
    image_properties: Mapping[str, Any] = field(default_factory=dict)
    is_bfv: bool = False
    availability_zone: str | None = None
    force_hosts: tuple[str, ...] = ()
    force_nodes: tuple[str, ...] = ()
    requested_host: str | None = None
    requested_node: str | None = None
    hints: Mapping[str, Any] = field(default_factory=dict)
    group: GroupView | None = None
    instance_uuid: str = ""  # the one being placed now (the runner sets it per instance)
    ignore_hosts: tuple[str, ...] = ()  # a move's source host (unless it may stay there)

    def hint_list(self, name: str) -> list[str]:
        value = self.hints.get(name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


@dataclass(frozen=True)
class Drop:
    filter: str
    host: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """Per instance, hosts in the order to try (chosen first) and the alternates for reschedules
    (other hosts, none chosen for the request); ``error`` when some instance got no host."""

    ranked: tuple[tuple[HostSnapshot, ...], ...]
    dropped: tuple[Drop, ...] = ()
    error: str | None = None
    alternates: tuple[tuple[HostSnapshot, ...], ...] = ()  # per instance, up to max_attempts - 1

    @property
    def chosen(self) -> tuple[HostSnapshot, ...]:
        return tuple(r[0] for r in self.ranked)

    def summary(self, extra: Mapping[str, int] | None = None) -> str:
        """ "ComputeFilter: 1 host; placement: 2 hosts" -- distinct hosts dropped per filter."""
        counts: Counter[str] = Counter()
        for f, hosts in _hosts_by_filter(self.dropped).items():
            counts[f] += len(hosts)
        for f, n in (extra or {}).items():
            counts[f] += n
        return "; ".join(f"{f}: {n} host{'s' if n != 1 else ''}" for f, n in counts.items() if n)


def _hosts_by_filter(dropped: tuple[Drop, ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    seen: set[str] = set()
    for d in dropped:  # a host counts once, under the first filter that dropped it
        if d.host in seen:
            continue
        seen.add(d.host)
        out.setdefault(d.filter, set()).add(d.host)
    return out

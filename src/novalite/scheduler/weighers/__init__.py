"""The weigher registry and the one place weights are normalised and combined.

``weigh_hosts``: for each weigher, raw values over the hosts are scaled to 0..1 with the
list's min/max (the weigher's ``minval`` when it has one; all equal -> 0), multiplied by the
multiplier (a host's aggregate metadata key named like the option overrides the configured
value for that host) and summed. Hosts come back sorted by weight, best first; ties keep
their input order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from novalite.scheduler.defaults import DEFAULT_WEIGHERS
from novalite.scheduler.snapshots import HostSnapshot, RequestView
from novalite.scheduler.weighers.base import Weigher
from novalite.scheduler.weighers.build_failure import BuildFailureWeigher
from novalite.scheduler.weighers.cpu import CPUWeigher
from novalite.scheduler.weighers.disk import DiskWeigher
from novalite.scheduler.weighers.num_instances import NumInstancesWeigher
from novalite.scheduler.weighers.ram import RAMWeigher
from novalite.scheduler.weighers.soft_affinity import ServerGroupSoftAffinityWeigher
from novalite.scheduler.weighers.soft_anti_affinity import ServerGroupSoftAntiAffinityWeigher

REGISTRY: dict[str, type] = {
    "RAMWeigher": RAMWeigher,
    "CPUWeigher": CPUWeigher,
    "DiskWeigher": DiskWeigher,
    "NumInstancesWeigher": NumInstancesWeigher,
    "ServerGroupSoftAffinityWeigher": ServerGroupSoftAffinityWeigher,
    "ServerGroupSoftAntiAffinityWeigher": ServerGroupSoftAntiAffinityWeigher,
    "BuildFailureWeigher": BuildFailureWeigher,
}


class UnknownWeigher(ValueError):
    pass


@dataclass(frozen=True)
class WeigherConfig:
    weigher: Weigher
    multiplier: float


def load(names: Sequence[str], multipliers: Mapping[str, float] | None = None) -> list[WeigherConfig]:
    """Enabled weighers with their multipliers (``multipliers`` keyed by weigher name or option)."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UnknownWeigher(
            f"unknown scheduler weigher(s) {', '.join(unknown)}; known: {', '.join(sorted(REGISTRY))}"
        )
    out = []
    for name in names:
        w: Weigher = REGISTRY[name]()
        m = (multipliers or {}).get(name, (multipliers or {}).get(w.option, w.default_multiplier))
        out.append(WeigherConfig(w, float(m)))
    return out


def _normalise(values: list[float], minval: float | None) -> list[float]:
    lo = min(values) if minval is None else minval
    hi = max(values)
    if hi == lo:
        return [0.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


def _multiplier(cfg: WeigherConfig, host: HostSnapshot) -> float:
    override = host.aggregate_metadata().get(cfg.weigher.option)
    if override:
        try:
            return min(float(v) for v in override)
        except ValueError:
            pass
    return cfg.multiplier


def weigh_hosts(
    hosts: Sequence[HostSnapshot], spec: RequestView, weighers: Sequence[WeigherConfig]
) -> list[tuple[HostSnapshot, float]]:
    """Hosts with their combined weight, best first (stable for ties)."""
    if not hosts:
        return []
    totals = [0.0] * len(hosts)
    with_aggregates = any(h.aggregates for h in hosts)  # only they may override a multiplier
    for cfg in weighers:
        if cfg.multiplier == 0 and not (
            with_aggregates and any(cfg.weigher.option in a.metadata for h in hosts for a in h.aggregates)
        ):
            continue  # weighs nothing anywhere
        weigh = cfg.weigher.weigh
        raw = [weigh(h, spec) for h in hosts]
        lo = min(raw) if cfg.weigher.minval is None else cfg.weigher.minval
        hi = max(raw)
        if hi == lo:
            continue  # every host normalises to 0
        span = hi - lo
        if with_aggregates:
            for i, h in enumerate(hosts):
                totals[i] += _multiplier(cfg, h) * ((raw[i] - lo) / span)
        else:
            m = cfg.multiplier
            for i, v in enumerate(raw):
                totals[i] += m * ((v - lo) / span)
    order = sorted(range(len(hosts)), key=lambda i: -totals[i])
    return [(hosts[i], totals[i]) for i in order]


__all__ = ["DEFAULT_WEIGHERS", "REGISTRY", "UnknownWeigher", "WeigherConfig", "load", "weigh_hosts"]

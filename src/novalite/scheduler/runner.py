"""The pure scheduler: ``select_hosts(spec, hosts) -> Selection``. No I/O, no clock.

For each instance of the request, in order::

    hosts ──► forced? ──yes──► name match only (filters skipped)
                │no
                ▼
         requested host/node ──► enabled filters in order ──► fits? (resources left after
                                 (first "no" drops the host,   the earlier instances of
                                  reason kept)                 this request) ──► weigh
                                                                                  │
         pick: random among the best ``host_subset_size``, the rest in weighed order
                                                                                  ▼
                consume the chosen host's resources, add it to the group's hosts (so
                affinity / anti-affinity hold inside one multi-create), next instance

An instance left without hosts stops the plan: ``Selection.error`` carries the reason and
``dropped`` tells which filter removed which host. The commit step (``service``) claims in
ranked order and uses the rest of the list for alternates (``alternates``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from novalite.scheduler import filters as filter_registry
from novalite.scheduler import weighers as weigher_registry
from novalite.scheduler.filters.base import Filter
from novalite.scheduler.snapshots import Drop, HostSnapshot, RequestView, Selection
from novalite.scheduler.weighers import WeigherConfig

NOT_ENOUGH_HOSTS = "There are not enough hosts available."


def _forced(spec: RequestView, hosts: Sequence[HostSnapshot], drops: list[Drop]) -> list[HostSnapshot]:
    want_hosts = {h.lower() for h in spec.force_hosts}
    want_nodes = {n.lower() for n in spec.force_nodes}
    out = []
    for h in hosts:
        if (want_hosts and h.host.lower() not in want_hosts) or (
            want_nodes and h.node.lower() not in want_nodes
        ):
            drops.append(Drop("forced_host", h.host, "not the forced host/node"))
        else:
            out.append(h)
    return out


def _filtered(
    spec: RequestView, hosts: Sequence[HostSnapshot], filters: Sequence[Filter], drops: list[Drop]
) -> list[HostSnapshot]:
    out = []
    for h in hosts:
        if h.host in spec.ignore_hosts:
            drops.append(Drop("ignore_hosts", h.host, "the host the server moves from"))
            continue
        if spec.requested_host and h.host != spec.requested_host:
            drops.append(Drop("requested_destination", h.host, "not the requested host"))
            continue
        if spec.requested_node and h.node != spec.requested_node:
            drops.append(Drop("requested_destination", h.host, "not the requested node"))
            continue
        for f in filters:
            verdict = f.passes(h, spec)
            if not verdict.ok:
                drops.append(Drop(f.name, h.host, verdict.reason))
                break
        else:
            out.append(h)
    return out


def _fitting(spec: RequestView, hosts: Sequence[HostSnapshot], drops: list[Drop]) -> list[HostSnapshot]:
    out = []
    for h in hosts:
        if h.fits(spec.flavor, is_bfv=spec.is_bfv):
            out.append(h)
        else:
            drops.append(Drop("placement", h.host, "not enough resources left"))
    return out


def _pick(ranked: list[HostSnapshot], subset_size: int, rng: random.Random) -> list[HostSnapshot]:
    if subset_size <= 1 or len(ranked) <= 1:
        return ranked
    chosen = rng.randrange(min(subset_size, len(ranked)))
    return [ranked[chosen], *ranked[:chosen], *ranked[chosen + 1 :]]


def rank_for_instance(
    spec: RequestView,
    hosts: Sequence[HostSnapshot],
    *,
    filters: Sequence[Filter],
    weighers: Sequence[WeigherConfig],
    drops: list[Drop],
    subset_size: int = 1,
    rng: random.Random | None = None,
) -> list[HostSnapshot]:
    """Hosts acceptable for ``spec.instance_uuid``, in the order to try them."""
    if spec.force_hosts or spec.force_nodes:
        passing = _forced(spec, hosts, drops)
    else:
        passing = _filtered(spec, hosts, filters, drops)
    passing = _fitting(spec, passing, drops)
    ranked = [h for h, _w in weigher_registry.weigh_hosts(passing, spec, weighers)]
    return _pick(ranked, subset_size, rng or random.Random())


def select_hosts(
    spec: RequestView,
    hosts: Sequence[HostSnapshot],
    *,
    filters: Sequence[Filter] | None = None,
    weighers: Sequence[WeigherConfig] | None = None,
    host_subset_size: int = 1,
    max_attempts: int = 3,
    rng: random.Random | None = None,
) -> Selection:
    """Plan every instance of ``spec`` onto ``hosts`` (all-or-nothing: see ``Selection.error``)."""
    filters = filter_registry.load(filter_registry.DEFAULT_FILTERS) if filters is None else filters
    weighers = weigher_registry.load(weigher_registry.DEFAULT_WEIGHERS) if weighers is None else weighers
    state = {h.uuid: h for h in hosts}
    group = spec.group
    drops: list[Drop] = []
    plans: list[tuple[HostSnapshot, ...]] = []
    for uuid in spec.instance_uuids:
        current = dataclasses.replace(spec, instance_uuid=uuid, group=group)
        instance_drops: list[Drop] = []
        ranked = rank_for_instance(
            current,
            list(state.values()),
            filters=filters,
            weighers=weighers,
            drops=instance_drops,
            subset_size=host_subset_size,
            rng=rng,
        )
        if not ranked:
            return Selection(ranked=tuple(plans), dropped=tuple(instance_drops), error=NOT_ENOUGH_HOSTS)
        drops.extend(instance_drops)
        plans.append(tuple(ranked))
        chosen = ranked[0]
        state[chosen.uuid] = chosen.consume(spec.flavor, is_bfv=spec.is_bfv)
        if group is not None:
            group = group.with_member(uuid, chosen.host)
    taken = {r[0].host for r in plans}
    alts = tuple(tuple(alternates(r, taken, max(0, max_attempts - 1))) for r in plans)
    return Selection(ranked=tuple(plans), dropped=tuple(drops), alternates=alts)


def alternates(ranked: Sequence[HostSnapshot], chosen_hosts: set[str], count: int) -> list[HostSnapshot]:
    """Up to ``count`` other hosts from ``ranked`` (not chosen for any instance of the request)."""
    out: list[HostSnapshot] = []
    for h in ranked:
        if len(out) >= count:
            break
        if h.host not in chosen_hosts:
            out.append(h)
    return out

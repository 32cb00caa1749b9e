"""The pure scheduler on in-memory snapshots: ranking, alternates, reasons, all-or-nothing."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from novalite.scheduler import filters, runner, weighers
from novalite.scheduler.snapshots import FlavorView, GroupView, HostSnapshot, RequestView

FLAVOR = FlavorView(vcpus=1, memory_mb=1024, root_gb=10)


def host(name: str, **kw: Any) -> HostSnapshot:
    base = dict(
        uuid=f"u-{name}", host=name, node=name, vcpus_total=4, memory_mb_total=4096, disk_gb_total=100
    )
    base.update(kw)
    return HostSnapshot(**base)  # type: ignore[arg-type]


def request(n: int = 1, **kw: Any) -> RequestView:
    return RequestView(instance_uuids=tuple(f"i{k}" for k in range(n)), flavor=FLAVOR, **kw)


def select(spec: RequestView, hosts: list[HostSnapshot], **kw: Any) -> Any:
    return runner.select_hosts(spec, hosts, weighers=weighers.load(["RAMWeigher"]), **kw)


def test_ranked_by_weight_with_chosen_first() -> None:
    hosts = [host("h1", memory_mb_used=3000), host("h2"), host("h3", memory_mb_used=1000)]
    sel = select(request(), hosts)
    assert sel.error is None
    assert [x.host for x in sel.ranked[0]] == ["h2", "h3", "h1"]


def test_every_dropped_host_keeps_its_reason() -> None:
    hosts = [
        host("h1", service_up=False),
        host("h2", service_disabled=True, disabled_reason="maint"),
        host("h3"),
    ]
    sel = select(request(), hosts)
    assert [x.host for x in sel.ranked[0]] == ["h3"]
    assert {(d.filter, d.host) for d in sel.dropped} == {("ComputeFilter", "h1"), ("ComputeFilter", "h2")}
    assert all(d.reason for d in sel.dropped)


def test_no_host_gives_an_error_and_a_per_filter_summary() -> None:
    hosts = [host("h1", service_up=False), host("h2", memory_mb_used=4000)]
    sel = select(request(), hosts)
    assert sel.error == runner.NOT_ENOUGH_HOSTS and sel.ranked == ()
    assert sel.summary({"placement": 3}) == "ComputeFilter: 1 host; placement: 4 hosts"


def test_multi_create_consumes_and_is_all_or_nothing() -> None:
    hosts = [host("h1", memory_mb_total=2048), host("h2", memory_mb_total=1024)]
    sel = select(request(4), hosts)
    assert sel.error is not None  # room for three only: nobody gets a host
    assert "placement" in sel.summary()
    ok = select(request(3), hosts)
    assert ok.error is None
    assert sorted(r[0].host for r in ok.ranked) == ["h1", "h1", "h2"]


def test_anti_affinity_holds_inside_one_multi_create() -> None:
    group = GroupView("g", "anti-affinity")
    sel = select(request(3, group=group), [host("h1"), host("h2"), host("h3")])
    assert sorted(r[0].host for r in sel.ranked) == ["h1", "h2", "h3"]
    too_many = select(request(4, group=group), [host("h1"), host("h2"), host("h3")])
    assert too_many.error is not None
    assert "ServerGroupAntiAffinityFilter: 3 hosts" in too_many.summary()


def test_affinity_follows_the_first_member() -> None:
    sel = select(request(3, group=GroupView("g", "affinity")), [host("h1"), host("h2", memory_mb_used=100)])
    assert {r[0].host for r in sel.ranked} == {"h1"}


def test_forced_host_skips_filters() -> None:
    hosts = [host("h1", service_up=False), host("h2")]
    sel = select(request(force_hosts=("H1",)), hosts)
    assert [x.host for x in sel.ranked[0]] == ["h1"]


def test_requested_destination_still_filters() -> None:
    hosts = [host("h1", service_up=False), host("h2")]
    sel = select(request(requested_host="h1"), hosts)
    assert sel.error is not None
    assert {d.filter for d in sel.dropped} == {"ComputeFilter", "requested_destination"}


def test_alternates_exclude_chosen_hosts_and_are_capped() -> None:
    hosts = [host(f"h{i}", memory_mb_used=i * 100) for i in range(1, 6)]
    sel = select(request(2), hosts, max_attempts=3)
    assert [x.host for x in sel.chosen] == ["h1", "h2"]
    assert [[a.host for a in alts] for alts in sel.alternates] == [["h3", "h4"], ["h3", "h4"]]
    assert select(request(1), hosts, max_attempts=1).alternates == ((),)


def test_host_subset_size_picks_among_the_best() -> None:
    hosts = [host("h1"), host("h2", memory_mb_used=10), host("h3", memory_mb_used=3000)]
    picks = {
        select(request(), hosts, host_subset_size=2, rng=random.Random(seed)).ranked[0][0].host
        for seed in range(20)
    }
    assert picks == {"h1", "h2"}


def test_default_filters_come_from_the_registry() -> None:
    assert [f.name for f in filters.load(filters.DEFAULT_FILTERS)] == list(filters.DEFAULT_FILTERS)
    assert dataclasses.is_dataclass(request())


def test_host_choice_to_dict_matches_asdict_and_round_trips() -> None:
    """``HostChoice.to_dict`` is written out by hand; it must stay what ``asdict`` gives (a field
    added to the class and forgotten there fails here) and not share the allocation dicts."""
    import dataclasses

    from novalite.scheduler.service import HostChoice

    dest = HostChoice("host1", "node1", "uuid-1", {"rp-1": {"VCPU": 2, "MEMORY_MB": 512}}, "az1")
    out = dest.to_dict()
    assert out == dataclasses.asdict(dest)
    assert HostChoice.from_dict(out) == dest
    out["allocation_request"]["rp-1"]["VCPU"] = 99
    assert dest.allocation_request["rp-1"]["VCPU"] == 2

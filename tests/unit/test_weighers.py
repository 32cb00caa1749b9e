"""Table-driven checks of the weighers and of the one normalisation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from novalite.scheduler import weighers
from novalite.scheduler.snapshots import AggregateSnapshot, FlavorView, GroupView, HostSnapshot, RequestView

BASE = HostSnapshot(uuid="n", host="h", node="h", vcpus_total=8, memory_mb_total=8192, disk_gb_total=100)
SPEC = RequestView(instance_uuids=("me",), instance_uuid="me", flavor=FlavorView(vcpus=1, memory_mb=512))


def h(name: str, **kw: Any) -> HostSnapshot:
    return dataclasses.replace(BASE, uuid=name, host=name, node=name, **kw)


def ranking(
    names: list[str],
    hosts: list[HostSnapshot],
    spec: RequestView = SPEC,
    multipliers: dict[str, float] | None = None,
) -> list[str]:
    configs = weighers.load(names, multipliers)
    return [x.host for x, _w in weighers.weigh_hosts(hosts, spec, configs)]


GROUP = GroupView("g", "soft-affinity", {}, {"a": "h2", "b": "h2", "c": "h3"})
CASES = [
    # (weighers, multipliers, hosts, spec, expected order)
    (["RAMWeigher"], None, [h("h1", memory_mb_used=4096), h("h2")], SPEC, ["h2", "h1"]),
    (["RAMWeigher"], {"RAMWeigher": -1.0}, [h("h1", memory_mb_used=4096), h("h2")], SPEC, ["h1", "h2"]),
    (["CPUWeigher"], None, [h("h1", vcpus_used=6), h("h2", vcpus_used=1)], SPEC, ["h2", "h1"]),
    (["DiskWeigher"], None, [h("h1", disk_gb_used=90), h("h2", disk_gb_used=10)], SPEC, ["h2", "h1"]),
    (
        ["NumInstancesWeigher"],
        None,
        [h("h1", num_instances=5), h("h2")],
        SPEC,
        ["h1", "h2"],
    ),  # 0.0: ties keep order
    (
        ["NumInstancesWeigher"],
        {"num_instances_weight_multiplier": -1.0},
        [h("h1", num_instances=5), h("h2")],
        SPEC,
        ["h2", "h1"],
    ),
    (
        ["BuildFailureWeigher", "RAMWeigher"],
        None,
        [h("h1", failed_builds=1), h("h2", memory_mb_used=8000)],
        SPEC,
        ["h2", "h1"],
    ),
    (
        ["ServerGroupSoftAffinityWeigher"],
        None,
        [h("h1"), h("h2"), h("h3")],
        dataclasses.replace(SPEC, group=GROUP),
        ["h2", "h3", "h1"],
    ),
    (
        ["ServerGroupSoftAntiAffinityWeigher"],
        None,
        [h("h2"), h("h3"), h("h1")],
        dataclasses.replace(SPEC, group=dataclasses.replace(GROUP, policy="soft-anti-affinity")),
        ["h1", "h3", "h2"],
    ),
    (
        ["ServerGroupSoftAffinityWeigher"],
        None,
        [h("h1"), h("h2")],
        SPEC,
        ["h1", "h2"],
    ),  # no group: no opinion
    (
        ["RAMWeigher"],
        None,  # aggregate metadata overrides the multiplier for its hosts
        [
            h("h1", aggregates=(AggregateSnapshot("a", "stack", {"ram_weight_multiplier": "-1.0"}),)),
            h("h2", memory_mb_used=4096),
        ],
        SPEC,
        ["h2", "h1"],
    ),
]


@pytest.mark.parametrize(("names", "multipliers", "hosts", "spec", "expected"), CASES)
def test_weigher_order(
    names: list[str],
    multipliers: dict[str, float] | None,
    hosts: list[HostSnapshot],
    spec: RequestView,
    expected: list[str],
) -> None:
    assert ranking(names, hosts, spec, multipliers) == expected


def test_weights_are_normalised_to_the_multiplier() -> None:
    hosts = [h("h1", memory_mb_used=8192), h("h2", memory_mb_used=4096), h("h3")]
    weights = dict(
        (x.host, w)
        for x, w in weighers.weigh_hosts(hosts, SPEC, weighers.load(["RAMWeigher"], {"RAMWeigher": 2.0}))
    )
    assert weights == {"h1": 0.0, "h2": 1.0, "h3": 2.0}


def test_equal_values_weigh_zero() -> None:
    weights = [w for _x, w in weighers.weigh_hosts([h("h1"), h("h2")], SPEC, weighers.load(["CPUWeigher"]))]
    assert weights == [0.0, 0.0]


def test_unknown_weigher_is_a_clear_error() -> None:
    with pytest.raises(weighers.UnknownWeigher, match="Bogus"):
        weighers.load(["Bogus"])

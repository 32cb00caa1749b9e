"""Table-driven checks of every scheduler filter on in-memory snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from novalite.scheduler import filters
from novalite.scheduler.filters import extra_specs_ops
from novalite.scheduler.snapshots import AggregateSnapshot, FlavorView, GroupView, HostSnapshot, RequestView

HOST = HostSnapshot(
    uuid="n1",
    host="h1",
    node="h1",
    vcpus_total=8,
    memory_mb_total=4096,
    disk_gb_total=100,
    hypervisor_type="QEMU",
    hypervisor_version=8002000,
    cpu_info={"arch": "x86_64", "maxphysaddr": {"bits": 46}},
    supported_instances=(("x86_64", "qemu", "hvm"),),
    stats={"rack": "r1"},
    aggregates=(AggregateSnapshot("a1", "ssd", {"ssd": "true", "availability_zone": "az1"}),),
    instance_uuids=frozenset({"vm-a"}),
)


def spec(**kw: Any) -> RequestView:
    flavor = FlavorView(vcpus=1, memory_mb=512, root_gb=1, extra_specs=kw.pop("extra_specs", {}))
    return RequestView(instance_uuids=("me",), instance_uuid="me", flavor=flavor, **kw)


def host(**kw: Any) -> HostSnapshot:
    import dataclasses

    return dataclasses.replace(HOST, **kw)


CASES = [
    # (filter, host, spec, passes)
    ("ComputeFilter", HOST, spec(), True),
    ("ComputeFilter", host(service_up=False), spec(), False),
    ("ComputeFilter", host(service_disabled=True), spec(), False),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"capabilities:hypervisor_type": "s== QEMU"}), True),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"capabilities:hypervisor_type": "xen"}), False),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"capabilities:cpu_info:arch": "x86_64"}), True),
    (
        "ComputeCapabilitiesFilter",
        HOST,
        spec(extra_specs={"capabilities:cpu_info:arch": "<or> ppc <or> s390"}),
        False,
    ),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"vcpus_total": ">= 8"}), True),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"rack": "r2"}), False),
    (
        "ComputeCapabilitiesFilter",
        HOST,
        spec(extra_specs={"hw:cpu_policy": "dedicated"}),
        True,
    ),  # other scope
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"capabilities:nope": "1"}), False),
    ("ComputeCapabilitiesFilter", HOST, spec(extra_specs={"hw:maxphysaddr_bits": "48"}), False),
    ("ImagePropertiesFilter", HOST, spec(), True),
    ("ImagePropertiesFilter", HOST, spec(image_properties={"hw_architecture": "amd64"}), True),
    ("ImagePropertiesFilter", HOST, spec(image_properties={"hw_architecture": "aarch64"}), False),
    ("ImagePropertiesFilter", HOST, spec(image_properties={"img_hv_type": "kvm", "hw_vm_mode": "hvm"}), True),
    ("ImagePropertiesFilter", HOST, spec(image_properties={"img_hv_type": "xen"}), False),
    ("ImagePropertiesFilter", HOST, spec(image_properties={"img_hv_requested_version": ">= 9000000"}), False),
    ("ServerGroupAffinityFilter", HOST, spec(group=GroupView("g", "affinity", {}, {})), True),
    ("ServerGroupAffinityFilter", HOST, spec(group=GroupView("g", "affinity", {}, {"x": "h1"})), True),
    ("ServerGroupAffinityFilter", HOST, spec(group=GroupView("g", "affinity", {}, {"x": "h2"})), False),
    ("ServerGroupAffinityFilter", HOST, spec(group=GroupView("g", "anti-affinity", {}, {"x": "h2"})), True),
    (
        "ServerGroupAntiAffinityFilter",
        HOST,
        spec(group=GroupView("g", "anti-affinity", {}, {"x": "h1"})),
        False,
    ),
    (
        "ServerGroupAntiAffinityFilter",
        HOST,
        spec(group=GroupView("g", "anti-affinity", {}, {"x": "h2"})),
        True,
    ),
    (
        "ServerGroupAntiAffinityFilter",
        HOST,
        spec(group=GroupView("g", "anti-affinity", {}, {"me": "h1"})),
        True,
    ),
    (
        "ServerGroupAntiAffinityFilter",
        HOST,
        spec(group=GroupView("g", "anti-affinity", {"max_server_per_host": 2}, {"x": "h1"})),
        True,
    ),
    (
        "ServerGroupAntiAffinityFilter",
        HOST,
        spec(group=GroupView("g", "anti-affinity", {"max_server_per_host": 2}, {"x": "h1", "y": "h1"})),
        False,
    ),
    ("SameHostFilter", HOST, spec(hints={"same_host": ["vm-a"]}), True),
    ("SameHostFilter", HOST, spec(hints={"same_host": ["vm-b"]}), False),
    ("SameHostFilter", HOST, spec(), True),
    ("DifferentHostFilter", HOST, spec(hints={"different_host": ["vm-a", "vm-b"]}), False),
    ("DifferentHostFilter", HOST, spec(hints={"different_host": "vm-b"}), True),
    (
        "AggregateInstanceExtraSpecsFilter",
        HOST,
        spec(extra_specs={"aggregate_instance_extra_specs:ssd": "true"}),
        True,
    ),
    (
        "AggregateInstanceExtraSpecsFilter",
        HOST,
        spec(extra_specs={"aggregate_instance_extra_specs:ssd": "false"}),
        False,
    ),
    ("AggregateInstanceExtraSpecsFilter", HOST, spec(extra_specs={"gpu": "1"}), False),
    ("AggregateInstanceExtraSpecsFilter", HOST, spec(extra_specs={"hw:mem_page_size": "large"}), True),
]


@pytest.mark.parametrize(("name", "h", "s", "expected"), CASES)
def test_filter(name: str, h: HostSnapshot, s: RequestView, expected: bool) -> None:
    [f] = filters.load([name])
    verdict = f.passes(h, s)
    assert verdict.ok is expected
    assert bool(verdict.reason) is (not expected)  # a dropped host always says why


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        (8, "= 4", True),
        (2, "= 4", False),
        ("4", "== 4", True),
        (4, "!= 4", False),
        (3, "<= 4", True),
        ("abc", "s== abc", True),
        ("abc", "s!= abc", False),
        ("b", "s> a", True),
        ("a", "s< b", True),
        ("some text", "<in> tex", True),
        (["a", "b", "c"], "<all-in> a c", True),
        (["a"], "<all-in> a c", False),
        ("x", "<or> y <or> x", True),
        ("plain", "plain", True),
        ("plain", "other", False),
        ("x", "= nope", False),
    ],
)
def test_extra_spec_operators(value: Any, requirement: str, expected: bool) -> None:
    assert extra_specs_ops.match(value, requirement) is expected


def test_unknown_filter_name_is_a_clear_error() -> None:
    with pytest.raises(filters.UnknownFilter, match="NoSuchFilter"):
        filters.load(["ComputeFilter", "NoSuchFilter"])


def test_scheduler_refuses_to_start_with_an_unknown_filter() -> None:
    from novalite.config import Settings
    from novalite.scheduler.service import SchedulerService

    with pytest.raises(filters.UnknownFilter, match="RamFilter"):
        SchedulerService(None, Settings(enabled_filters="ComputeFilter,RamFilter"))  # type: ignore[arg-type]

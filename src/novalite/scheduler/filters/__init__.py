"""The filter registry: name -> class, written out (no scanning). ``load(names)`` builds the
enabled list from ``Settings.enabled_filters`` and fails loudly on an unknown name;
``DEFAULT_FILTERS`` (defined in ``scheduler.defaults``) is that setting's default (and the pure
runner's when given no filters)."""

from __future__ import annotations

from collections.abc import Sequence

from novalite.scheduler.defaults import DEFAULT_FILTERS
from novalite.scheduler.filters.aggregate_instance_extra_specs import AggregateInstanceExtraSpecsFilter
from novalite.scheduler.filters.base import Filter, Verdict
from novalite.scheduler.filters.compute import ComputeFilter
from novalite.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from novalite.scheduler.filters.different_host import DifferentHostFilter
from novalite.scheduler.filters.image_properties import ImagePropertiesFilter
from novalite.scheduler.filters.same_host import SameHostFilter
from novalite.scheduler.filters.server_group_affinity import ServerGroupAffinityFilter
from novalite.scheduler.filters.server_group_anti_affinity import ServerGroupAntiAffinityFilter

REGISTRY: dict[str, type] = {
    "ComputeFilter": ComputeFilter,
    "ComputeCapabilitiesFilter": ComputeCapabilitiesFilter,
    "ImagePropertiesFilter": ImagePropertiesFilter,
    "ServerGroupAffinityFilter": ServerGroupAffinityFilter,
    "ServerGroupAntiAffinityFilter": ServerGroupAntiAffinityFilter,
    "SameHostFilter": SameHostFilter,
    "DifferentHostFilter": DifferentHostFilter,
    "AggregateInstanceExtraSpecsFilter": AggregateInstanceExtraSpecsFilter,
}


class UnknownFilter(ValueError):
    pass


def load(names: Sequence[str]) -> list[Filter]:
    """Instances of the named filters, in order; raises ``UnknownFilter`` naming the culprit."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UnknownFilter(
            f"unknown scheduler filter(s) {', '.join(unknown)} in enabled_filters; "
            f"known: {', '.join(sorted(REGISTRY))}"
        )
    return [REGISTRY[n]() for n in names]


__all__ = ["DEFAULT_FILTERS", "REGISTRY", "Filter", "UnknownFilter", "Verdict", "load"]

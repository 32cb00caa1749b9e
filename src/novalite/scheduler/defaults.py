"""The scheduler's default filter and weigher names (``Settings.enabled_filters`` /
``enabled_weighers`` default to them; the pure runner uses them when given none). Only names:
``config`` imports this without loading the filter and weigher modules, whose registries
(``scheduler.filters`` / ``scheduler.weighers``) re-export both tuples."""

from __future__ import annotations

# the filters enabled unless ``enabled_filters`` says otherwise, in the order they run
DEFAULT_FILTERS = (
    "ComputeFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
)

# the weighers enabled unless ``enabled_weighers`` says otherwise
DEFAULT_WEIGHERS = (
    "RAMWeigher",
    "CPUWeigher",
    "DiskWeigher",
    "NumInstancesWeigher",
    "ServerGroupSoftAffinityWeigher",
    "ServerGroupSoftAntiAffinityWeigher",
    "BuildFailureWeigher",
)

"""AggregateInstanceExtraSpecsFilter: flavor extra specs scoped
``aggregate_instance_extra_specs:`` (or unscoped) must match the host's aggregate metadata."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters import extra_specs_ops
from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView

SCOPE = "aggregate_instance_extra_specs"


class AggregateInstanceExtraSpecsFilter:
    name: ClassVar[str] = "AggregateInstanceExtraSpecsFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        if not spec.flavor.extra_specs:
            return PASS
        metadata = host.aggregate_metadata()
        for key, requirement in spec.flavor.extra_specs.items():
            scope, _, rest = key.partition(":")
            if rest and scope != SCOPE:
                continue
            name = rest if rest else key
            values = metadata.get(name)
            if not values:
                return fail(f"no aggregate metadata {name}")
            if not any(extra_specs_ops.match(v, str(requirement)) for v in values):
                return fail(f"aggregate metadata {name}={sorted(values)} does not satisfy {requirement!r}")
        return PASS

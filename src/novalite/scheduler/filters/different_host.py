"""DifferentHostFilter: with the ``different_host`` hint, the host runs none of them."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


class DifferentHostFilter:
    name: ClassVar[str] = "DifferentHostFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        clash = set(spec.hint_list("different_host")) & host.instance_uuids
        if clash:
            return fail(f"runs {', '.join(sorted(clash))} (different_host)")
        return PASS

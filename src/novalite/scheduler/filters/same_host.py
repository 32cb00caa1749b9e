"""SameHostFilter: with the ``same_host`` hint, the host runs one of the hinted instances."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView


class SameHostFilter:
    name: ClassVar[str] = "SameHostFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        wanted = set(spec.hint_list("same_host"))
        if not wanted or wanted & host.instance_uuids:
            return PASS
        return fail("runs none of the same_host instances")

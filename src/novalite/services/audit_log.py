"""The instance usage audit log (``/os-instance_usage_audit_log``, ``compute_api.audit_log``).

Nova's compute services write one task log per audit period when ``instance_usage_audit`` is
on (it is off by default); novalite's computes write none. So the answer is Nova's for a cloud
whose computes have not run the audit: the period (the last completed month before the given
time: Nova's default ``instance_usage_audit_period``), every compute service (disabled ones
too) among the hosts that did not run, no instances, no errors.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.models.placement import Service
from novalite.services.zones import COMPUTE


@dataclass(frozen=True)
class AuditLog:
    period_beginning: dt.datetime
    period_ending: dt.datetime
    hosts: list[str]  # every compute host
    done: list[str]
    running: list[str]

    @property
    def not_run(self) -> list[str]:
        seen = set(self.done) | set(self.running)
        return [h for h in self.hosts if h not in seen]

    @property
    def overall_status(self) -> str:
        done = "ALL" if len(self.done) == len(self.hosts) else f"{len(self.done)} of {len(self.hosts)}"
        return f"{done} hosts done. 0 errors."


def last_completed_month(before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last whole month ending at or before ``before`` (a month ends on the 1st, 00:00)."""
    end = dt.datetime(before.year, before.month, 1)
    if end >= before:  # exactly on a month boundary: that month is not complete yet
        end = _previous_month(end)
    return _previous_month(end), end


def _previous_month(first: dt.datetime) -> dt.datetime:
    return (
        dt.datetime(first.year - 1, 12, 1)
        if first.month == 1
        else dt.datetime(first.year, first.month - 1, 1)
    )


def audit_log(s: Session, before: dt.datetime) -> AuditLog:
    begin, end = last_completed_month(before)
    hosts = sorted(
        set(s.scalars(select(Service.host).where(Service.binary == COMPUTE, Service.deleted.is_(False))))
    )
    return AuditLog(period_beginning=begin, period_ending=end, hosts=hosts, done=[], running=[])

"""Nova's counting quotas (§7): limits resolved from rows, usage counted live, no reservations.

Limits: per-user row > per-project row > ``default`` quota-class row > the defaults below.
-1 means unlimited; a check fails when ``limit >= 0 and usage + delta > limit``.

Usage: instances / cores / ram from non-deleted (and not soft-deleted) ``instances`` rows;
``key_pairs`` per user; other resources through counters registered by their owners
(``register_counter("server_groups", fn)``), ``fn(session, project_id, user_id | None) -> int``.

Concurrency: a check counts, then the caller inserts. Callers hold
``runtime.db.serialized(f"quota:{project_id}")`` around check + insert so two requests of
one project cannot both pass the check; where Nova rechecks after creating (key pairs,
server groups, the conductor for servers) we recheck too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.catalog import KeyPair, Quota, QuotaClass
from novalite.db.models.compute import Instance, Migration
from novalite.db.precompiled import Precompiled
from novalite.errors import OverQuota
from novalite.services.migrations import UNFINISHED

DEFAULTS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}
# nova-network era resources: shown (default -1) and settable before 2.36, never enforced
LEGACY: dict[str, int] = {
    "fixed_ips": -1,
    "floating_ips": -1,
    "security_groups": -1,
    "security_group_rules": -1,
}
RESOURCES: tuple[str, ...] = tuple(DEFAULTS)  # the enforced ones
STORED: dict[str, int] = {**DEFAULTS, **LEGACY}  # everything a row may hold
INSTANCE_RESOURCES = ("instances", "cores", "ram")
DEFAULT_CLASS = "default"
SOFT_DELETED = "soft-delete"

Counter = Callable[[Session, str, "str | None"], int]
_COUNTERS: dict[str, Counter] = {}


def _core(s: Session) -> Connection:
    """The session's connection, for column-only statements: skips the ORM execution layer.
    Pending ORM changes are flushed first, as ``s.execute`` would (autoflush)."""
    if s.autoflush:
        s.flush()
    return s.connection()


def register_counter(resource: str, fn: Counter) -> None:
    """Let the owner of a resource (server groups, ...) count its usage."""
    _COUNTERS[resource] = fn


# --- limits ---------------------------------------------------------------------------------

# column-only statements built once (no ORM objects per row: these run on every POST /servers)
_CLASS_ROWS = select(QuotaClass.class_name, QuotaClass.resource, QuotaClass.hard_limit).where(
    QuotaClass.class_name.in_(bindparam("names", expanding=True))
)
_LIMIT_ROWS = select(Quota.user_id, Quota.resource, Quota.hard_limit).where(
    Quota.project_id == bindparam("project_id"), Quota.user_id.in_(bindparam("users", expanding=True))
)


def class_limits(s: Session, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """A class's own rows > the ``default`` class rows > config defaults (legacy resources included)."""
    limits = dict(STORED)
    names = [DEFAULT_CLASS] if class_name == DEFAULT_CLASS else [DEFAULT_CLASS, class_name]
    rows = sorted(s.execute(_CLASS_ROWS, {"names": names}), key=lambda r: r[0] != DEFAULT_CLASS)
    limits.update({resource: limit for _name, resource, limit in rows if resource in STORED})
    return limits


def _limit_rows(s: Session, project_id: str, users: Sequence[str]) -> dict[str, dict[str, int]]:
    """user_id ("" for the project) -> resource -> limit, for the given users, in one query."""
    out: dict[str, dict[str, int]] = {u: {} for u in users}
    for user, resource, limit in s.execute(_LIMIT_ROWS, {"project_id": project_id, "users": list(users)}):
        if resource in STORED:
            out.setdefault(user, {})[resource] = limit
    return out


# the ``default`` class rows and the project's rows (and one user's) in one statement
def _sources_statement(with_user: bool) -> Precompiled:
    owners = (
        or_(Quota.user_id == "", Quota.user_id == bindparam("user_id")) if with_user else Quota.user_id == ""
    )
    return Precompiled(
        union_all(
            select(
                literal_column("'c'").label("kind"),
                QuotaClass.class_name.label("owner"),
                QuotaClass.resource,
                QuotaClass.hard_limit,
            ).where(QuotaClass.class_name == DEFAULT_CLASS),
            select(literal_column("'q'"), Quota.user_id, Quota.resource, Quota.hard_limit).where(
                Quota.project_id == bindparam("project_id"), owners
            ),
        )
    )


_SOURCES_PROJECT, _SOURCES_USER = _sources_statement(False), _sources_statement(True)


def _sources(
    s: Session, project_id: str, user_id: str | None
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """``(class_limits(s), _limit_rows(s, project_id, ["", user_id]))`` in one round trip (the
    project's rows under "", the user's under ``user_id`` when given)."""
    limits = dict(STORED)
    out: dict[str, dict[str, int]] = {"": {}}
    if user_id:
        out[user_id] = {}
    stmt = _SOURCES_USER if user_id else _SOURCES_PROJECT
    class_rows: list[tuple[str, int]] = []
    for kind, owner, resource, limit in stmt.all(_core(s), {"project_id": project_id, "user_id": user_id}):
        if resource not in STORED:
            continue
        if kind == "c":
            class_rows.append((resource, limit))
        else:
            out.setdefault(owner, {})[resource] = limit
    limits.update(class_rows)
    return limits, out


def _rows(s: Session, project_id: str, user_id: str) -> dict[str, int]:
    return _limit_rows(s, project_id, [user_id])[user_id]


def effective_limits(s: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Every resource's limit for the project (or the user inside it), legacy ones included."""
    limits, rows = _sources(s, project_id, user_id)
    limits.update(rows[""])
    if user_id:
        limits.update(rows[user_id])
    return limits


def _store(
    s: Session,
    existing: Mapping[str, Quota | QuotaClass],
    values: Mapping[str, int],
    new: Callable[[str, int], Quota | QuotaClass],
) -> None:
    """Update the ``existing`` rows (by resource) or add ``new(resource, limit)``; unknown
    resources are skipped."""
    for resource, limit in values.items():
        if resource not in STORED:
            continue
        if resource in existing:
            existing[resource].hard_limit = limit
        else:
            s.add(new(resource, limit))
    s.flush()


def set_limits(s: Session, project_id: str, user_id: str | None, values: Mapping[str, int]) -> None:
    """Create or update project (``user_id`` None) or per-user rows."""
    existing = {
        r.resource: r
        for r in s.scalars(
            select(Quota).where(Quota.project_id == project_id, Quota.user_id == (user_id or ""))
        )
    }
    _store(
        s,
        existing,
        values,
        lambda resource, limit: Quota(
            project_id=project_id, user_id=user_id or "", resource=resource, hard_limit=limit
        ),
    )


def delete_limits(s: Session, project_id: str, user_id: str | None) -> None:
    """Back to defaults: a project's rows (and its users' rows), or one user's rows."""
    stmt = delete(Quota).where(Quota.project_id == project_id)
    if user_id:
        stmt = stmt.where(Quota.user_id == user_id)
    s.execute(stmt)


def set_class_limits(s: Session, class_name: str, values: Mapping[str, int]) -> None:
    existing = {
        r.resource: r for r in s.scalars(select(QuotaClass).where(QuotaClass.class_name == class_name))
    }
    _store(
        s,
        existing,
        values,
        lambda resource, limit: QuotaClass(class_name=class_name, resource=resource, hard_limit=limit),
    )


# --- usage ----------------------------------------------------------------------------------

# A resize not over yet counts max(old, new) flavor for cores and RAM (Nova: the quota of the
# larger flavor stays held until confirm or revert). The instance row holds one of the two
# flavors; the growth past it comes from the migration's flavor snapshots, in the same statement.
_RESIZE_UNFINISHED = or_(*(Migration.status == status for status in UNFINISHED))


def _growth(key: str, current: Any) -> Any:
    """How much the larger of the migration's two flavors exceeds the instance's ``current``."""
    old = func.coalesce(Migration.old_flavor[key].as_integer(), 0)
    new = func.coalesce(Migration.new_flavor[key].as_integer(), 0)
    larger = case((old > new, old), else_=new)
    return case((larger > current, larger - current), else_=0)


def _usage_statement(with_user: bool) -> Precompiled:
    def owned(stmt: Any) -> Any:
        stmt = stmt.where(
            Instance.project_id == bindparam("project_id"),
            Instance.deleted.is_(False),
            Instance.vm_state != SOFT_DELETED,
        )
        return stmt.where(Instance.user_id == bindparam("user_id")) if with_user else stmt

    resizing = owned(
        select(
            func.coalesce(func.sum(_growth("vcpus", Instance.vcpus)), 0).label("cores"),
            func.coalesce(func.sum(_growth("memory_mb", Instance.memory_mb)), 0).label("ram"),
        )
        .select_from(Migration)
        .join(Instance, Instance.uuid == Migration.instance_uuid)
        .where(Migration.migration_type == "resize", _RESIZE_UNFINISHED)
    ).subquery()
    return Precompiled(
        owned(
            select(
                func.count(Instance.id),
                func.coalesce(func.sum(Instance.vcpus), 0),
                func.coalesce(func.sum(Instance.memory_mb), 0),
                select(resizing.c.cores).scalar_subquery(),
                select(resizing.c.ram).scalar_subquery(),
            )
        )
    )


_PROJECT_USAGE, _USER_USAGE = _usage_statement(False), _usage_statement(True)


def _instance_usage(s: Session, project_id: str, user_id: str | None) -> dict[str, int]:
    stmt = _USER_USAGE if user_id else _PROJECT_USAGE
    [(count, cores, ram, more_cores, more_ram)] = stmt.all(
        _core(s), {"project_id": project_id, "user_id": user_id}
    )
    return {"instances": int(count), "cores": int(cores) + int(more_cores), "ram": int(ram) + int(more_ram)}


def _keypair_count(s: Session, user_id: str | None) -> int:
    if not user_id:
        return 0
    return int(s.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)) or 0)


def count_resource(s: Session, resource: str, project_id: str, user_id: str | None = None) -> int:
    if resource in INSTANCE_RESOURCES:
        return _instance_usage(s, project_id, user_id)[resource]
    if resource == "key_pairs":
        return _keypair_count(s, user_id)
    counter = _COUNTERS.get(resource)
    return int(counter(s, project_id, user_id)) if counter else 0


def count_usage(s: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Usage of every resource; absolute (per-request) resources and unregistered ones are 0.

    ``key_pairs`` is counted for ``user_id`` (0 without one); ``server_group_members`` is per
    group, so it is 0 here unless its owner registered a project-level counter.
    """
    usage = dict.fromkeys(RESOURCES, 0)
    usage.update(dict.fromkeys(LEGACY, 0))
    usage.update(_instance_usage(s, project_id, user_id))
    usage["key_pairs"] = _keypair_count(s, user_id)
    for resource, counter in _COUNTERS.items():
        usage[resource] = int(counter(s, project_id, user_id))
    return usage


# --- checks ---------------------------------------------------------------------------------


def _flavor_size(flavor: Any) -> tuple[int, int]:
    if isinstance(flavor, Mapping):
        return int(flavor["vcpus"]), int(flavor["memory_mb"])
    return int(flavor.vcpus), int(flavor.memory_mb)


def _levels(s: Session, project_id: str, user_id: str) -> list[tuple[dict[str, int], dict[str, int]]]:
    """(limits, usage) for the project, plus the user when a per-user row exists for these resources.

    Usage is counted only for a level that limits one of the instance resources (all -1: nothing
    to compare, zeros stand in)."""
    base, rows = _sources(s, project_id, user_id)
    project = {**base, **rows[""]}
    levels = [(project, _usage_if_limited(s, project, project_id, None))]
    if any(r in INSTANCE_RESOURCES for r in rows[user_id]):
        user = {**project, **rows[user_id]}
        levels.append((user, _usage_if_limited(s, user, project_id, user_id)))
    return levels


def _usage_if_limited(
    s: Session, limits: dict[str, int], project_id: str, user_id: str | None
) -> dict[str, int]:
    if all(limits[r] < 0 for r in INSTANCE_RESOURCES):
        return dict.fromkeys(INSTANCE_RESOURCES, 0)
    return _instance_usage(s, project_id, user_id)


def _overs(limits: dict[str, int], usage: dict[str, int], deltas: dict[str, int]) -> list[str]:
    return [r for r in INSTANCE_RESOURCES if limits[r] >= 0 and usage[r] + deltas[r] > limits[r]]


def _fit(
    levels: list[tuple[dict[str, int], dict[str, int]]], vcpus: int, ram: int, min_count: int, max_count: int
) -> int:
    deltas = {"instances": max_count, "cores": max_count * vcpus, "ram": max_count * ram}
    for limits, usage in levels:
        overs = _overs(limits, usage, deltas)
        if overs:
            break
    else:
        return max_count
    headroom = {r: (limits[r] - usage[r]) if limits[r] >= 0 else math.inf for r in INSTANCE_RESOURCES}
    allowed = headroom["instances"]
    if vcpus:
        allowed = min(allowed, headroom["cores"] // vcpus)
    if ram:
        allowed = min(allowed, headroom["ram"] // ram)
    if 0 < allowed < max_count and allowed >= min_count:
        return _fit(levels, vcpus, ram, min_count, int(allowed))
    requested = str(min_count) if min_count == max_count else f"{min_count}-{max_count}"
    names = ", ".join(overs)
    used = ", ".join(str(usage[r]) for r in overs)
    limit = ", ".join(str(limits[r]) for r in overs)
    raise OverQuota(
        f"Quota exceeded for {names}: Requested {requested}, but already used {used} of {limit} {names}",
        kind="TooManyInstances",
    )


def check_instance_quota(s: Session, ctx: RequestContext, flavor: Any, min_count: int, max_count: int) -> int:
    """How many of ``min_count..max_count`` instances of ``flavor`` fit (§2.3 step 2).

    ``flavor`` is a Flavor or a snapshot dict (``vcpus``, ``memory_mb``). When ``max_count``
    does not fit but some count >= ``min_count`` does, that smaller count is returned
    (partial multi-create). Otherwise 403 ``OverQuota`` with Nova's "Quota exceeded for ..." text.
    """
    vcpus, ram = _flavor_size(flavor)
    return _fit(_levels(s, ctx.project_id, ctx.user_id), vcpus, ram, min_count, max_count)


def _now_over(
    s: Session, project_id: str, user_id: str
) -> tuple[dict[str, int], dict[str, int], list[str]] | None:
    """After the instance rows exist (delta 0): the first level (limits, usage) that is over one
    of its limits, with the resources it is over; None when all are within."""
    for limits, usage in _levels(s, project_id, user_id):
        overs = _overs(limits, usage, dict.fromkeys(INSTANCE_RESOURCES, 0))
        if overs:
            return limits, usage, overs
    return None


def recheck_instance_quota(s: Session, project_id: str, user_id: str, flavor: Any, requested: int) -> None:
    """After the instance rows exist (delta 0): 403 when the project/user is now over its limits."""
    found = _now_over(s, project_id, user_id)
    if found is None:
        return
    limits, usage, overs = found
    vcpus, ram = _flavor_size(flavor)
    names = ", ".join(overs)
    used = ", ".join(
        str(usage[r] - {"instances": requested, "cores": requested * vcpus, "ram": requested * ram}[r])
        for r in overs
    )
    limit = ", ".join(str(limits[r]) for r in overs)
    raise OverQuota(
        f"Quota exceeded for {names}: Requested {requested}, but already used {used} of {limit} {names}",
        kind="TooManyInstances",
    )


class InstanceQuotaBatch:
    """Quota checks for several creates of one project and user that share a transaction, each
    judged as if it ran alone after the ones before it: limits and usage are read once, and each
    create that fits adds its instances, cores and RAM to the usage the next one is checked
    against. ``recheck`` after the inserts reads the usage again, as ``recheck_instance_quota``
    does for a single create."""

    def __init__(self, s: Session, project_id: str, user_id: str):
        self.project_id, self.user_id = project_id, user_id
        self._levels = _levels(s, project_id, user_id)
        self._added = dict.fromkeys(INSTANCE_RESOURCES, 0)

    def fit(self, flavor: Any, min_count: int, max_count: int) -> int:
        """``check_instance_quota`` for the next create (403 ``OverQuota`` when it does not fit:
        it then adds nothing)."""
        vcpus, ram = _flavor_size(flavor)
        levels = [
            (limits, {r: usage[r] + self._added[r] for r in INSTANCE_RESOURCES})
            for limits, usage in self._levels
        ]
        count = _fit(levels, vcpus, ram, min_count, max_count)
        self._added["instances"] += count
        self._added["cores"] += count * vcpus
        self._added["ram"] += count * ram
        return count

    def recheck(self, s: Session) -> None:
        """After the inserts: 403 when the project or user is now over a limit (the group then
        runs create by create, and each create's own recheck words the error)."""
        found = _now_over(s, self.project_id, self.user_id)
        if found is not None:
            raise OverQuota(f"Quota exceeded for {', '.join(found[2])}", kind="TooManyInstances")


def check_metadata_quota(s: Session, project_id: str, metadata: Mapping[str, Any]) -> None:
    """403 "Maximum number of metadata items exceeds N" when there are more items than allowed."""
    limit = effective_limits(s, project_id)["metadata_items"]
    if limit >= 0 and len(metadata) > limit:
        raise OverQuota(f"Maximum number of metadata items exceeds {limit}", kind="MetadataLimitExceeded")


def check_injected_files(s: Session, project_id: str, files: Sequence[tuple[str, str | bytes]]) -> None:
    """Personality files: count, then the longest path, then the largest (decoded) content; 403 each."""
    limits = effective_limits(s, project_id)
    if 0 <= limits["injected_files"] < len(files):
        raise OverQuota("Personality file limit exceeded", kind="OnsetFileLimitExceeded")
    longest_path = max((len(path) for path, _ in files), default=0)
    largest = max((len(c if isinstance(c, bytes) else c.encode()) for _, c in files), default=0)
    if 0 <= limits["injected_file_path_bytes"] < longest_path:
        raise OverQuota(
            f"Personality file path exceeds maximum {limits['injected_file_path_bytes']}",
            kind="OnsetFilePathLimitExceeded",
        )
    if 0 <= limits["injected_file_content_bytes"] < largest:
        raise OverQuota(
            f"Personality file content exceeds maximum {limits['injected_file_content_bytes']}",
            kind="OnsetFileContentLimitExceeded",
        )

"""Reading servers: one server for a caller, the filtered/sorted/paged list in SQL (§6.2), and the
bulk loaders for what views need besides the row (metadata, tags, faults, addresses).

The list never loads more than one page of rows: every filter, the sort and the marker are SQL.
Routes parse the request (query parameters, limit and marker, what the microversion allows) and
hand it to ``build_list_query``; the SQL is built here only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, false, func, or_, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.compute import Instance, InstanceFault, InstanceMetadata, InstanceTag, RequestSpec
from novalite.db.models.network import Network, Port, PortIP, PortSecurityGroup, SecurityGroup
from novalite.db.models.placement import Service
from novalite.db.models.server_groups import InstanceGroup, InstanceGroupMember
from novalite.db.models.volume import VolumeAttachment
from novalite.domain.states import states_for_status
from novalite.errors import BadRequest, Forbidden, NotFound
from novalite.network import service as network
from novalite.services.create_server.request import to_bool


@dataclass
class ServerExtras:
    """What a server view needs besides the ``Instance`` row, loaded in bulk for a page."""

    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    fault: InstanceFault | None = None
    addresses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    server_groups: list[str] = field(default_factory=list)
    volumes_attached: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)  # names, from the server's ports
    host_status: str | None = None  # 2.16, loaded for admins
    scheduler_hints: dict[str, list[str]] | None = None  # 2.100, from the request spec (None: none stored)


SORT_KEYS = {
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
}
_SORT_COLUMN = {"instance_type_id": "flavor_id"}
_ADMIN_SORT_KEYS = {"host", "node"}
_EPOCH = dt.datetime(1970, 1, 1)


def instance_not_found(instance_uuid: str) -> NotFound:
    return NotFound(f"Instance {instance_uuid} could not be found.", kind="InstanceNotFound")


def get_instance(
    s: Session, ctx: RequestContext, instance_uuid: str, *, read_deleted: bool = False
) -> Instance:
    """The caller's (or, for admins, anyone's) server; 404 when missing, deleted or foreign."""
    query = select(Instance).where(Instance.uuid == instance_uuid)
    if not read_deleted:
        query = query.where(Instance.deleted.is_(False))
    inst = s.scalars(query).first()
    if inst is None or not ctx.can_access_project(inst.project_id):
        raise instance_not_found(instance_uuid)
    return inst


def hosts_of(s: Session, uuids: Collection[str]) -> dict[str, str | None]:
    """The host of each live server among ``uuids`` (None before it has one); any project's."""
    query = select(Instance.uuid, Instance.host).where(Instance.uuid.in_(uuids), Instance.deleted.is_(False))
    return {uuid: host for uuid, host in s.execute(query)}


@dataclass
class ListQuery:
    """A parsed list request: SQL conditions, sort order, limit and marker."""

    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int = 1000
    marker: str | None = None
    empty: bool = False  # a filter that can match nothing (e.g. unknown status before 2.38)


_NOT_NULL = {
    "created_at",
    "updated_at",
    "uuid",
    "display_name",
    "vm_state",
    "project_id",
    "user_id",
    "reservation_id",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "ramdisk_id",
    "config_drive",
    "power_state",
    "progress",
    "launch_index",
    "auto_disk_config",
}


def _sort_expr(key: str) -> Any:
    """The column, with NULLs mapped to a low value so SQLite and PostgreSQL order (and page) alike;
    NOT NULL columns stay bare so their indexes serve the ORDER BY."""
    col = getattr(Instance, _SORT_COLUMN.get(key, key))
    if key in _NOT_NULL:
        return col
    if key in ("launched_at", "terminated_at"):
        return func.coalesce(col, _EPOCH)
    return func.coalesce(col, "")


def parse_sort(ctx: RequestContext, keys: list[str], dirs: list[str]) -> list[tuple[str, str]]:
    """Repeatable sort_key/sort_dir; default created_at desc; uuid is the final tie-breaker."""
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(
                f"Invalid input for query parameters sort_dir. Value: {d}. '{d}' is not one of "
                "['asc', 'desc']"
            )
    sort: list[tuple[str, str]] = []
    for i, key in enumerate(keys):
        if key not in SORT_KEYS:
            raise BadRequest(
                f"Invalid input for query parameters sort_key. Value: {key}. '{key}' is not a valid sort key"
            )
        if key in _ADMIN_SORT_KEYS and not ctx.is_admin:
            raise Forbidden("Only administrators can sort servers by host/node")
        sort.append((key, dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc")))
    if not sort:
        sort = [("created_at", dirs[0] if dirs else "desc")]
    if sort[-1][0] != "uuid":
        sort.append(("uuid", sort[-1][1]))
    return sort


def _after_marker(s: Session, q: ListQuery) -> ColumnElement[bool]:
    """Rows strictly after the marker row in the sort order (keyset pagination)."""
    marker_row = s.scalars(select(Instance).where(Instance.uuid == q.marker)).first()
    if marker_row is None:
        raise BadRequest(f"marker [{q.marker}] not found")
    values = s.execute(select(*[_sort_expr(k) for k, _ in q.sort]).where(Instance.id == marker_row.id)).one()
    ors = []
    for i, (key, direction) in enumerate(q.sort):
        equal = [_sort_expr(k) == values[j] for j, (k, _) in enumerate(q.sort[:i])]
        expr = _sort_expr(key)
        beyond = expr > values[i] if direction == "asc" else expr < values[i]
        ors.append(and_(*equal, beyond))
    return or_(*ors)


def _page_query(s: Session, q: ListQuery, query: Any) -> Any:
    """``query`` narrowed to the page: filters, marker, order and limit."""
    query = query.where(*q.conditions)
    if q.marker is not None:
        query = query.where(_after_marker(s, q))
    order = [_sort_expr(k).asc() if d == "asc" else _sort_expr(k).desc() for k, d in q.sort]
    return query.order_by(*order).limit(q.limit)


def _run(fetch: Any) -> Any:
    try:
        return fetch()
    except DBAPIError as exc:  # a pattern Python accepts but PostgreSQL's regex engine does not
        if "regular expression" in str(exc.orig).lower():
            raise BadRequest("Invalid regular expression in the name or ip filter") from None
        raise


def run_list(s: Session, q: ListQuery) -> list[Instance]:
    """The page of instances (every column)."""
    if q.empty or q.limit == 0:
        return []
    query = _page_query(s, q, select(Instance))
    return _run(lambda: list(s.scalars(query)))  # type: ignore[no-any-return]


_SUMMARY_COLUMNS = select(Instance.uuid, Instance.display_name)


def _core(s: Session) -> Connection:
    """The session's connection, for column-only statements: skips the ORM execution layer.
    Pending ORM changes are flushed first, as ``s.execute`` would (autoflush)."""
    if s.autoflush:
        s.flush()
    return s.connection()


def run_summary_list(s: Session, q: ListQuery) -> list[tuple[str, str]]:
    """The page as (uuid, name) tuples, for ``GET /servers``: two columns, no ORM objects."""
    if q.empty or q.limit == 0:
        return []
    query = _page_query(s, q, _SUMMARY_COLUMNS)
    return _run(lambda: [tuple(r) for r in _core(s).execute(query)])  # type: ignore[no-any-return]


# -- filters ---------------------------------------------------------------------------------------


def regex_condition(column: Any, pattern: str) -> ColumnElement[bool]:
    """A case-insensitive regular-expression search in SQL; an invalid pattern matches nothing."""
    try:
        re.compile(pattern)
    except re.error:
        return false()
    # embedded options work in Python's re (SQLite's REGEXP) and PostgreSQL's AREs alike
    return column.regexp_match("(?i)" + pattern)  # type: ignore[no-any-return]


def tag_conditions(name: str, tags: list[str]) -> ColumnElement[bool]:
    def has(tag: str) -> ColumnElement[bool]:
        return exists().where(InstanceTag.instance_uuid == Instance.uuid, InstanceTag.tag == tag)

    if not tags:
        return true()
    if name == "tags":
        return and_(*[has(t) for t in tags])
    if name == "tags-any":
        return or_(*[has(t) for t in tags])
    if name == "not-tags":
        return ~and_(*[has(t) for t in tags])
    return ~or_(*[has(t) for t in tags])  # not-tags-any


def ip_condition(pattern: str, *, v6_only: bool) -> ColumnElement[bool]:
    """Servers with a fixed IP matching the regex (ports of the embedded network service)."""
    cond = regex_condition(PortIP.ip_address, pattern)
    if v6_only:
        cond = and_(cond, PortIP.ip_address.contains(":"))
    sub = select(Port.device_id).join(PortIP, PortIP.port_id == Port.id).where(cond)
    return Instance.uuid.in_(sub)


def parse_time(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"Invalid input for query parameters {name}. Value: {value}. '{value}' is not a 'date-time'"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


# -- the list request ----------------------------------------------------------------------------


def _status_conditions(q: ListQuery, values: list[str], ctx: RequestContext, *, strict_status: bool) -> bool:
    """Returns True when deleted servers were asked for (status=deleted, admins only)."""
    conds: list[ColumnElement[bool]] = []
    wants_deleted = False
    for value in values:
        if value.lower() == "deleted":
            if not ctx.is_admin:
                raise Forbidden("Only administrators may list deleted instances")
            wants_deleted = True
            conds.append(Instance.deleted.is_(True))
            continue
        states = states_for_status(value)
        if states is None:
            if strict_status:
                raise BadRequest("Invalid status value")
            q.empty = True
            continue
        for vm_state, task_state in states:
            cond = Instance.vm_state == vm_state
            conds.append(cond if task_state is None else (cond & (Instance.task_state == task_state)))
    if conds:
        q.conditions.append(or_(*conds))
    return wants_deleted


def _simple_filters(q: ListQuery, p: dict[str, list[str]]) -> None:
    eq: dict[str, Any] = {
        "reservation_id": Instance.reservation_id,
        "image": Instance.image_ref,
        "flavor": Instance.flavor_id,
        "availability_zone": Instance.availability_zone,
        "key_name": Instance.key_name,
        "task_state": Instance.task_state,
        "vm_state": Instance.vm_state,
        "user_id": Instance.user_id,
        "hostname": Instance.hostname,
        "host": Instance.host,
        "node": Instance.node,
        "uuid": Instance.uuid,
    }
    for key, column in eq.items():
        if key in p:
            q.conditions.append(column.in_(p[key]))
    for key, int_column in (("power_state", Instance.power_state), ("progress", Instance.progress)):
        if key in p:
            try:
                q.conditions.append(int_column.in_([int(v) for v in p[key]]))
            except ValueError:
                raise BadRequest(f"Invalid input for query parameters {key}. Value: {p[key][0]}.") from None
    if "config_drive" in p:
        wanted = to_bool(p["config_drive"][-1])
        q.conditions.append(Instance.config_drive == "True" if wanted else Instance.config_drive != "True")
    if "locked" in p:
        q.conditions.append(Instance.locked.is_(to_bool(p["locked"][-1])))
    if "name" in p:
        q.conditions.append(regex_condition(Instance.display_name, p["name"][-1]))
    if "ip" in p:
        q.conditions.append(ip_condition(p["ip"][-1], v6_only=False))
    if "ip6" in p:
        q.conditions.append(ip_condition(p["ip6"][-1], v6_only=True))
    for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
        if key in p:
            q.conditions.append(tag_conditions(key, [t for v in p[key] for t in v.split(",") if t]))


def _time_filters(q: ListQuery, p: dict[str, list[str]]) -> bool:
    since = parse_time("changes-since", p["changes-since"][-1]) if "changes-since" in p else None
    before = parse_time("changes-before", p["changes-before"][-1]) if "changes-before" in p else None
    if since and before and before < since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    if since:
        q.conditions.append(Instance.updated_at >= since)
    if before:
        q.conditions.append(Instance.updated_at <= before)
    for key in ("created_at", "launched_at", "terminated_at"):
        if key in p:
            q.conditions.append(getattr(Instance, key) >= parse_time(key, p[key][-1]))
    return since is not None or before is not None


def _scope(q: ListQuery, p: dict[str, list[str]], ctx: RequestContext) -> None:
    """Own project only, unless an admin asks for all_tenants (then project_id/tenant_id narrow it)."""
    all_tenants = "all_tenants" in p and p["all_tenants"][-1].lower() not in ("false", "0", "off", "no")
    if not all_tenants:
        q.conditions.append(Instance.project_id == ctx.project_id)
        return
    ctx.require_admin("os_compute_api:servers:detail:get_all_tenants")
    project = (p.get("project_id") or p.get("tenant_id") or [""])[-1]
    if project:
        q.conditions.append(Instance.project_id == project)


def build_list_query(
    ctx: RequestContext,
    params: dict[str, list[str]],
    *,
    limit: int,
    marker: str | None,
    non_admin_filters: Collection[str],
    strict_status: bool,
) -> ListQuery:
    """The list request's query parameters -> SQL. ``params`` (each name's values) is consumed;
    ``non_admin_filters`` are the filters a non-admin may use (the others are dropped, as Nova
    does); ``strict_status``: an unknown status is a 400 (2.38) rather than an empty list."""
    p = params
    q = ListQuery(limit=limit, marker=marker)
    q.sort = parse_sort(ctx, p.pop("sort_key", []), p.pop("sort_dir", []))
    _scope(q, p, ctx)
    if not ctx.is_admin:
        p = {k: v for k, v in p.items() if k in non_admin_filters or k in ("limit", "marker")}
    wants_deleted = (
        _status_conditions(q, p["status"], ctx, strict_status=strict_status) if "status" in p else False
    )
    include_deleted = _time_filters(q, p) or wants_deleted
    if ctx.is_admin and "deleted" in p:
        include_deleted = True
        q.conditions.append(Instance.deleted.is_(to_bool(p["deleted"][-1])))
    if not include_deleted:
        q.conditions.append(Instance.deleted.is_(False))
    _simple_filters(q, p)
    return q


# -- extras for views ------------------------------------------------------------------------------


def load_extras(
    s: Session,
    instances: Sequence[Instance],
    *,
    server_groups: bool = False,
    down_time: int | None = None,
    scheduler_hints: bool = False,
) -> dict[str, ServerExtras]:
    """Metadata, tags, latest faults and addresses of many servers in a handful of queries.
    ``server_groups`` (the one-server views: show, update, rebuild) loads the groups and the
    scheduler hints; ``scheduler_hints`` loads the hints alone (a list at 2.100+)."""
    uuids = [i.uuid for i in instances]
    extras = {u: ServerExtras() for u in uuids}
    if not uuids:
        return extras
    for row in s.scalars(select(InstanceMetadata).where(InstanceMetadata.instance_uuid.in_(uuids))):
        extras[row.instance_uuid].metadata[row.key] = row.value
    for tag in s.scalars(
        select(InstanceTag).where(InstanceTag.instance_uuid.in_(uuids)).order_by(InstanceTag.tag)
    ):
        extras[tag.instance_uuid].tags.append(tag.tag)
    faulted = [i.uuid for i in instances if i.vm_state == "error" or i.deleted]
    if faulted:
        faults = s.scalars(
            select(InstanceFault)
            .where(InstanceFault.instance_uuid.in_(faulted))
            .order_by(InstanceFault.created_at, InstanceFault.id)
        )
        for fault in faults:
            extras[fault.instance_uuid].fault = fault
    _load_addresses(s, [i.uuid for i in instances if i.vm_state != "building"], extras)
    _load_volumes(s, uuids, extras)
    if server_groups:
        _load_server_groups(s, uuids, extras)
    if server_groups or scheduler_hints:
        _load_scheduler_hints(s, uuids, extras)
    if down_time is not None:
        _load_host_status(s, instances, extras, down_time)
    return extras


def _load_scheduler_hints(s: Session, uuids: list[str], extras: dict[str, ServerExtras]) -> None:
    """2.100: the hints the servers were created with, as their request specs keep them."""
    for uuid, spec in s.execute(
        select(RequestSpec.instance_uuid, RequestSpec.spec).where(RequestSpec.instance_uuid.in_(uuids))
    ):
        hints = (spec or {}).get("scheduler_hints") or {}
        extras[uuid].scheduler_hints = {str(k): [str(v) for v in vals] for k, vals in hints.items()}


def _load_host_status(
    s: Session, instances: Sequence[Instance], extras: dict[str, ServerExtras], down_time: int
) -> None:
    """2.16 ``host_status`` as Nova decides it: DOWN (forced down), else MAINTENANCE (disabled), else
    UP, or UNKNOWN when no heartbeat came within ``service_down_time`` (or there is no such compute
    service); empty without a host."""
    hosts = {i.host for i in instances if i.host}
    services = (
        {
            svc.host: svc
            for svc in s.scalars(
                select(Service).where(
                    Service.binary == "nova-compute", Service.host.in_(hosts), Service.deleted.is_(False)
                )
            )
        }
        if hosts
        else {}
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for inst in instances:
        svc = services.get(inst.host or "")
        if not inst.host:
            status = ""
        elif svc is None:
            status = "UNKNOWN"
        elif svc.forced_down:
            status = "DOWN"
        elif svc.disabled:
            status = "MAINTENANCE"
        elif (svc.last_seen_at or svc.updated_at) < now - dt.timedelta(seconds=down_time):
            status = "UNKNOWN"
        else:
            status = "UP"
        extras[inst.uuid].host_status = status


def _load_addresses(s: Session, uuids: list[str], extras: dict[str, ServerExtras]) -> None:
    if not uuids:
        return
    groups = (
        select(Port.device_id, SecurityGroup.name)
        .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
        .join(SecurityGroup, SecurityGroup.id == PortSecurityGroup.security_group_id)
        .where(Port.device_id.in_(uuids))
        .order_by(Port.created_at, Port.id, SecurityGroup.name)
    )
    for device_id, group_name in s.execute(groups):
        extras[device_id].security_groups.append(group_name)
    query = (
        select(Port.device_id, Network.name, PortIP.ip_address, Port.mac_address)
        .join(PortIP, PortIP.port_id == Port.id)
        .join(Network, Network.id == Port.network_id)
        .where(Port.device_id.in_(uuids))
        .order_by(Port.created_at, Port.id, PortIP.ip_address)
    )
    for device_id, net_name, address, mac in s.execute(query):
        extras[device_id].addresses.setdefault(net_name, []).append(
            {
                "version": ipaddress.ip_address(address).version,
                "addr": address,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": mac,
            }
        )
    for device_id, net_name, address, mac in network.floating_addresses(s, uuids):  # floating IPs mapped
        extras[device_id].addresses.setdefault(net_name, []).append(
            {"version": 4, "addr": address, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac}
        )


def _load_volumes(s: Session, uuids: list[str], extras: dict[str, ServerExtras]) -> None:
    """``os-extended-volumes:volumes_attached``: the server's current volume attachments."""
    query = (
        select(
            VolumeAttachment.instance_uuid, VolumeAttachment.volume_id, VolumeAttachment.delete_on_termination
        )
        .where(VolumeAttachment.instance_uuid.in_(uuids), VolumeAttachment.detached_at.is_(None))
        .order_by(VolumeAttachment.created_at, VolumeAttachment.id)
    )
    for instance_uuid, volume_id, delete in s.execute(query):
        extras[str(instance_uuid)].volumes_attached.append(
            {"id": volume_id, "delete_on_termination": bool(delete)}
        )


def _load_server_groups(s: Session, uuids: list[str], extras: dict[str, ServerExtras]) -> None:
    query = (
        select(InstanceGroupMember.instance_uuid, InstanceGroup.uuid)
        .join(InstanceGroup, InstanceGroup.id == InstanceGroupMember.group_id)
        .where(InstanceGroupMember.instance_uuid.in_(uuids))
    )
    for instance_uuid, gid in s.execute(query):
        extras[instance_uuid].server_groups.append(str(gid))

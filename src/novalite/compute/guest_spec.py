"""The one place an instance row becomes what the virt driver is told about it (``GuestSpec``)."""

from __future__ import annotations

from typing import Any

from novalite.virt.driver import GuestSpec


def instance_name(instance_id: int) -> str:
    """The hypervisor's name of an instance, as Nova's ``instance_name_template``."""
    return f"instance-{instance_id:08x}"


def guest_spec(row: Any, host: str, *, node: str | None = None, **details: Any) -> GuestSpec:
    """The guest of instance ``row`` (an ``Instance`` or a result row with its columns) on
    ``host``: on ``node``, else the row's node, else the host; its flavor and ports as the row
    records them unless ``details`` (GuestSpec's other fields) says otherwise."""
    if "flavor" not in details:
        details["flavor"] = dict(row.flavor or {})
    if "network_info" not in details:  # a row selected without that column: no ports
        details["network_info"] = tuple(getattr(row, "network_info", None) or ())
    return GuestSpec(
        uuid=row.uuid, name=instance_name(row.id), host=host, node=node or row.node or host, **details
    )

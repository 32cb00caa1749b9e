"""Nova's versioned notifications on the message bus (docs/notifications.md).

Off by default (``Settings.notifications = "off"``): nothing is installed, and every emission
point returns after one check of an empty dict. With ``notifications = "versioned"`` each process
that runs services installs a :class:`Notifier` for its database (``install``); the emission
points (``instance`` in a transaction, ``instance_in`` outside one) find it by the session's engine.

A notification is published as oslo.messaging sends one: an envelope
``{"oslo.version": "2.0", "oslo.message": "<json>"}`` whose message carries ``priority``,
``event_type``, ``timestamp``, ``publisher_id`` (``nova-compute:<host>`` or ``nova-api:<host>``),
``message_id`` and a ``nova_object`` payload (``InstanceActionPayload``, ``ExceptionPayload`` ...).

* ``amqp://`` -- on the topic exchange ``<messaging_prefix>nova`` with the routing key
  ``versioned_notifications.info`` (or ``.error``); the queue of that name (under the prefix) is
  declared and bound, as Nova's notifier does, and any consumer may bind a queue of its own.
* ``memory://`` -- on this process's queue ``<transport prefix>versioned_notifications.<priority>``
  (``Notifier.queue_name``), which a test reads with ``messaging.local.get``.

A notification that cannot be published is logged and dropped: it never fails the operation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
import uuid
import weakref
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.messaging import local

LOG = logging.getLogger(__name__)
MODES = ("off", "versioned")
EXCHANGE = "nova"
TOPIC = "versioned_notifications"
PUBLISH_PATIENCE = 1.0
_POWER = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
# action name recorded by the API -> Nova's event name (instance.<name>.start/.end)
ACTION_EVENTS = {
    "stop": "power_off",
    "start": "power_on",
    "reboot": "reboot",
    "pause": "pause",
    "unpause": "unpause",
    "suspend": "suspend",
    "resume": "resume",
    "confirmResize": "resize_confirm",
    "revertResize": "resize_revert",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "lock": "lock",
    "unlock": "unlock",
    # a move's end on its destination (services.server_moves.finish_move)
    "resize": "resize_finish",
    "migrate": "resize_finish",
    "live-migration": "live_migration_post",
}
# every notifier of this process, by the database engine it belongs to
_NOTIFIERS: weakref.WeakKeyDictionary[Any, Notifier] = weakref.WeakKeyDictionary()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"notifications must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


class Notifier:
    """Publishes versioned notifications on ``transport``'s URL under its prefix."""

    def __init__(self, transport: Any, *, service: str = "nova-compute"):
        self.transport, self.service = transport, service
        self._lock = threading.Lock()
        self._conn: Any = None

    def queue_name(self, priority: str = "info") -> str:
        return f"{self.transport.prefix}{TOPIC}.{priority}"

    def notify(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        host: str | None,
        priority: str = "INFO",
        service: str | None = None,
    ) -> None:
        message = {
            "priority": priority,
            "event_type": event_type,
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "publisher_id": f"{service or self.service}:{host or socket.gethostname()}",
            "message_id": str(uuid.uuid4()),
            "payload": payload,
        }
        body = {"oslo.version": "2.0", "oslo.message": json.dumps(message)}
        key = f"{TOPIC}.{priority.lower()}"
        try:
            self._publish(key, body)
        except Exception as exc:  # a notification never fails the operation it reports
            LOG.warning("notification %s not sent: %s", event_type, exc)

    def _publish(self, key: str, body: dict[str, Any]) -> None:
        if self.transport.is_memory:
            local.publish(self.transport.prefix + key, body, {})
            return
        import kombu  # only a broker needs it

        exchange = kombu.Exchange(self.transport.prefix + EXCHANGE, type="topic", durable=False)
        queue = kombu.Queue(self.transport.prefix + key, exchange, routing_key=key, durable=False)
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self.transport.connection()
                producer = self._conn.Producer(serializer="json")
                producer.publish(
                    body,
                    exchange=exchange,
                    routing_key=key,
                    declare=[exchange, queue],
                    retry=True,
                    retry_policy={"max_retries": 1, "interval_start": PUBLISH_PATIENCE},
                )
            except Exception:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.release()
                raise

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.release()


def install(db: Any, notifier: Notifier) -> None:
    from novalite.notifications import updates

    updates.listen()
    _NOTIFIERS[db.engine] = notifier


def uninstall(db: Any) -> None:
    notifier = _NOTIFIERS.pop(db.engine, None)
    if notifier is not None:
        notifier.close()


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def _object(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nova_object.name": name,
        "nova_object.namespace": "nova",
        "nova_object.version": version,
        "nova_object.data": data,
    }


def flavor_payload(flavor: dict[str, Any]) -> dict[str, Any]:
    return _object(
        "FlavorPayload",
        "1.4",
        {
            "flavorid": flavor.get("id") or flavor.get("flavorid"),
            "name": flavor.get("name") or flavor.get("original_name"),
            "memory_mb": flavor.get("ram", flavor.get("memory_mb")),
            "vcpus": flavor.get("vcpus"),
            "root_gb": flavor.get("disk", flavor.get("root_gb")),
            "ephemeral_gb": flavor.get("ephemeral", flavor.get("OS-FLV-EXT-DATA:ephemeral", 0)),
            "swap": flavor.get("swap") or 0,
            "rxtx_factor": flavor.get("rxtx_factor", 1.0),
            "vcpu_weight": flavor.get("vcpu_weight", 0),
            "disabled": False,
            "is_public": flavor.get("is_public", flavor.get("os-flavor-access:is_public", True)),
            "extra_specs": dict(flavor.get("extra_specs") or {}),
            "projects": None,
            "description": flavor.get("description"),
        },
    )


def _ip_addresses(network_info: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for vif in network_info or []:
        if not isinstance(vif, dict):
            continue
        for ip in vif.get("ips") or vif.get("fixed_ips") or []:
            address = ip.get("address") or ip.get("ip_address") if isinstance(ip, dict) else ip
            if not address:
                continue
            found.append(
                _object(
                    "IpPayload",
                    "1.0",
                    {
                        "address": address,
                        "version": 6 if ":" in str(address) else 4,
                        "port_uuid": vif.get("id") or vif.get("port_id"),
                        "mac": vif.get("address") or vif.get("mac_address"),
                        "label": vif.get("network_name") or vif.get("label"),
                        "meta": {},
                        "device_name": vif.get("devname"),
                    },
                )
            )
    return found


def instance_payload(
    s: Session,
    instance_uuid: str,
    *,
    fault: dict[str, Any] | None = None,
    name: str = "InstanceActionPayload",
    version: str = "1.8",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``name`` (an InstanceActionPayload by default, with ``fault``) of the instance as this
    session sees it, ``extra`` fields added or overridden (empty data if the instance is gone)."""
    from novalite.db.models.compute import Instance, InstanceMetadata

    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    if inst is None:
        return _object(name, version, {"uuid": instance_uuid})
    sysmeta = dict(inst.system_metadata or {})
    metadata = {
        m.key: m.value
        for m in s.scalars(select(InstanceMetadata).where(InstanceMetadata.instance_uuid == instance_uuid))
    }
    data = {
        "uuid": inst.uuid,
        "display_name": inst.display_name,
        "display_description": inst.display_description,
        "host_name": inst.hostname,
        "host": inst.host,
        "node": inst.node,
        "state": inst.vm_state,
        "power_state": _POWER.get(int(inst.power_state or 0), "pending"),
        "task_state": inst.task_state,
        "progress": inst.progress,
        "flavor": flavor_payload(dict(inst.flavor or {})),
        "image_uuid": inst.image_ref or None,
        "tenant_id": inst.project_id,
        "user_id": inst.user_id,
        "reservation_id": inst.reservation_id,
        "key_name": inst.key_name,
        "availability_zone": inst.availability_zone,
        "ip_addresses": _ip_addresses(inst.network_info),
        "metadata": metadata,
        "locked": bool(inst.locked),
        "auto_disk_config": "AUTO" if inst.auto_disk_config else "MANUAL",
        "created_at": _time(inst.created_at),
        "updated_at": _time(inst.updated_at),
        "launched_at": _time(inst.launched_at),
        "terminated_at": _time(inst.terminated_at),
        "deleted_at": _time(inst.deleted_at),
        "locked_reason": inst.locked_reason,
        "architecture": sysmeta.get("image_architecture"),
        "os_type": sysmeta.get("image_os_type"),
        "kernel_id": inst.kernel_id or "",
        "ramdisk_id": inst.ramdisk_id or "",
        "request_id": None,
        "action_initiator_user": None,
        "action_initiator_project": None,
    }
    if name.startswith("InstanceAction"):
        data["fault"] = fault
    data.update(extra or {})
    return _object(name, version, data)


def exception_payload(message: str, *, function: str = "build_and_run_instance") -> dict[str, Any]:
    return _object(
        "ExceptionPayload",
        "1.1",
        {
            "module_name": "nova.compute.manager",
            "function_name": function,
            "exception": "BuildAbortException",
            "exception_message": message,
            "traceback": "",
        },
    )


def instance(
    s: Session,
    event_type: str,
    instance_uuid: str,
    *,
    host: str | None = None,
    fault: str | None = None,
    name: str = "InstanceActionPayload",
    version: str = "1.8",
    extra: dict[str, Any] | None = None,
    service: str | None = None,
) -> None:
    """Publish ``event_type`` about the instance as ``s`` sees it (no-op when notifications are off).
    ``fault``: the error of an ``.error`` event (ERROR priority, the payload's ``fault`` set);
    ``name``/``version``/``extra``: another payload class and its own fields; ``service``: the
    publisher (``nova-api`` ...) when not this process's."""
    notifier = notifier_of(s)
    if notifier is None:
        return
    payload = instance_payload(
        s,
        instance_uuid,
        fault=exception_payload(fault) if fault else None,
        name=name,
        version=version,
        extra=extra,
    )
    if host is None:
        host = payload["nova_object.data"].get("host")
    notifier.notify(event_type, payload, host=host, priority="ERROR" if fault else "INFO", service=service)


def notifier_of(s: Session) -> Notifier | None:
    """The notifier of the database ``s`` works on (None: notifications are off)."""
    if not _NOTIFIERS:
        return None
    bind = s.get_bind()  # a Database's sessions are bound to a connection of its engine
    return _NOTIFIERS.get(getattr(bind, "engine", bind))


def instance_in(db: Any, event_type: str, instance_uuid: str, **kwargs: Any) -> None:
    """``instance`` in a read transaction of its own (outside any transaction of the caller)."""
    if not _NOTIFIERS or db.engine not in _NOTIFIERS:
        return
    with db.reader() as s:
        instance(s, event_type, instance_uuid, **kwargs)


def action(s: Session, action_name: str, instance_uuid: str, *, host: str | None = None) -> None:
    """An API action done at once (stop, start, confirmResize ...): its ``.start`` and ``.end``."""
    if not _NOTIFIERS:
        return
    name = ACTION_EVENTS.get(action_name)
    if name is None:
        return
    instance(s, f"instance.{name}.start", instance_uuid, host=host)
    instance(s, f"instance.{name}.end", instance_uuid, host=host)


def exception(db: Any, instance_uuid: str, reason: str, *, host: str) -> None:
    """compute.exception (ERROR) with an ExceptionPayload, as Nova sends for a failed build."""
    if not _NOTIFIERS:
        return
    notifier = _NOTIFIERS.get(db.engine)
    if notifier is not None:
        notifier.notify("compute.exception", exception_payload(reason), host=host, priority="ERROR")


def start(mode: str, db: Any, transport: Any, *, service: str = "nova-compute") -> Any:
    """A process's services start: install a notifier when ``mode`` is on; returns its stop."""
    if check_mode(mode) == "off":
        return lambda: None
    install(db, Notifier(transport, service=service))
    return lambda: uninstall(db)


def build_failed(db: Any, instance_uuid: str, reason: str, *, host: str) -> None:
    """A build that ended in ERROR: compute.exception, then instance.create.error with the fault."""
    if not _NOTIFIERS:
        return
    exception(db, instance_uuid, reason, host=host)
    instance_in(db, "instance.create.error", instance_uuid, host=host, fault=reason)


def move_in(db: Any, event_type: str, migration_uuid: str, *, host: str) -> None:
    """``instance_in`` for the instance a migration moves."""
    if not _NOTIFIERS or db.engine not in _NOTIFIERS:
        return
    from novalite.db.models.compute import Migration

    with db.reader() as s:
        found = s.execute(select(Migration.instance_uuid).where(Migration.uuid == migration_uuid)).scalar()
        if found is not None:
            instance(s, event_type, found, host=host)


def notifier_for(db: Any) -> Notifier | None:
    """The notifier installed for ``db`` in this process (None: notifications are off)."""
    return _NOTIFIERS.get(db.engine)


def shelved(db: Any, instance_uuid: str, *, offload: bool, host: str) -> None:
    """A shelve done: instance.shelve.end, then instance.shelve_offload.start/.end if offloaded."""
    if not _NOTIFIERS:
        return
    instance_in(db, "instance.shelve.end", instance_uuid, host=host)
    if offload:
        instance_in(db, "instance.shelve_offload.start", instance_uuid, host=host)
        instance_in(db, "instance.shelve_offload.end", instance_uuid, host=host)


# Payload classes of the events below (the versions that go with InstanceActionPayload 1.8)
REBUILD_PAYLOAD = ("InstanceActionRebuildPayload", "1.9")
SNAPSHOT_PAYLOAD = ("InstanceActionSnapshotPayload", "1.9")


def rebuild(s: Session, phase: str, instance_uuid: str, *, host: str | None = None) -> None:
    """instance.rebuild.<phase> with an InstanceActionRebuildPayload (the new image, its
    architecture, the trusted image certificates)."""
    if not _NOTIFIERS:
        return
    from novalite.db.models.compute import Instance

    inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
    certs = list(inst.trusted_certs or []) if inst is not None else []
    name, version = REBUILD_PAYLOAD
    instance(
        s,
        f"instance.rebuild.{phase}",
        instance_uuid,
        host=host,
        name=name,
        version=version,
        extra={"trusted_image_certificates": certs or None},
    )


def rebuild_in(db: Any, phase: str, instance_uuid: str, *, host: str | None = None) -> None:
    """``rebuild`` in a read transaction of its own."""
    if not _NOTIFIERS or db.engine not in _NOTIFIERS:
        return
    with db.reader() as s:
        rebuild(s, phase, instance_uuid, host=host)


def snapshot_in(
    db: Any, phase: str, instance_uuid: str, image_id: str, *, task_state: str | None = None
) -> None:
    """instance.snapshot.<phase> with an InstanceActionSnapshotPayload (``snapshot_image_id``);
    ``task_state``: what the payload shows while the image is being taken (Nova:
    ``image_snapshot`` on ``.start``)."""
    if not _NOTIFIERS or db.engine not in _NOTIFIERS:
        return
    name, version = SNAPSHOT_PAYLOAD
    with db.reader() as s:
        instance(
            s,
            f"instance.snapshot.{phase}",
            instance_uuid,
            name=name,
            version=version,
            extra={"snapshot_image_id": image_id, "task_state": task_state},
            service="nova-compute",
        )


def evacuate(s: Session, instance_uuid: str) -> None:
    """instance.evacuate (no phase), sent by the API when it accepts an evacuation."""
    instance(s, "instance.evacuate", instance_uuid, service="nova-api", host=socket.gethostname())

"""The host is the truth: a real hypervisor's guests against the database (issue 17, item 7).

A compute agent whose driver runs real guests (the QEMU driver) gets a ``HostSync``:

* ``reconcile()`` at start: every guest directory the driver knows (``list_running`` plus the
  instance directories it left) whose server is gone from the database (deleted while the agent
  was down) is destroyed; guests of live servers are left running and simply managed again
  (the driver finds them from their pid file and QMP socket).
* a loop, every ``sync_power_state_interval`` seconds (the actions themselves are not here: the
  API casts them to the agent, ``compute.power_actions`` and ``compute.guest_actions``, which
  clears their task state once the guest is done, and the sync leaves servers with a task alone):

  1. Nova's ``_sync_power_states``: each server on this host with no task in progress gets the
     driver's power state; an ACTIVE (or PAUSED) server whose guest is shut down or crashed —
     it powered itself off, or its QEMU was killed from outside — becomes SHUTOFF (``stop``);
     a STOPPED server whose guest runs is powered off. Each write is conditional on the row
     not having changed since it was read, so an API action in between wins;
  2. every ``image_cache_prune_interval`` seconds, the image cache drops unused bases older
     than ``image_cache_max_age_s``;
  3. servers whose action's task state has not moved for ``stuck_action_timeout`` seconds (its
     message was lost) are settled from their guest's power state (``compute.action_recovery``,
     which also runs once at start, ``settle_interrupted``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from novalite.compute import action_recovery
from novalite.compute.guest_spec import guest_spec
from novalite.db.base import Database, utcnow
from novalite.db.models.compute import Instance, InstanceAction
from novalite.domain.states import PowerState, VmState
from novalite.virt.driver import DriverError, GuestSpec, ServiceStopping

LOG = logging.getLogger(__name__)
SYNC_EVENT = "compute_sync_power_state"


def _guest(host: str, row: Any) -> GuestSpec:
    return guest_spec(
        row,
        host,
    )


class HostSync:
    def __init__(
        self,
        *,
        host: str,
        db: Database,
        driver: Any,
        interval: float,
        prune_interval: float = 0,
        image_max_age: float = 86400,
        action_timeout: float = 600,
    ) -> None:
        self.host, self.db, self.driver = host, db, driver
        self.action_timeout = float(action_timeout)  # <= 0: stuck task states are left alone
        self.interval = max(0.2, float(interval))
        self.prune_interval, self.image_max_age = prune_interval, image_max_age
        self._next_prune = time.monotonic() + prune_interval
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- start ----------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Destroy the guests of servers deleted while the agent was down; returns their uuids."""
        known = set(self.driver.list_running())
        root = getattr(self.driver, "instances_path", None)
        if root is not None and root.is_dir():
            known |= {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("_")}
        if not known:
            return []
        with self.db.reader() as s:
            live = set(
                s.scalars(select(Instance.uuid).where(Instance.uuid.in_(known), Instance.deleted.is_(False)))
            )
            rows = {r.uuid: r for r in s.execute(select(Instance).where(Instance.uuid.in_(known))).scalars()}
            gone = {
                u: _guest(self.host, rows[u]) if u in rows else _orphan(self.host, u) for u in known - live
            }
        destroyed = []
        for uuid, guest in sorted(gone.items()):
            try:
                self.driver.destroy(guest)
                destroyed.append(uuid)
                LOG.info("destroyed guest %s on %s: its server was deleted", uuid, self.host)
            except (DriverError, ValueError) as exc:
                LOG.warning("could not destroy the orphan guest %s on %s: %s", uuid, self.host, exc)
        return destroyed

    def settle_interrupted(self) -> dict[str, str]:
        """At start, before messages are consumed: every action the previous agent left in its
        task state is settled from the guest's power state (``compute.action_recovery``)."""
        return action_recovery.settle(self.db, self.host, self.driver)

    def settle_stuck(self) -> dict[str, str]:
        """Actions whose task state has not moved for ``action_timeout`` seconds (lost casts)."""
        if self.action_timeout <= 0:
            return {}
        older_than = utcnow() - dt.timedelta(seconds=self.action_timeout)
        return action_recovery.settle(self.db, self.host, self.driver, older_than=older_than)

    def start(self) -> Callable[[], None]:
        self._thread = threading.Thread(target=self._loop, name=f"power-sync-{self.host}", daemon=True)
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.run_once()
            except ServiceStopping:
                return
            except Exception:  # keep syncing through transient database or driver errors
                LOG.exception("power state sync on %s failed", self.host)

    # -- one pass -------------------------------------------------------------------------

    def run_once(self) -> None:
        self.sync_power_states()
        self.settle_stuck()
        if self.prune_interval > 0 and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.prune_interval
            for path in self.driver.prune_images(self.image_max_age):
                LOG.info("image cache: removed unused base %s", path.name)

    def sync_power_states(self) -> None:
        with self.db.reader() as s:
            rows = list(
                s.scalars(
                    select(Instance).where(
                        Instance.host == self.host,
                        Instance.deleted.is_(False),
                        Instance.task_state.is_(None),
                        Instance.vm_state.in_(
                            (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED)
                        ),
                    )
                )
            )
        for row in rows:
            if self._done.is_set():
                return
            guest = _guest(self.host, row)
            power = self.driver.get_info(guest).state
            self._sync_one(row, guest, power)

    def _sync_one(self, row: Any, guest: GuestSpec, power: PowerState) -> None:
        unchanged = (
            Instance.uuid == row.uuid,
            Instance.deleted.is_(False),
            Instance.task_state.is_(None),
            Instance.vm_state == row.vm_state,
            Instance.updated_at == row.updated_at,
        )
        vm = row.vm_state
        if vm == VmState.STOPPED and power in (PowerState.RUNNING, PowerState.PAUSED):
            LOG.info("instance %s is STOPPED but its guest runs on %s: powering it off", row.uuid, self.host)
            self.driver.power_off(guest)
            power = self.driver.get_info(guest).state
        stop = vm in (VmState.ACTIVE, VmState.PAUSED) and power in (PowerState.SHUTDOWN, PowerState.CRASHED)
        if not stop and int(power) == int(row.power_state):
            return
        with self.db.session() as s:  # the recorded stop is carried out as a no-op: the guest is off
            values: dict[str, Any] = {"power_state": int(power)}
            if stop:
                values.update(vm_state=VmState.STOPPED, updated_at=utcnow())
            changed = s.execute(update(Instance).where(*unchanged).values(**values)).rowcount  # type: ignore[attr-defined]
            if changed and stop:
                LOG.info("instance %s shut down on %s by itself: SHUTOFF", row.uuid, self.host)
                now = utcnow()
                s.add(
                    InstanceAction(
                        instance_uuid=row.uuid,
                        action="stop",
                        request_id=f"req-power-sync-{row.uuid}",
                        user_id=row.user_id,
                        project_id=row.project_id,
                        start_time=now,
                        finish_time=now,
                    )
                )


def _orphan(host: str, uuid: str) -> GuestSpec:
    return GuestSpec(uuid=uuid, name="", host=host, node=host, flavor={})

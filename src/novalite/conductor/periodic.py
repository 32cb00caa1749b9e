"""The conductor's periodic tasks for moves and shelve (Nova runs them on each compute):

* ``resize_confirm_window`` > 0: resizes and cold migrations left in VERIFY_RESIZE that long
  are confirmed as an admin would (``_poll_unconfirmed_resizes``, §2.6);
* ``shelved_offload_time`` > 0: servers SHELVED that long are offloaded
  (``_poll_shelved_instances``, §4.3);
* moves and unshelves that no conductor moved on for ``service_down_time`` seconds (their engine
  died: the fake driver finishes a move in milliseconds) are given up, their allocations back
  with the instance.
* builds stranded on a compute host that is down are taken back from it and scheduled again
  (``down_hosts``), once this conductor has seen the database answer for a whole
  ``service_down_time``.

One daemon thread ticks every ``TICK`` seconds (the recovery every half ``service_down_time``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from novalite.compute.rpcapi import ComputeClient
from novalite.conductor import down_hosts
from novalite.config import Settings
from novalite.context import RequestContext
from novalite.db.base import Database, unavailable
from novalite.services import server_moves, shelve

LOG = logging.getLogger(__name__)
TICK = 1.0


def recover(db: Database, settings: Settings) -> None:
    """Give up interrupted moves and unshelves (read first: usually there are none)."""
    age = settings.service_down_time
    with db.reader() as s:  # the common case, nothing stuck: no write lock taken
        stuck = server_moves.anything_interrupted(s, older_than=age)
    if stuck:
        given_up = db.write(lambda s: server_moves.recover_interrupted(s, older_than=age))
        LOG.warning("%d interrupted moves were given up", given_up)


def run_once(db: Database, settings: Settings, compute: ComputeClient) -> None:
    """One tick of the confirm and offload tasks (each its own unit of work)."""
    if settings.resize_confirm_window > 0:

        def confirm(s: Session) -> None:
            for row in server_moves.unconfirmed(s, settings.resize_confirm_window):
                server_moves.auto_confirm(s, row)

        db.write(confirm)
    if settings.shelved_offload_time > 0:

        def offload(s: Session) -> list[tuple[str, str | None]]:
            return [(i.uuid, shelve.start_offload(s, i)) for i in shelve.due_for_offload(s, age)]

        age = settings.shelved_offload_time
        for uuid, host in db.write(offload):  # each host's agent destroys its guest
            if host is None:
                db.write(functools.partial(shelve.shelved, instance_uuid=uuid, image_id=None, offload=True))
            else:
                compute.shelve_instance(
                    RequestContext.system(), instance_uuid=uuid, host=host, offload=True, image_id=None
                )


def start(
    db: Database,
    settings: Settings,
    compute: ComputeClient,
    reschedule: Callable[[RequestContext, list[str]], None] | None = None,
) -> Callable[[], None] | None:
    """Start the ticking thread; returns its stop function. ``reschedule``: how builds taken
    back from down hosts are scheduled again (None: they are not looked for)."""
    stopping = threading.Event()
    healthy_since = time.monotonic()  # the database answered since then (down-host recovery)

    # the recovery reads the instances table (no index on task_state): every half down time
    every = max(1, settings.service_down_time // 2)

    def loop() -> None:
        nonlocal healthy_since
        ticks = 0
        while not stopping.wait(TICK):
            ticks += 1
            try:
                if ticks % every == 0:
                    recover(db, settings)
                    quiet = time.monotonic() - healthy_since >= settings.service_down_time
                    if reschedule is not None and quiet:
                        down_hosts.sweep(db, settings.service_down_time, reschedule)
                run_once(db, settings, compute)
            except Exception as exc:  # a failed tick is tried again at the next one
                if unavailable(exc):
                    healthy_since = time.monotonic()
                    LOG.warning("move/shelve periodic task: the database is unavailable; retrying")
                else:
                    LOG.exception("move/shelve periodic task failed")

    thread = threading.Thread(target=loop, name="conductor-periodic", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)

    return stop

"""The conductor's periodic tasks for moves and shelve (Nova runs them on each compute):

* ``resize_confirm_window`` > 0: resizes and cold migrations left in VERIFY_RESIZE that long
  are confirmed as an admin would (``_poll_unconfirmed_resizes``, §2.6);
* ``shelved_offload_time`` > 0: servers SHELVED that long are offloaded
  (``_poll_shelved_instances``, §4.3).

One daemon thread ticks every ``TICK`` seconds; with both settings off it does not start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from novalite.config import Settings
from novalite.db.base import Database
from novalite.services import server_moves, shelve

LOG = logging.getLogger(__name__)
TICK = 1.0


def run_once(db: Database, settings: Settings) -> None:
    """One tick of both tasks (each its own unit of work)."""
    if settings.resize_confirm_window > 0:

        def confirm(s: Session) -> None:
            for row in server_moves.unconfirmed(s, settings.resize_confirm_window):
                server_moves.auto_confirm(s, row)

        db.write(confirm)
    if settings.shelved_offload_time > 0:

        def offload(s: Session) -> None:
            for inst in shelve.due_for_offload(s, settings.shelved_offload_time):
                shelve.offload(s, inst)

        db.write(offload)


def start(db: Database, settings: Settings) -> Callable[[], None] | None:
    """Start the ticking thread; returns its stop function (None when nothing is enabled)."""
    if settings.resize_confirm_window <= 0 and settings.shelved_offload_time <= 0:
        return None
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.wait(TICK):
            try:
                run_once(db, settings)
            except Exception:  # a failed tick is tried again at the next one
                LOG.exception("move/shelve periodic task failed")

    thread = threading.Thread(target=loop, name="conductor-periodic", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)

    return stop

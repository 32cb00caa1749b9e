"""What a process runs when it is a QEMU host: ``novalite serve --driver qemu`` (for this machine)
and ``novalite compute --driver qemu --host NAME`` (for NAME) share it.

:class:`QemuHost` is started in two steps around the agents' recovery:

* :meth:`QemuHost.prepare` (before any consumer accepts a message): the start-up reconcile (guests
  of servers deleted while no agent ran are destroyed), the network data plane
  (compute/networking.py) when ``network_dataplane`` resolves on, the metadata service, and the
  actions a previous agent left half done settled;
* :meth:`QemuHost.start_sync` (after the consumers): the power-state sync and image cache pruning.

:meth:`QemuHost.stop` undoes both (guests keep running). The instances, metadata socket and data
plane state live under ``settings.data_dir``: two QEMU hosts on one machine need distinct data
directories and host names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from novalite.compute import power_sync
from novalite.db.base import Database

if TYPE_CHECKING:
    from novalite.virt.qemu import QemuDriver


class QemuHost:
    def __init__(self, settings: Any, db: Database, host: str, driver: QemuDriver) -> None:
        self.settings, self.db, self.host, self.driver = settings, db, host, driver
        self.sync: power_sync.HostSync | None = None
        self._stops: list[Callable[[], None]] = []

    def prepare(self, *, registered: bool = True) -> None:
        """Reconcile, data plane, metadata service, interrupted actions. ``registered``: the host
        has its compute node (no power sync without one)."""
        from novalite.services import startup

        settings = self.settings
        if registered:
            self.sync = power_sync.HostSync(
                host=self.host,
                db=self.db,
                driver=self.driver,
                interval=settings.sync_power_state_interval,
                prune_interval=settings.image_cache_prune_interval,
                image_max_age=settings.image_cache_max_age_s,
                action_timeout=settings.stuck_action_timeout,
            )
            self.sync.reconcile()  # guests of servers deleted while no agent ran are destroyed
        for start in (startup._start_network, startup._start_metadata):
            stop = start(settings, self.db, self.host, self.driver)
            if stop is not None:
                self._stops.append(stop)
        if self.sync is not None:  # actions the previous agent left half done, before any message
            self.sync.settle_interrupted()

    def start_sync(self) -> None:
        if self.sync is not None:
            self._stops.insert(0, self.sync.start())

    def stop(self) -> None:
        """Waits for guests to power off are abandoned; guests keep running."""
        self.driver.stop()
        stops, self._stops = self._stops, []
        for stop in stops:
            stop()

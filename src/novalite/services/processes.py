"""The pieces of a deployment run as separate processes (``novalite api``, ``conductor``, ``compute``).

``novalite serve`` starts everything through ``services.startup``; the split commands
(``cli_processes``) start one piece each, joined by a broker (``amqp://``) and one database:

* ``start_api_clients(runtime)``: the API's clients only (the conductor's RPC client, the compute
  API); nothing consumes here;
* ``start_conductor(runtime)``: the conductor and the scheduler, consuming the shared ``conductor``
  queue (several conductors share the work: each message goes to one of them);
* ``start_compute(runtime, hosts)``: one compute agent per host name (``virt_driver = "qemu"``: one
  real QEMU host, with what ``serve`` runs for it, ``services.qemu_host``), registered (service, compute
  node, resource provider; an agent restarted with the same name takes its records back),
  consuming its hosts' queues (``compute.<host>``) and heartbeating every ``report_interval``.

Each returns ``stop`` (safe to call twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from novalite import notifications
from novalite.compute import action_recovery, evacuated, recovery
from novalite.compute import hosts as compute_hosts
from novalite.compute import rpcapi as compute_rpc
from novalite.compute.api import ComputeAPI
from novalite.compute.manager import ComputeAgent, dispatch, node_uuids
from novalite.conductor import rpcapi as conductor_rpc
from novalite.conductor.manager import ConductorManager
from novalite.messaging.transport import PUBLISH_PATIENCE, Transport
from novalite.scheduler.service import SchedulerService
from novalite.services import startup
from novalite.services.qemu_host import QemuHost
from novalite.virt.fake import FakeDriver

LOG = logging.getLogger(__name__)


class BrokerRequired(ValueError):
    """A split process was given ``memory://``: its peers live in other processes."""


# how long the conductor's and compute agents' publishes wait out a broker outage: their casts carry
# builds already claimed, which nothing would send again (the API's give up sooner with a 503)
ENGINE_PUBLISH_PATIENCE = 300.0


def transport_for(settings: Any, *, patience: float = PUBLISH_PATIENCE) -> Transport:
    if settings.transport_url.startswith("memory"):
        raise BrokerRequired(
            "the api, conductor and compute commands talk through a message broker: give "
            "--transport-url amqp://USER:PASSWORD@HOST:5672/VHOST (memory:// only works inside "
            "`novalite serve`)"
        )
    return Transport(settings.transport_url, namespace=startup._namespace(settings), patience=patience)


def start_api_clients(runtime: Any) -> Callable[[], None]:
    settings, db = runtime.settings, runtime.db
    transport = transport_for(settings)
    services = runtime.services
    services.conductor = conductor_rpc.ConductorClient(transport)
    services.compute_api = ComputeAPI(db, compute_rpc.ComputeClient(transport))
    services.scheduler = SchedulerService(db, settings)

    def stop() -> None:
        services.clear_engine()
        transport.stop()

    return stop


def start_conductor(runtime: Any) -> Callable[[], None]:
    settings, db = runtime.settings, runtime.db
    scheduler = SchedulerService(db, settings)
    transport = transport_for(settings, patience=ENGINE_PUBLISH_PATIENCE)
    compute_client = compute_rpc.ComputeClient(transport)
    conductor = ConductorManager(
        db=db, scheduler=scheduler, compute=compute_client, max_attempts=settings.max_attempts
    )
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="conductor")
    transport.serve(
        [conductor_rpc.TOPIC], conductor.handle, conductor_rpc.REGISTRY, executor=pool, name="conductor"
    )
    conductor.start()
    services = runtime.services
    services.conductor = conductor_rpc.ConductorClient(transport)
    services.compute_api = ComputeAPI(db, compute_client)
    services.scheduler = scheduler
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        services.clear_engine()
        transport.stop()
        conductor.stop()
        pool.shutdown(wait=True, cancel_futures=True)

    return stop


def start_compute(runtime: Any, hosts: list[str]) -> Callable[[], None]:
    settings, db = runtime.settings, runtime.db
    transport = transport_for(settings, patience=ENGINE_PUBLISH_PATIENCE)
    stop_notifications = notifications.start(settings.notifications, db, transport)
    qemu_host = None
    if settings.virt_driver == "qemu":  # one real host: everything `serve --driver qemu` runs for it
        if len(hosts) != 1:
            raise ValueError("--driver qemu runs one host per process (no --fake-hosts)")
        real = startup.qemu_driver(settings, db)
        db.write(lambda s: compute_hosts.seed_real_host(settings, s, hosts[0]))
        qemu_host = QemuHost(settings, db, hosts[0], real)
        driver: Any = real
    else:
        db.write(lambda s: compute_hosts.register(settings, s, hosts))
        driver = FakeDriver(build_delay=settings.fake_build_delay)
    conductor_client = conductor_rpc.ConductorClient(transport)
    compute_client = compute_rpc.ComputeClient(transport)
    nodes = node_uuids(db, hosts)
    agents = {
        h: ComputeAgent(
            host=h,
            node_uuid=nodes[h],
            db=db,
            driver=driver,
            conductor=conductor_client,
            max_attempts=settings.max_attempts,
        )
        for h in hosts
    }
    pool = ThreadPoolExecutor(
        max_workers=max(1, settings.max_concurrent_builds), thread_name_prefix="compute"
    )
    if qemu_host is not None:  # reconcile, data plane, metadata, interrupted actions
        qemu_host.prepare()
    # the stale guests of servers evacuated away while these hosts were down
    evacuated.destroy_evacuated(db, {h: a.driver for h, a in agents.items()})
    startup.heartbeat(db, hosts)
    recovered = recovery.rewind(db, hosts)  # before the consumer accepts a build
    transport.serve(
        [f"{compute_rpc.TOPIC}.{h}" for h in hosts],
        action_recovery.guarded(dispatch(agents), agents) if qemu_host is not None else dispatch(agents),
        compute_rpc.REGISTRY,
        executor=pool,
        name="compute",
    )
    stop_beats = startup._start_heartbeats(db, hosts, max(0.5, float(settings.report_interval)))
    recovery.hand_over(
        db, conductor_client, compute_client, hosts=hosts, messages_lost=False, report=recovered
    )
    if qemu_host is not None:
        qemu_host.start_sync()  # power-state sync and image cache pruning
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        stop_beats()
        if qemu_host is not None:
            qemu_host.stop()  # guests keep running
        else:
            driver.stop()
        stop_notifications()
        transport.stop()
        pool.shutdown(wait=False, cancel_futures=True)

    return stop

"""Start the asynchronous half of the deployment inside this process.

``start(runtime) -> stop``: the messaging transport (``Settings.transport_url``), the
scheduler (enabled filters/weighers checked here: an unknown name stops the start-up with a
clear error), the conductor's consumer, one compute agent per simulated host (their builds
run in a shared pool of ``max_concurrent_builds`` threads), and the heartbeat thread that
keeps the agents' services up. On start it also recovers what a previous process left
behind (``compute.recovery``: interrupted builds resume on the host that holds their claim;
with ``memory://`` builds still waiting for a host are handed to the conductor again). Fills
``runtime.services`` (``runtime.Services``: the conductor's RPC client, ``compute_api`` and
``scheduler``). ``stop`` undoes it all and may be called twice.

In a two-process ``novalite serve`` (``runtime.role``, see ``services.engine_process``), the API
process only registers the clients, whose messages cross ``runtime.peer`` to the engine process,
and the engine process starts everything else.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from novalite import notifications
from novalite.compute import action_recovery, evacuated, recovery
from novalite.compute import hosts as fake_hosts
from novalite.compute import rpcapi as compute_rpc
from novalite.compute.api import ComputeAPI
from novalite.compute.manager import ComputeAgent, dispatch, node_uuids
from novalite.conductor import rpcapi as conductor_rpc
from novalite.conductor.manager import ConductorManager
from novalite.db.base import Database, utcnow
from novalite.db.base import unavailable as db_unavailable
from novalite.db.models.placement import Service
from novalite.messaging.transport import Transport
from novalite.scheduler.service import SchedulerService
from novalite.services.qemu_host import QemuHost
from novalite.virt.fake import FakeDriver

if TYPE_CHECKING:
    from novalite.virt.qemu import QemuDriver

LOG = logging.getLogger(__name__)


def _driver(runtime: Any) -> FakeDriver:
    """The driver of the simulated hosts (``--fake-hosts``): always the fake one."""
    name = runtime.settings.virt_driver
    if name not in ("fake", "qemu"):
        raise ValueError(f"unknown virt_driver {name!r}; available: fake, qemu")
    return FakeDriver(build_delay=runtime.settings.fake_build_delay)


def qemu_driver(settings: Any, db: Database | None = None) -> QemuDriver:
    """This machine's driver with ``virt_driver = "qemu"`` (docs/qemu.md). A missing QEMU
    (``QemuNotInstalled``, naming the Debian packages), a bad accelerator or an image source it
    cannot use (services/image_source.py) stops the start-up."""
    from novalite.services.image_source import ImageSourceError, image_fetch
    from novalite.services.tunnel import my_ip
    from novalite.virt.qemu import QemuDriver, QemuNotInstalled
    from novalite.virt.qemu.migration import parse_port_range

    # an explicit my_ip: incoming live migrations on TCP there (hosts on different machines)
    address = my_ip(settings) if str(getattr(settings, "my_ip", "") or "").strip() else None
    try:
        fetch = image_fetch(settings, db)
    except ImageSourceError as exc:
        raise SystemExit(f"novalite: --driver qemu cannot start: {exc}") from None
    try:
        return QemuDriver(
            settings.data_dir / "instances",
            fetch=fetch,
            accelerator=settings.qemu_accelerator,
            shutdown_timeout=settings.shutdown_timeout,
            migration_address=address,
            migration_ports=parse_port_range(settings.live_migration_port_range),
            migration_bandwidth_mib=max(0, int(settings.live_migration_bandwidth)),
        )
    except (QemuNotInstalled, ValueError) as exc:
        raise SystemExit(f"novalite: --driver qemu cannot start: {exc}") from None


def image_dir(settings: Any) -> Path:
    """Where this QEMU host reads image data: ``image_dir`` (``novalite compute --image-dir``: the
    API's ``<data_dir>/images``, local or a shared mount), else this process's own image store."""
    from novalite.image import store

    configured = getattr(settings, "image_dir", "")
    return Path(configured) if configured else store.images_dir(settings.data_dir)


def _start_network(settings: Any, db: Database, host: str | None, driver: Any) -> Callable[[], None] | None:
    """The QEMU host's network data plane (compute/networking.py): reconciled now (what is missing
    rebuilt, what is stale removed, running guests untouched), then whenever the database changes."""
    if host is None or driver is None:
        return None
    from novalite.compute import networking

    if not networking.resolve(settings.network_dataplane):
        return None
    from novalite.services.tunnel import my_ip

    net = networking.HostNetworking(
        db,
        host,
        settings.data_dir,
        expose_external_network=settings.expose_external_network,
        tunnel_ip=my_ip(settings),
    )
    net.reconcile()
    driver.network = net
    return net.start()


def _start_metadata(settings: Any, db: Database, host: str | None, driver: Any) -> Callable[[], None] | None:
    """The QEMU host's metadata service (compute/metadata_service.py) on its unix socket. Guests on
    user-mode networking reach it through their guestfwd relay (the driver's ``metadata_command``);
    with the network data plane on, through the proxy in each network's namespace."""
    if host is None or driver is None:
        return None
    from novalite.compute import metadata_service

    service = metadata_service.MetadataService(db, host, settings.data_dir)
    try:
        stop = service.start()
        if driver.network is None:
            driver.metadata_command = metadata_service.relay_command(settings.data_dir)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"novalite: the metadata service cannot start: {exc}") from None
    return stop


def _namespace(settings: Any) -> str | None:
    """Queue-name prefix. memory://: private to this transport. A broker: shared by every process
    of one deployment (same database) and apart from other deployments on the same broker."""
    if settings.transport_url.startswith("memory"):
        return None
    if settings.messaging_prefix:
        return settings.messaging_prefix.rstrip(".") + "."
    digest = hashlib.sha1(settings.effective_database_url.encode()).hexdigest()[:10]
    return f"novalite-{digest}."


def heartbeat(db: Database, hosts: list[str]) -> None:
    """Mark the local agents' services as seen now (one statement for all of them)."""
    if not hosts:
        return
    with db.session() as s:
        s.execute(
            update(Service)
            .where(Service.binary == fake_hosts.BINARY, Service.host.in_(hosts))
            .values(last_seen_at=utcnow(), report_count=Service.report_count + 1)
            .execution_options(synchronize_session=False)
        )


def _start_heartbeats(db: Database, hosts: list[str], interval: float) -> Callable[[], None]:
    done = threading.Event()

    def loop() -> None:
        while not done.wait(interval):
            try:
                heartbeat(db, hosts)
            except Exception as exc:  # keep beating through transient database errors
                if db_unavailable(exc):  # restarting: a line per beat, not a traceback
                    LOG.warning("heartbeat failed, the database is unavailable; retrying")
                else:
                    LOG.exception("heartbeat failed")

    thread = threading.Thread(target=loop, name="compute-heartbeat", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(5)

    return stop


def _transport(runtime: Any) -> Transport:
    settings = runtime.settings
    transport = Transport(settings.transport_url, namespace=_namespace(settings))
    if runtime.peer is not None and transport.is_memory:
        transport.attach_peer(runtime.peer, name=runtime.role)
    return transport


def _start_api_side(runtime: Any) -> Callable[[], None]:
    """The API process of a two-process serve: clients only; the engine process consumes."""
    settings, db = runtime.settings, runtime.db
    transport = _transport(runtime)
    stop_notifications = notifications.start(settings.notifications, db, transport, service="nova-api")
    services = runtime.services
    services.conductor = conductor_rpc.ConductorClient(transport)
    services.compute_api = ComputeAPI(db, compute_rpc.ComputeClient(transport))
    services.scheduler = SchedulerService(db, settings)

    def stop() -> None:
        services.clear_engine()
        stop_notifications()
        transport.stop()

    return stop


def start(runtime: Any) -> Callable[[], None]:
    if runtime.role == "api":
        return _start_api_side(runtime)
    settings, db = runtime.settings, runtime.db
    scheduler = SchedulerService(db, settings)
    driver = _driver(runtime)
    transport = _transport(runtime)
    stop_notifications = notifications.start(settings.notifications, db, transport)
    conductor_client = conductor_rpc.ConductorClient(transport)
    compute_client = compute_rpc.ComputeClient(transport)
    conductor = ConductorManager(
        db=db, scheduler=scheduler, compute=compute_client, max_attempts=settings.max_attempts
    )
    conductor_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="conductor")
    build_pool = ThreadPoolExecutor(
        max_workers=max(1, settings.max_concurrent_builds), thread_name_prefix="compute"
    )
    with db.reader() as s:
        hosts = fake_hosts.local_hosts(s)
    real_host = fake_hosts.real_host(settings)
    real_driver = qemu_driver(settings, db) if real_host is not None else None
    if real_host is not None:
        hosts.append(real_host)
    nodes = node_uuids(db, hosts)
    agents = {
        h: ComputeAgent(
            host=h,
            node_uuid=nodes[h],
            db=db,
            driver=real_driver if h == real_host and real_driver is not None else driver,
            conductor=conductor_client,
            max_attempts=settings.max_attempts,
        )
        for h in hosts
        if h in nodes
    }
    qemu_host = None
    if real_host is not None and real_driver is not None:  # services.qemu_host, shared with `compute`
        qemu_host = QemuHost(settings, db, real_host, real_driver)
        qemu_host.prepare(registered=real_host in agents)
    # the stale guests of servers evacuated away while these hosts were down
    evacuated.destroy_evacuated(db, {h: a.driver for h, a in agents.items()})
    heartbeat(db, list(agents))
    recovered = recovery.rewind(db, list(agents))  # before any consumer accepts a build
    transport.serve(
        [conductor_rpc.TOPIC],
        conductor.handle,
        conductor_rpc.REGISTRY,
        executor=conductor_pool,
        name="conductor",
    )
    transport.serve(
        [compute_rpc.TOPIC],
        action_recovery.guarded(dispatch(agents), agents),
        compute_rpc.REGISTRY,
        executor=build_pool,
        name="compute",
    )
    conductor.start()
    stop_beats = _start_heartbeats(db, list(agents), max(0.5, float(settings.report_interval)))
    services = runtime.services
    services.conductor = conductor_client
    services.compute_api = ComputeAPI(db, compute_client)
    services.scheduler = scheduler
    # the previous engine's builds: resumed on their claims, or scheduled again (memory://: its
    # queues died with it; a broker still holds what was not consumed)
    recovery.hand_over(
        db,
        conductor_client,
        compute_client,
        hosts=list(agents),
        messages_lost=transport.is_memory,
        report=recovered,
    )
    if qemu_host is not None:
        qemu_host.start_sync()
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        services.clear_engine()
        stop_beats()
        driver.stop()  # cut short build delays so no worker outlives the service
        if qemu_host is not None:
            qemu_host.stop()  # waits for guests to power off are abandoned; guests keep running
        stop_notifications()
        transport.stop()
        conductor.stop()
        conductor_pool.shutdown(wait=True, cancel_futures=True)
        build_pool.shutdown(wait=False, cancel_futures=True)

    return stop

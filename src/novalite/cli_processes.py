"""``novalite api``, ``novalite conductor`` and ``novalite compute``: one deployment as separate
processes, possibly on several machines, joined by a message broker (``--transport-url amqp://``)
and one database (``--database-url postgresql+psycopg://``). ``novalite serve`` stays the
all-in-one. None of them migrates the database: ``novalite db upgrade`` is run once per
deployment, and a process started against another schema revision refuses to start.
docs/deploy.md shows a three-machine deployment."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from novalite.config import Settings, load_settings

_OVERRIDES_ENV = "NOVALITE_API_WORKER_SETTINGS"  # the parent's flags, for `api --workers N` workers

_BROKER = [
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where the token keys (and a SQLite database) live [env NOVALITE_DATA_DIR].",
    ),
    click.option(
        "--database-url",
        default=None,
        help="e.g. postgresql+psycopg://novalite:PASSWORD@CONTROLLER/novalite [env NOVALITE_DATABASE_URL].",
    ),
    click.option(
        "--config",
        "config",
        default=None,
        type=click.Path(dir_okay=False),
        help="TOML config file with a [novalite] table [env NOVALITE_CONFIG].",
    ),
    click.option(
        "--transport-url", default=None, help="The broker: amqp://USER:PASSWORD@HOST:5672/VHOST (required)."
    ),
    click.option(
        "--messaging-prefix",
        default=None,
        help="Queue and exchange name prefix on the broker [default: derived from the database URL].",
    ),
    click.option("--log-level", default=None, help="debug, info, warning."),
]


def broker(fn: Any) -> Any:
    for opt in reversed(_BROKER):
        fn = opt(fn)
    return fn


def _settings(kwargs: dict[str, Any]) -> Settings:
    """Settings of a split process: a broker and a database at this code's schema, or exit."""
    from novalite.cli import prepare_data_dir
    from novalite.db.base import SchemaOutOfDate, check_schema

    try:
        settings = load_settings(kwargs)
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if settings.transport_url.startswith("memory"):
        raise click.ClickException(
            "this command talks to the other novalite processes through a message broker: give "
            "--transport-url amqp://USER:PASSWORD@HOST:5672/VHOST (memory:// only works inside "
            "`novalite serve`)"
        )
    settings.fake_hosts = 0  # only `novalite compute` registers hosts, by name
    prepare_data_dir(settings)
    try:
        check_schema(settings.effective_database_url)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def _run_until_signalled(name: str, start: Callable[[], Callable[[], None]]) -> None:
    """Start, say so, wait for SIGTERM or SIGINT, stop."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    stop = start()
    click.echo(f"novalite {name} running (pid {os.getpid()})")
    sys.stdout.flush()
    try:
        done.wait()
    finally:
        stop()


@click.command()
@broker
@click.option("--host", default=None, help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default 8774].")
@click.option("--public-url", default=None, help="Base URL clients use (catalog), e.g. behind a TLS proxy.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, help="API processes sharing the port.")
@click.option("--admin-password", default=None, help="Admin password [env NOVALITE_ADMIN_PASSWORD].")
@click.option("--demo-password", default=None, help="Demo password [env NOVALITE_DEMO_PASSWORD].")
@click.option("--no-clouds-yaml", is_flag=True, default=False, help="Do not write clouds.yaml entries.")
def api(workers: int, **kwargs: Any) -> None:
    """The HTTP API only (identity, compute, image, network, volume, placement): no conductor and
    no compute agent run here."""
    if kwargs.pop("no_clouds_yaml"):
        kwargs["write_clouds_yaml"] = False
    settings = _settings(kwargs)
    import uvicorn

    from novalite.app import build_runtime
    from novalite.bootstrap import bootstrap

    runtime = build_runtime(settings)
    report = bootstrap(runtime)  # users, roles, flavors, images: once, before the workers start
    runtime.db.dispose()
    click.echo(f"novalite api listening on {settings.effective_public_url} ({workers} worker(s))")
    for user, password in report.generated.items():
        compute = user == settings.service_user_name
        where = "the compute hosts' --service-password" if compute else "also in clouds.yaml"
        click.echo(f"generated password for '{user}': {password}   (shown once; {where})")
    sys.stdout.flush()
    os.environ[_OVERRIDES_ENV] = json.dumps({k: v for k, v in kwargs.items() if v is not None})
    common_config: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.log_level.lower() == "debug",
        "timeout_graceful_shutdown": 5,
        "lifespan": "on",
    }
    if workers == 1:
        config = uvicorn.Config(worker_app(), **common_config)
        from novalite.cli import _quiet_server_class

        _quiet_server_class()(config).run()
    else:
        uvicorn.run("novalite.cli_processes:worker_app", factory=True, workers=workers, **common_config)


def worker_app() -> Any:
    """The ASGI application of one API process: the API half of ``services.startup`` (clients of
    the conductor and the compute agents, which consume elsewhere)."""
    from novalite.app import build_runtime, create_app

    settings = load_settings(json.loads(os.environ.get(_OVERRIDES_ENV, "{}")))
    settings.fake_hosts = 0
    runtime = build_runtime(settings)
    runtime.role = "api"
    return create_app(runtime)


@click.command()
@broker
def conductor(**kwargs: Any) -> None:
    """The conductor and the scheduler. Several may run at once: they share the conductor queue."""
    settings = _settings(kwargs)
    from novalite.app import build_runtime
    from novalite.services import processes

    runtime = build_runtime(settings)
    _run_until_signalled("conductor", lambda: processes.start_conductor(runtime))


@click.command()
@broker
@click.option(
    "--host", "host_name", required=True, help="This compute host's name (its service and hypervisor)."
)
@click.option(
    "--driver",
    "virt_driver",
    type=click.Choice(["fake", "qemu"]),
    default="fake",
    help="fake: simulated guests; qemu: real guests on this machine (docs/deploy.md).",
)
@click.option(
    "--accelerator",
    "qemu_accelerator",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default=None,
    help="--driver qemu: QEMU accelerator [default auto].",
)
@click.option(
    "--network-dataplane",
    "network_dataplane",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    help="--driver qemu: bridges, taps, dnsmasq, security groups, VXLAN to other hosts [default auto].",
)
@click.option("--my-ip", "my_ip", default=None, help="--driver qemu: this host's tunnel (VXLAN) address.")
@click.option(
    "--image-dir",
    "image_dir",
    default=None,
    help="--driver qemu: the image store's files (the API's DATA_DIR/images, local or shared).",
)
@click.option(
    "--image-source",
    "image_source",
    type=click.Choice(["auto", "api", "dir"]),
    default=None,
    help="--driver qemu: api (the Image API, as the service user) or dir (--image-dir) "
    "[default auto: api unless --image-dir is given].",
)
@click.option(
    "--service-password",
    "service_user_password",
    default=None,
    help="--driver qemu: the service user's password, for the Image API "
    "[env NOVALITE_SERVICE_USER_PASSWORD, config [service_user] password].",
)
@click.option(
    "--fake-hosts",
    type=click.IntRange(0, 10000),
    default=None,
    help="Simulated hosts this process runs: N >= 2 gives NAME-1..NAME-N [default: NAME alone].",
)
@click.option("--fake-build-delay", type=float, default=None, help="Seconds every fake build takes.")
def compute(host_name: str, fake_hosts: int | None, **kwargs: Any) -> None:
    """A compute agent for host NAME (or for several simulated hosts): registers its service,
    hypervisor and resource provider, consumes its hosts' queues and heartbeats every
    report_interval."""
    hosts = compute_host_names(host_name, fake_hosts)
    if kwargs["virt_driver"] == "qemu":
        if len(hosts) > 1:
            raise click.BadParameter("--driver qemu runs one host per process", param_hint="--fake-hosts")
        from types import SimpleNamespace

        from novalite.cli import _check_qemu

        # before anything touches the database or the broker; no simulated hosts here anyway
        _check_qemu(SimpleNamespace(fake_hosts=0), fake_hosts_given=True)
    settings = _settings(kwargs)
    if settings.virt_driver == "qemu":
        from novalite.services.image_source import ImageSourceError, check_credentials, resolve

        try:
            settings.image_source = resolve(settings, split_compute=True)
            if settings.image_source == "api":
                check_credentials(settings)
        except ImageSourceError as exc:
            raise click.ClickException(str(exc)) from None
    from novalite.app import build_runtime
    from novalite.services import processes

    runtime = build_runtime(settings)
    _run_until_signalled(f"compute ({', '.join(hosts)})", lambda: processes.start_compute(runtime, hosts))


def compute_host_names(name: str, fake_hosts: int | None) -> list[str]:
    if not name.strip() or any(c in name for c in "*# "):
        raise click.BadParameter(f"{name!r} is not a host name", param_hint="--host")
    if fake_hosts is None or fake_hosts <= 1:
        return [name]
    return [f"{name}-{i}" for i in range(1, fake_hosts + 1)]


def register(group: click.Group) -> None:
    """Add ``api``, ``conductor`` and ``compute`` to the ``novalite`` command."""
    for command in (api, conductor, compute):
        group.add_command(command)

"""The ``novalite`` command."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click

from novalite import cli_processes
from novalite.config import load_settings

_IMPORTED_AT = time.perf_counter()

_COMMON = [
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where the SQLite database, image files and keys live [env NOVALITE_DATA_DIR].",
    ),
    click.option(
        "--database-url",
        default=None,
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@127.0.0.1/novalite [env NOVALITE_DATABASE_URL].",
    ),
    click.option(
        "--config",
        "config",
        default=None,
        type=click.Path(dir_okay=False),
        help="TOML config file with a [novalite] table [env NOVALITE_CONFIG].",
    ),
]


def common(fn: Any) -> Any:
    for opt in reversed(_COMMON):
        fn = opt(fn)
    return fn


def _quiet_server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """Shut down cleanly on SIGTERM/SIGINT and exit 0 (uvicorn re-raises the signal otherwise)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return QuietServer


def _head_revisions() -> set[str]:
    """The migration scripts' head revision ids, read from their ``revision =`` lines (no Alembic import)."""
    import re

    from novalite.db.base import migrations_dir

    revisions, parents = set(), set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        text = script.read_text()
        rev = re.search(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*(?::[^=]+)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    return revisions - parents


def prepare_schema(url: str) -> None:
    """Bring the schema to head at start-up, cheaply in the two common cases.

    * already at head (every restart): one SELECT, Alembic is not even imported;
    * an empty database (first start): every table created from the models in one transaction and
      the head revision recorded, as ``alembic stamp`` would (tests/unit/test_migrations.py keeps
      the models and the migration identical);
    * anything else (an older schema): ``alembic upgrade head``.
    """
    from sqlalchemy import create_engine, inspect, pool, text

    from novalite.db.base import upgrade

    heads = _head_revisions()
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":  # what Database sets anyway; no fsync per DDL commit
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            tables = set(inspect(conn).get_table_names())
            if "alembic_version" in tables:
                current = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
                if heads and current == heads:
                    return
            elif not tables and len(heads) == 1:
                import novalite.db.models  # noqa: F401  (registers every table)
                from novalite.db.base import Base

                Base.metadata.create_all(conn)
                conn.execute(
                    text(
                        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                    )
                )
                conn.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": next(iter(heads))}
                )
                return
    finally:
        engine.dispose()
    upgrade(url)


def prepare_data_dir(settings: Any) -> None:
    """Files this process creates are its user's alone (umask 077), the data directory is 0700, and
    an existing SQLite database and its side files are made 0600: they hold password hashes, and a
    copy of the data directory must not hand anyone the token keys (``identity.keys``).

    A data directory that exists with a looser mode is tightened as well; when it is not the default
    location (the user named it) that is said on stderr."""
    import os

    from novalite.config import default_data_dir

    os.umask(0o077)
    data_dir = settings.data_dir
    existed = data_dir.exists()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode & 0o777
    if mode != 0o700:
        os.chmod(data_dir, 0o700)
        if existed and data_dir.resolve() != default_data_dir().resolve():
            click.echo(f"novalite: {data_dir} was mode {mode:o}; made it 0700 (database and keys)", err=True)
    url = settings.effective_database_url
    if url.startswith("sqlite") and "///" in url:
        name = url.split("///", 1)[1].split("?", 1)[0]
        if name and name != ":memory:":
            from pathlib import Path

            db_path = Path(name)
            for suffix in ("", "-wal", "-shm", "-journal", ".writelock", ".writegate"):
                side = db_path.with_name(db_path.name + suffix)
                if side.exists() and side.stat().st_mode & 0o077:
                    os.chmod(side, 0o600)


@click.group()
def main() -> None:
    """novalite: an OpenStack Compute (Nova) compatible cloud controller."""


cli_processes.register(main)  # novalite api / conductor / compute (several machines: docs/deploy.md)


@main.command()
@common
@click.option("--host", default=None, help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default 8774].")
@click.option("--public-url", default=None, help="Base URL clients use (catalog); default http://HOST:PORT.")
@click.option("--fake-hosts", type=int, default=None, help="Number of simulated hypervisors [default 1].")
@click.option("--fake-build-delay", type=float, default=None, help="Seconds every fake build takes.")
@click.option("--admin-password", default=None, help="Admin password [env NOVALITE_ADMIN_PASSWORD].")
@click.option("--demo-password", default=None, help="Demo password [env NOVALITE_DEMO_PASSWORD].")
@click.option("--transport-url", default=None, help="Messaging: memory:// (default) or amqp://...")
@click.option(
    "--engine-process",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    help="Run the conductor and compute agents in a second process [default auto: with 2+ CPUs].",
)
@click.option(
    "--driver",
    "virt_driver",
    type=click.Choice(["fake", "qemu"]),
    default=None,
    help="fake: simulated hosts (default); qemu: this machine runs real guests (docs/qemu.md).",
)
@click.option(
    "--accelerator",
    "qemu_accelerator",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default=None,
    help="QEMU accelerator [default auto: KVM only when a probe guest runs under it, else TCG].",
)
@click.option(
    "--network-dataplane",
    "network_dataplane",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    help="--driver qemu: guests on bridges and taps with DHCP and security groups (docs/networking.md) "
    "[default auto: on as root with dnsmasq, nft and pyroute2, else QEMU user-mode networking].",
)
@click.option(
    "--expose-external-network",
    "expose_external_network",
    is_flag=True,
    default=None,
    help="With the network data plane: put the external network's gateway address on its bridge in "
    "the host's namespace (as DevStack's br-ex), so the host can reach floating IPs [default: off].",
)
@click.option("--no-clouds-yaml", is_flag=True, default=False, help="Do not write clouds.yaml entries.")
@click.option("--log-level", default=None, help="debug, info, warning.")
def serve(**kwargs: Any) -> None:
    """Start every service on one port (the engine in a second process on 2+ CPUs, restarted
    by the API process should it die)."""
    from novalite.runtime import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts (the password prehash below starts some)
    phases = _Phases()
    if kwargs.pop("no_clouds_yaml"):
        kwargs["write_clouds_yaml"] = False
    settings = load_settings(kwargs)
    if settings.virt_driver == "qemu":
        _check_qemu(settings, fake_hosts_given=kwargs.get("fake_hosts") is not None)
    prepare_data_dir(settings)
    from novalite import instance_lock

    try:  # before anything writes: a second serve must not run migrations, bootstrap or recovery
        instance_lock.hold(settings)
    except instance_lock.InstanceLocked as exc:
        raise SystemExit(str(exc)) from None
    from novalite.identity.passwords import prehash

    # the bootstrap stores a fresh hash of each given password: scrypt runs on other cores meanwhile
    prehash([p for p in (settings.admin_password, settings.demo_password) if p])
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import uvicorn

    from novalite.app import build_runtime, create_app
    from novalite.bootstrap import bootstrap

    phases.mark("imports")
    prepare_schema(settings.effective_database_url)
    phases.mark("schema")
    runtime = build_runtime(settings)
    phases.mark("runtime")
    report = bootstrap(runtime)
    phases.mark("bootstrap")
    from novalite.runtime import settle_heap

    def started() -> None:
        phases.mark("background services")
        settle_heap()
        phases.mark("heap settled")
        from novalite import memory

        memory.start(runtime.db)  # idle connections and free heap go back after each burst

    from novalite.services import engine_process

    engine = engine_process.start(runtime)
    if engine is not None:
        engine.watch()
        phases.mark("engine forked")
    app = create_app(runtime, on_started=started)
    phases.mark("app")
    url = settings.effective_public_url
    click.echo(f"novalite listening on {url}  (data in {settings.data_dir})")
    for user, password in report.generated.items():
        compute = user == settings.service_user_name
        where = "the compute hosts' --service-password" if compute else "also in clouds.yaml"
        click.echo(f"generated password for '{user}': {password}   (shown once; {where})")
    if report.clouds_yaml:
        click.echo(f"clouds.yaml entries 'novalite' and 'novalite-admin' written to {report.clouds_yaml}")
        click.echo("export OS_CLOUD=novalite")
    sys.stdout.flush()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level.lower() == "debug",
        timeout_graceful_shutdown=5,
        loop="auto",
        http="auto",
        lifespan="on",
    )  # uvloop + httptools when installed
    try:
        _quiet_server_class()(config).run()
    finally:
        if engine is not None:
            engine.stop()
        runtime.db.dispose()


def _check_qemu(settings: Any, *, fake_hosts_given: bool) -> None:
    """``--driver qemu``: refuse to start without QEMU (naming the Debian packages); the
    simulated hosts are off unless asked for (``--fake-hosts`` or NOVALITE_FAKE_HOSTS)."""
    import os
    import shutil

    from novalite.virt.qemu.driver import REQUIRED_TOOLS

    missing = [
        f"{tool} (Debian package {pkg})" for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)
    ]
    if missing:
        raise SystemExit(
            "novalite: --driver qemu needs " + " and ".join(missing) + "; install them with "
            "`sudo apt-get install qemu-system-x86 qemu-utils` or scripts/install-qemu.sh"
        )
    if not fake_hosts_given and not os.environ.get("NOVALITE_FAKE_HOSTS"):
        settings.fake_hosts = 0


class _Phases:
    """With NOVALITE_STARTUP_TIMES=1 in the environment, ``serve`` prints how long each start-up phase
    took to stderr (``startup phase <name>: <ms> ms``; the first one counts from the import of this
    module; bench/startup.py reads them)."""

    def __init__(self) -> None:
        import os

        self.enabled = os.environ.get("NOVALITE_STARTUP_TIMES", "") not in ("", "0")
        self._last = _IMPORTED_AT

    def mark(self, name: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        print(f"startup phase {name}: {(now - self._last) * 1000:.0f} ms", file=sys.stderr, flush=True)
        self._last = now


@main.group()
def image() -> None:
    """The default guest image for real guests (--driver qemu)."""


@image.command("build")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory for the image and its cache [default ~/.cache/novalite/guest].",
)
def image_build(output: str | None) -> None:
    """Build (or find up to date) novalite's default bootable guest disk image, from Debian
    packages: a partition table, a bootloader, a kernel and a busybox initramfs."""
    from pathlib import Path

    from novalite.guest.builder import GuestBuildError, build_guest_image, default_cache_dir

    try:
        built = build_guest_image(Path(output).expanduser() if output else default_cache_dir())
    except GuestBuildError as exc:
        raise click.ClickException(str(exc)) from None
    state = "built" if built.built else "up to date"
    click.echo(f"{built.path} {state} (kernel {built.kernel_version})")


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@common
@click.option("--revision", default="head")
def db_upgrade(revision: str, **kwargs: Any) -> None:
    """Apply Alembic migrations (serve does this on start)."""
    from novalite.db.base import upgrade

    settings = load_settings(kwargs)
    prepare_data_dir(settings)
    upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {settings.effective_database_url} is at {revision}")


@main.group()
def keys() -> None:
    """Token signing keys: the Fernet key repository (<data-dir>/fernet-keys)."""


@keys.command("rotate")
@common
@click.option(
    "--max-active-keys",
    type=int,
    default=None,
    help="Keys kept: staged + primary + secondary [default 3; env NOVALITE_MAX_ACTIVE_KEYS].",
)
def keys_rotate(**kwargs: Any) -> None:
    """The staged key becomes the primary, a new key is staged, the oldest keys beyond
    max_active_keys are removed. Running processes pick the change up by themselves; copy the
    directory to every other API host afterwards."""
    import os

    from novalite.identity.keys import KeyRepository, KeyRepositoryError

    os.umask(0o077)
    settings = load_settings(kwargs)
    try:
        repo = KeyRepository(settings.effective_token_key_dir, settings.max_active_keys)
        primary = repo.rotate()
        count = len(repo.load())
    except (KeyRepositoryError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"key {primary} is the primary key now ({count} keys in {repo.path})")
    click.echo("copy that directory to every other API host (0700, key files 0600)")


if __name__ == "__main__":  # pragma: no cover
    main()

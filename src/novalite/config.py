"""Settings: defaults < config file (TOML) < environment (NOVALITE_*) < command-line flags.

The config file is ``$NOVALITE_CONFIG`` or ``<data-dir>/novalite.toml`` when present.
Every field of :class:`Settings` can be set in the file's ``[novalite]`` table, with the
environment variable ``NOVALITE_<FIELD>`` (upper case), or with the matching flag.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novalite.scheduler.defaults import DEFAULT_FILTERS, DEFAULT_WEIGHERS


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "novalite"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8774
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # empty: sqlite in data_dir
    transport_url: str = "memory://"
    # broker queue/exchange name prefix (under the transport URL's vhost); empty: derived from the
    # database URL, so every process of one deployment agrees and two deployments stay apart
    messaging_prefix: str = ""
    # serve: the engine (conductor, scheduler, compute agents) in a process of its own
    # (services.engine_process): auto = when two or more CPUs are usable; on; off
    engine_process: str = "auto"
    public_url: str = ""  # empty: http://host:port
    region: str = "RegionOne"
    admin_password: str = ""
    demo_password: str = ""
    token_ttl: int = 3600  # seconds a new token is valid (a re-scoped one keeps its parent's expiry)
    console_token_ttl: int = 600  # seconds a console URL's token is valid (Nova's [consoleauth] token_ttl)
    # login lockout (Keystone's [security_compliance]): after this many wrong passwords in a row a
    # user cannot log in for lockout_duration seconds, even with the right one; 0: off.
    # lockout_duration 0: locked until an admin sets a new password
    lockout_failure_attempts: int = 0
    lockout_duration: int = 1800
    # the Fernet key repository (identity.keys); empty: <data_dir>/fernet-keys. Every API host
    # needs the same keys: copy the directory to the others after each rotation
    token_key_dir: str = ""
    max_active_keys: int = 3  # staged + primary + secondary keys kept by `novalite keys rotate`
    write_clouds_yaml: bool = True
    clouds_yaml_path: str = ""  # empty: ~/.config/openstack/clouds.yaml
    # compute / fake driver
    fake_hosts: int = 1
    fake_host_vcpus: int = 64
    fake_host_ram_mb: int = 131072
    fake_host_disk_gb: int = 2048
    fake_build_delay: float = 0.0
    virt_driver: str = "fake"  # fake | qemu (this machine runs real guests: docs/qemu.md)
    # QEMU driver: auto (KVM only when a probe guest runs under it) | kvm | tcg
    qemu_accelerator: str = "auto"
    # QEMU host: auto (on as root with CAP_NET_ADMIN, dnsmasq, nft, pyroute2) | on | off (user-mode
    # networking); bridges, taps, dnsmasq and nftables security groups (docs/networking.md)
    network_dataplane: str = "auto"
    # with the data plane on: the external network's subnet gateway on its bridge in the host's
    # namespace (DevStack's br-ex), so the host reaches floating IPs; off: nothing routed on the host
    expose_external_network: bool = False
    # QEMU host: this host's tunnel address (VXLAN peers reach it there; the compute node's host_ip);
    # empty: the address of the interface holding the default route, else 127.0.0.1
    my_ip: str = ""
    # QEMU host with my_ip set: the TCP ports an incoming live migration listens on (NBD disks and
    # memory, two per migration; unencrypted, as libvirt's default TCP transport), libvirt's range
    live_migration_port_range: str = "49152-49215"
    # QEMU host: MiB/s an outgoing live migration's memory copy may use (Nova's [libvirt]
    # live_migration_bandwidth); 0: no limit
    live_migration_bandwidth: int = 0
    # QEMU host: the image store's data files (the API's <data_dir>/images); empty: this data dir's
    image_dir: str = ""
    # QEMU host: where image data comes from: dir (image_dir), api (GET /image/v2/images/{id}/file
    # with the service user's token), auto (novalite compute: api unless image_dir is given;
    # novalite serve: dir)
    image_source: str = "auto"
    image_api_url: str = ""  # the Image API's base (https://cloud/image); empty: the catalog's
    # the service user a compute host authenticates as (Nova's [service_user]); the config file may
    # also hold them in a [service_user] table (username, password, project_name, auth_url).
    # bootstrap creates it with service_user_password (generated and printed once when empty)
    service_user_name: str = "nova"
    service_user_password: str = ""
    service_user_project: str = "service"
    service_user_auth_url: str = ""  # the Identity API's base (https://cloud/identity); empty: the catalog's
    shutdown_timeout: float = 60  # seconds a guest has to power off on ACPI before a hard stop
    image_cache_max_age_s: int = 86400  # unused cached image bases older than this are removed
    image_cache_prune_interval: int = 2400  # seconds between two image cache passes
    sync_power_state_interval: float = 10  # seconds between two power-state syncs (QEMU host)
    # an action's task state on the QEMU host unchanged this long (its message lost) is settled
    # from the guest's power state by the sync loop (compute/action_recovery.py); <= 0: never
    stuck_action_timeout: float = 600
    # what the QEMU host keeps for itself (Nova's reserved_host_*), taken off its inventories
    reserved_host_memory_mb: int = 512
    reserved_host_disk_mb: int = 0
    reserved_host_cpus: int = 0
    guest_image_cache: str = ""  # the default guest image's build cache; empty: ~/.cache/novalite/guest
    # scheduler
    max_attempts: int = 3
    host_subset_size: int = 1
    max_placement_results: int = 1000
    # candidates read first, best by the RAM weigher's order (most free RAM first; least with a
    # negative multiplier); widened x4 up to max_placement_results while too few pass the filters
    scheduler_candidate_window: int = 20
    enabled_filters: str = ",".join(DEFAULT_FILTERS)
    enabled_weighers: str = ",".join(DEFAULT_WEIGHERS)
    weigher_multipliers: str = ""  # "RAMWeigher=-1.0,NumInstancesWeigher=-1.0" (name or option name)
    max_concurrent_builds: int = 64  # compute agent worker threads per process
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    service_down_time: int = 60
    report_interval: int = 10
    enable_instance_password: bool = True
    # moves (Nova's [DEFAULT] options): seconds before a VERIFY_RESIZE server is confirmed by
    # itself (0: never); whether a resize may pick the host the server is on
    resize_confirm_window: int = 0
    allow_resize_to_same_host: bool = False
    # seconds a SHELVED server keeps its host before it is offloaded: 0 at once, -1 never
    shelved_offload_time: int = 0
    # Nova's versioned notifications on the message bus (docs/notifications.md): off | versioned
    notifications: str = "off"
    log_level: str = "info"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'novalite.db'}"

    @property
    def effective_token_key_dir(self) -> Path:
        if self.token_key_dir:
            return Path(os.path.expanduser(self.token_key_dir))
        return Path(self.data_dir) / "fernet-keys"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def filter_names(self) -> list[str]:
        return [f.strip() for f in self.enabled_filters.split(",") if f.strip()]


def _coerce(value: Any, target: Any) -> Any:
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(target, int):
        return int(value)
    if isinstance(target, float):
        return float(value)
    if isinstance(target, Path):
        return Path(os.path.expanduser(str(value)))
    return str(value)


# the config file's [service_user] table (as in nova.conf) -> Settings fields
_SERVICE_USER_KEYS = {
    "username": "service_user_name",
    "password": "service_user_password",
    "project_name": "service_user_project",
    "auth_url": "service_user_auth_url",
}


def load_settings(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build settings from the layers; ``overrides`` are flags (None values are ignored)."""
    env = dict(os.environ if environ is None else environ)
    settings = Settings()
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    names = {f.name for f in dataclasses.fields(Settings)}

    data_dir = overrides.get("data_dir") or env.get("NOVALITE_DATA_DIR") or settings.data_dir
    config_path = overrides.get("config") or env.get("NOVALITE_CONFIG")
    candidate = Path(config_path) if config_path else Path(data_dir) / "novalite.toml"
    if candidate.is_file():
        with candidate.open("rb") as fh:
            document = tomllib.load(fh)
        table = document.get("novalite", {})
        for key, value in table.items():
            key = key.replace("-", "_")
            if key in names:
                setattr(settings, key, _coerce(value, getattr(settings, key)))
        service_user = document.get("service_user", {})
        for key, name in _SERVICE_USER_KEYS.items():
            if key in service_user:
                setattr(settings, name, str(service_user[key]))
    elif config_path:
        raise FileNotFoundError(f"config file {config_path} does not exist")

    for name in names:
        raw = env.get(f"NOVALITE_{name.upper()}")
        if raw is not None and raw != "":
            setattr(settings, name, _coerce(raw, getattr(settings, name)))
    for key, value in overrides.items():
        if key in names:
            setattr(settings, key, _coerce(value, getattr(settings, key)))
    settings.data_dir = Path(settings.data_dir)
    return settings

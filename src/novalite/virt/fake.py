"""The fake driver: guests are entries in a dict; failures are injected through metadata.

Metadata keys read from the instance (see README "Fake driver"):

* ``novalite:fail_spawn_hosts=K`` -- spawn fails on the first K hosts tried (attempts 1..K);
* ``novalite:fail_spawn=always`` -- spawn always fails;
* ``novalite:build_delay=SECONDS`` -- spawn takes that long (else ``Settings.fake_build_delay``);
* ``novalite:fail_delete_once=true`` -- the first destroy fails, later ones work.

One ``FakeDriver`` serves every simulated host of the process (guests are keyed by uuid).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from novalite.domain.states import PowerState
from novalite.virt.driver import (
    Capabilities,
    ConsoleEndpoint,
    DriverError,
    GuestInfo,
    GuestSpec,
    ServiceStopping,
)

FAIL_SPAWN_HOSTS = "novalite:fail_spawn_hosts"
FAIL_SPAWN = "novalite:fail_spawn"
BUILD_DELAY = "novalite:build_delay"
FAIL_DELETE_ONCE = "novalite:fail_delete_once"
MAX_DELAY = 3600.0


def _float(text: str | None, default: float) -> float:
    try:
        return min(MAX_DELAY, max(0.0, float(text))) if text is not None else default
    except ValueError:
        return default


class FakeDriver:
    def __init__(self, build_delay: float = 0.0):
        self.build_delay = build_delay
        self._guests: dict[str, PowerState] = {}
        self._started: dict[str, float] = {}  # uuid -> when spawned (diagnostics' uptime)
        self._delete_failed: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._consoles: dict[str, SerialConsole] = {}  # uuid -> its serial console listener
        self._vnc_ports: dict[str, int] = {}

    def stop(self) -> None:
        """Cut short every build delay in progress (they raise ``ServiceStopping``); close the
        serial consoles."""
        self._stopping.set()
        with self._lock:
            consoles = list(self._consoles.values())
            self._consoles.clear()
        for console in consoles:
            console.close()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            supports_tagged_attach=True,
            supports_trusted_certs=True,
            supports_rescue=True,
            console_types=("novnc", "serial"),
        )

    def console_endpoint(self, guest: GuestSpec, kind: str) -> ConsoleEndpoint | None:
        """``serial``: a TCP listener on 127.0.0.1 (one per guest, opened at the first request,
        closed on destroy) that greets with a banner naming the server and echoes what it gets;
        ``novnc``: a made-up VNC port (nothing listens: the fake has no framebuffer). None for a
        guest this driver knows is not running."""
        with self._lock:
            state = self._guests.get(guest.uuid)
            if state is not None and state != PowerState.RUNNING:
                return None
            if kind == "novnc":
                port = self._vnc_ports.setdefault(guest.uuid, 5900 + len(self._vnc_ports))
                return ConsoleEndpoint(host="127.0.0.1", port=port)
            if kind != "serial":
                return None
            console = self._consoles.get(guest.uuid)
            if console is None:
                name = guest.display_name or guest.name
                banner = f"novalite fake serial console of {name} ({guest.uuid})\r\n"
                console = self._consoles[guest.uuid] = SerialConsole(banner.encode())
        return ConsoleEndpoint(host="127.0.0.1", port=console.port)

    def spawn(self, guest: GuestSpec) -> None:
        meta = guest.metadata
        delay = _float(meta.get(BUILD_DELAY), self.build_delay)
        if delay and self._stopping.wait(delay):
            raise ServiceStopping(f"compute service on {guest.host} is stopping")
        if meta.get(FAIL_SPAWN, "").lower() == "always":
            raise DriverError(f"Injected spawn failure on {guest.host} (novalite:fail_spawn=always)")
        try:
            fail_first = int(meta.get(FAIL_SPAWN_HOSTS, "0"))
        except ValueError:
            fail_first = 0
        if guest.attempt <= fail_first:
            raise DriverError(
                f"Injected spawn failure on {guest.host} (attempt {guest.attempt} of "
                f"novalite:fail_spawn_hosts={fail_first})"
            )
        with self._lock:
            self._guests[guest.uuid] = PowerState.RUNNING
            self._started[guest.uuid] = time.time()

    def destroy(self, guest: GuestSpec) -> None:
        if guest.metadata.get(FAIL_DELETE_ONCE, "").lower() in ("true", "1", "yes"):
            with self._lock:
                first = guest.uuid not in self._delete_failed
                self._delete_failed.add(guest.uuid)
            if first:
                raise DriverError(f"Injected delete failure on {guest.host} (novalite:fail_delete_once)")
        with self._lock:
            self._guests.pop(guest.uuid, None)
            self._started.pop(guest.uuid, None)
            self._vnc_ports.pop(guest.uuid, None)
            console = self._consoles.pop(guest.uuid, None)
        if console is not None:
            console.close()

    def _set(self, guest: GuestSpec, state: PowerState) -> None:
        with self._lock:
            if guest.uuid not in self._guests:
                raise DriverError(f"Instance {guest.uuid} is not running on {guest.host}")
            self._guests[guest.uuid] = state

    def power_on(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.RUNNING)

    def power_off(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.SHUTDOWN)

    def reboot(self, guest: GuestSpec, *, hard: bool = False) -> None:
        self._set(guest, PowerState.RUNNING)

    def pause(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.PAUSED)

    def unpause(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.RUNNING)

    def suspend(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.SUSPENDED)

    def resume(self, guest: GuestSpec) -> None:
        self._set(guest, PowerState.RUNNING)

    def get_info(self, guest: GuestSpec) -> GuestInfo:
        with self._lock:
            state = self._guests.get(guest.uuid, PowerState.NOSTATE)
        return GuestInfo(
            state=state,
            memory_mb=int(guest.flavor.get("memory_mb") or 0),
            vcpus=int(guest.flavor.get("vcpus") or 0),
        )

    def diagnostics(self, guest: GuestSpec) -> dict[str, Any]:
        """What a libvirt/KVM host reports of a running guest (Nova's 2.48 diagnostics), with
        counters made up from the flavor, the ports and the time since spawn (0 for a guest this
        process did not spawn). The compute agent checks the guest is running first and adds
        ``config_drive``."""
        with self._lock:
            started = self._started.get(guest.uuid)
        uptime = int(time.time() - started) if started is not None else 0
        flavor = guest.flavor
        vcpus = int(flavor.get("vcpus") or 1)
        memory_mb = int(flavor.get("memory_mb") or 0)
        disks = 1 + (1 if flavor.get("ephemeral_gb") else 0) + (1 if flavor.get("swap") else 0)
        macs = [str(vif.get("address") or vif.get("mac_address") or "") for vif in guest.network_info]
        return {
            "state": "running",
            "driver": "libvirt",
            "hypervisor": "qemu",
            "hypervisor_os": "linux",
            "uptime": uptime,
            "config_drive": None,  # the compute agent knows (the instance's, not the guest's)
            "num_cpus": vcpus,
            "num_nics": len(macs),
            "num_disks": disks,
            "cpu_details": [{"id": i, "time": uptime * 10**8, "utilisation": 10} for i in range(vcpus)],
            "nic_details": [
                {
                    "mac_address": mac,
                    "rx_octets": 1500 * uptime,
                    "rx_errors": 0,
                    "rx_drop": 0,
                    "rx_packets": 10 * uptime,
                    "rx_rate": None,
                    "tx_octets": 150 * uptime,
                    "tx_errors": 0,
                    "tx_drop": 0,
                    "tx_packets": uptime,
                    "tx_rate": None,
                }
                for mac in macs
            ],
            "disk_details": [
                {
                    "read_bytes": 262144 + 4096 * uptime,
                    "read_requests": 112 + uptime,
                    "write_bytes": 8192 * uptime,
                    "write_requests": 2 * uptime,
                    "errors_count": 0,
                }
                for _ in range(disks)
            ],
            "memory_details": {"maximum": memory_mb, "used": memory_mb // 2},
        }


class SerialConsole:
    """A guest's simulated serial port: a TCP listener on 127.0.0.1 whose every connection gets
    the banner, then an echo of what it sends (a shell would answer; an echo shows the way works)."""

    def __init__(self, banner: bytes):
        self.banner = banner
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port: int = self._sock.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name=f"fake-serial-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(self.banner)
                while not self._closed.is_set():
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

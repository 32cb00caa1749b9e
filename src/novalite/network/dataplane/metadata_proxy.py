"""Start and stop the metadata proxy of a network (``ns_metadata_proxy.py``) in its DHCP namespace.

Like Neutron's DHCP agent with ``enable_isolated_metadata``: the namespace gets 169.254.169.254/32
(on its loopback: the guests' packets arrive on the namespace's veth and are delivered locally),
dnsmasq hands every guest a classless static route to it via the DHCP server's address
(``dhcp.DhcpConfig.metadata_ip``), and one proxy process per network listens there. The proxy
forwards to the host's metadata service (``virt.metadata_paths.service_socket``) naming the
network and the request's source address.

The proxy detaches from the service that starts it and keeps a pid file in the network's DHCP
state directory (``<data_dir>/dhcp/<net>/metadata-proxy.pid``): a restarted service finds it
running and leaves it; :func:`stop` (called by ``dhcp.stop`` when the network goes) kills it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyroute2 import NetNS

from novalite.network.dataplane import names
from novalite.virt.metadata_paths import service_socket

METADATA_IP = "169.254.169.254"
PID_NAME = "metadata-proxy.pid"
SCRIPT = "ns_metadata_proxy.py"


class MetadataProxyError(RuntimeError):
    pass


def _state_dir(data_dir: Path, net_id: str) -> Path:
    return data_dir / "dhcp" / net_id


def _script(data_dir: Path) -> Path:
    """The proxy script, copied beside the service socket (a stable path in the proxies' command
    lines, so :func:`pid` recognises a proxy started by an earlier version of the code)."""
    source = Path(__file__).with_name(SCRIPT)
    directory = Path(service_socket(data_dir)).parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / SCRIPT
    content = source.read_bytes()
    if not target.is_file() or target.read_bytes() != content:
        tmp = directory / (SCRIPT + ".tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    return target


def pid(data_dir: Path, net_id: str) -> int | None:
    """The running proxy's pid for this network, checked against its command line."""
    try:
        value = int((_state_dir(data_dir, net_id) / PID_NAME).read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if SCRIPT.encode() in cmdline and net_id.encode() in cmdline else None


def ensure(net_id: str, data_dir: Path) -> int:
    """The proxy of ``net_id`` running in its (existing) DHCP namespace; returns its pid."""
    ns = names.dhcp_namespace(net_id)
    with NetNS(ns) as nsr:
        lo = nsr.link_lookup(ifname="lo")[0]
        have = {a.get("address") for a in nsr.get_addr(index=lo, family=2)}
        if METADATA_IP not in have:
            nsr.addr("add", index=lo, address=METADATA_IP, prefixlen=32)
    running = pid(data_dir, net_id)
    if running is not None:
        return running
    state = _state_dir(data_dir, net_id)
    state.mkdir(parents=True, exist_ok=True)
    pid_file = state / PID_NAME
    pid_file.unlink(missing_ok=True)
    python = shutil.which("python3") or sys.executable
    cmd = ["ip", "netns", "exec", ns, python, "-I", "-S", str(_script(data_dir))]
    cmd += [str(service_socket(data_dir)), net_id, str(pid_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise MetadataProxyError(f"metadata proxy for network {net_id} failed: {done.stderr.strip()}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = pid(data_dir, net_id)
        if found is not None:
            return found
        time.sleep(0.05)
    raise MetadataProxyError(f"metadata proxy for network {net_id} wrote no pid file")


def stop(net_id: str, data_dir: Path) -> None:
    """Kill the network's proxy (idempotent); the namespace goes with ``dhcp.stop``."""
    running = pid(data_dir, net_id)
    if running is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(running, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid(data_dir, net_id) is not None:
        time.sleep(0.02)
    if pid(data_dir, net_id) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(running, signal.SIGKILL)
    (_state_dir(data_dir, net_id) / PID_NAME).unlink(missing_ok=True)

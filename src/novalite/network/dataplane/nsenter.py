"""A few system calls made inside a named network namespace, from a thread of this process.

``setns(2)`` with ``CLONE_NEWNET`` moves only the calling thread, so :func:`run_in` starts a
short-lived thread that enters the namespace, calls the function and ends; the rest of the
process never leaves the host's namespace. What needs it: a tap device is created and opened
through ``/dev/net/tun``, which looks the name up in the namespace of the thread that opened it,
and the open descriptor stays tied to that namespace whoever holds it later (QEMU).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import netns

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000  # what QEMU asks for when it opens a tap itself
TAP_FLAGS = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR

_libc: Any = ctypes.CDLL(None, use_errno=True)


def namespace_path(ns: str) -> str:
    return os.path.join(netns.NETNS_RUN_DIR, ns)


def run_in(ns: str, fn: Callable[[], T]) -> T:
    """``fn()`` called in a thread that has entered the namespace ``ns``; its result or error."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(namespace_path(ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"cannot enter network namespace {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]  # type: ignore[no-any-return]


def _attach(ifname: str) -> int:
    """An fd on the tap ``ifname`` of the current thread's namespace (created if missing)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), TAP_FLAGS))
    except OSError:
        os.close(fd)
        raise
    return fd


def create_tap(ns: str, ifname: str) -> None:
    """A persistent tap ``ifname`` in ``ns`` (kept when nobody holds it open). Idempotent."""

    def make() -> None:
        fd = _attach(ifname)
        try:
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        finally:
            os.close(fd)

    run_in(ns, make)


def open_tap(ns: str, ifname: str) -> int | None:
    """An fd on the existing tap ``ifname`` in ``ns`` for QEMU (``-netdev tap,fd=N``), or None
    when ``ns`` has no such device (nothing is created then)."""

    def attach() -> int | None:
        try:
            socket.if_nametoindex(ifname)
        except OSError:
            return None
        return _attach(ifname)

    return run_in(ns, attach)


def write_sysctl(ns: str, key: str, value: str) -> None:
    """``net.*`` sysctl ``key`` in ``ns`` (``/proc/sys/net`` shows the reading thread's namespace)."""

    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    run_in(ns, write)

"""The metadata proxy of one network: 169.254.169.254:80 inside its ``qdhcp-<net>`` namespace.

Run by :mod:`novalite.network.dataplane.metadata_proxy` as
``ip netns exec qdhcp-<net> python3 -I -S <this file> SOCKET NETWORK_ID PIDFILE`` (standard
library only). It binds 169.254.169.254:80 in the namespace, detaches (as dnsmasq does: it
outlives the service that started it) and writes its pid file; it exits by itself once that
file no longer names it (its network's state directory was removed). For each connection it opens
the host's metadata service socket and says ``port <network id> <source address>`` on the first
line — the service finds the port on that network holding that fixed IP, and its instance, as
Neutron's metadata agent does — then copies the guest's request and the answer. Nothing the
guest sends picks the instance.
"""

import os
import select
import socket
import sys
import threading
import time

ADDRESS = "169.254.169.254"
LIFETIME = 60.0
CHUNK = 65536
MAX_CONNECTIONS = 64
CHECK_INTERVAL = 5.0  # how often an idle proxy checks that its pid file still names it


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: ns_metadata_proxy.py SOCKET NETWORK_ID PIDFILE\n")
        return 2
    service_path, network_id, pid_file = argv[1], argv[2], argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ADDRESS, 80))
    listener.listen(64)
    if os.fork() > 0:  # bound: the starter gets its exit status, the proxy lives on detached
        return 0
    os.setsid()
    tmp = pid_file + ".tmp"
    with open(tmp, "w") as out:
        out.write(f"{os.getpid()}\n")
    os.replace(tmp, pid_file)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    listener.settimeout(CHECK_INTERVAL)
    while True:
        try:
            conn, peer = listener.accept()
        except TimeoutError:
            if not _still_wanted(pid_file):
                return 0
            continue
        conn.settimeout(None)
        if not slots.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(
            target=_serve, args=(conn, peer[0], service_path, network_id, slots), daemon=True
        ).start()


def _still_wanted(pid_file: str) -> bool:
    """The pid file still names this process: its network's state directory was not removed
    (a network stopped by a service that could not signal it, or a deleted data directory)."""
    try:
        with open(pid_file) as f:
            return f.read().strip() == str(os.getpid())
    except OSError:
        return False


def _serve(
    conn: socket.socket, source: str, service_path: str, network_id: str, slots: threading.BoundedSemaphore
) -> None:
    try:
        with conn, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as service:
            try:
                service.connect(service_path)
                service.sendall(f"port {network_id} {source}\n".encode())
            except OSError:
                conn.sendall(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            _pump(conn, service)
    except OSError:
        pass
    finally:
        slots.release()


def _pump(guest: socket.socket, service: socket.socket) -> None:
    deadline = time.monotonic() + LIFETIME
    sources = [guest, service]
    while sources:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select(sources, [], [], left)
        for sock in ready:
            data = sock.recv(CHUNK)
            if sock is guest:
                if data:
                    service.sendall(data)
                else:
                    sources.remove(guest)
                    service.shutdown(socket.SHUT_WR)
            else:
                if not data:
                    return
                guest.sendall(data)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except OSError as exc:
        sys.stderr.write(f"metadata proxy: {exc}\n")
        sys.exit(1)

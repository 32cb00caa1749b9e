"""The metadata service of a QEMU host: 169.254.169.254 for its guests (issue 17 item 4, issue 20 item 2).

It listens on one unix socket, ``<data_dir>/metadata/metadata.sock`` (directory 0700, socket
0600: only this host's root reaches it). Whatever connects states, on its first line and before
any byte from the guest, which channel the request came in on:

``instance <uuid>``
    the guestfwd relay of a guest on QEMU user-mode networking (``virt/qemu/metadata_relay.py``):
    the uuid is baked into that guest's QEMU command line, which the guest cannot change;
``port <network id> <source ip>``
    the proxy in a network's ``qdhcp-`` namespace (``network/dataplane/ns_metadata_proxy.py``):
    the instance is the device of the port on that network holding that fixed IP, as
    Neutron's metadata agent finds it (anti-spoofing rules keep the source address honest).

Then comes the guest's HTTP request; its headers (``X-Instance-ID``, ``X-Forwarded-For``, ...)
are never read for identity. The instance must be live and on this host. The answer is built
from the database at request time (server metadata changed since boot shows) through the same
builder as the config drive (``launch.config_drive_data``, ``virt.metadata_paths``), and the
connection closes after it (HTTP/1.0 style, ``Connection: close``).

The socket path never changes and the service binds it again at each start (a stale socket file
is replaced), so guests that outlive a restart of ``novalite serve`` reach the new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import select

from novalite.compute import build
from novalite.db.base import Database
from novalite.db.models.compute import Instance
from novalite.db.models.network import Port, PortIP
from novalite.virt import metadata_paths
from novalite.virt.driver import GuestSpec
from novalite.virt.qemu import launch

LOG = logging.getLogger(__name__)
MAX_IDENTITY = 256
MAX_HEAD = 16 * 1024
READ_TIMEOUT = 10.0
MAX_CONNECTIONS = 64  # requests in progress at once; more are closed unanswered (the guest retries)
RELAY = "relay.py"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class MetadataService:
    """Answers metadata requests for the guests of ``host`` on the socket under ``data_dir``."""

    def __init__(self, db: Database, host: str, data_dir: Path) -> None:
        self.db, self.host = db, host
        self.socket_path = Path(metadata_paths.service_socket(Path(data_dir)))
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    # -- the channel's identity -> instance -> documents ----------------------------------

    def instance_for(self, identity: str) -> str | None:
        """The uuid of the live instance on this host that ``identity`` names, else None."""
        words = identity.split()
        with self.db.reader() as s:
            if len(words) == 2 and words[0] == "instance" and _UUID.match(words[1]):
                uuid: str | None = words[1]
            elif len(words) == 3 and words[0] == "port":
                uuid = s.scalars(
                    select(Port.device_id)
                    .join(PortIP, PortIP.port_id == Port.id)
                    .where(Port.network_id == words[1], PortIP.ip_address == words[2])
                ).first()
            else:
                return None
            if not uuid:
                return None
            found = s.scalar(
                select(Instance.uuid).where(
                    Instance.uuid == uuid,
                    Instance.host == self.host,
                    Instance.deleted.is_(False),
                    Instance.vm_state != "deleted",
                )
            )
        return str(found) if found else None

    def guest(self, instance_uuid: str) -> GuestSpec | None:
        with self.db.reader() as s:
            return build.existing_guest(s, instance_uuid, self.host)

    def answer(self, identity: str, method: str, target: str) -> metadata_paths.Answer:
        """The answer to ``method target`` arriving on the channel ``identity``."""
        if method not in ("GET", "HEAD"):
            return metadata_paths.Answer(405, b"405 Method Not Allowed\n")
        uuid = self.instance_for(identity)
        guest = self.guest(uuid) if uuid is not None else None
        if guest is None:
            LOG.info("metadata request on %r: no instance of this host is behind it", identity)
            return metadata_paths.NOT_FOUND
        path = unquote(urlsplit(target).path or "/")
        return metadata_paths.answer(launch.config_drive_data(guest), path)

    # -- the socket ------------------------------------------------------------------------

    def start(self) -> Callable[[], None]:
        """Bind the socket (replacing a stale one), serve in a thread; returns the stopper."""
        directory = self.socket_path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        install_relay(directory)
        self.socket_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            listener.bind(str(self.socket_path))
        finally:
            os.umask(old_mask)
        os.chmod(self.socket_path, 0o600)
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="metadata-service", daemon=True)
        self._thread.start()
        LOG.info("metadata service on %s", self.socket_path)
        return self.stop

    def stop(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._done.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._done.is_set():
                    return
                continue
            if not self._slots.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="metadata-request", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_one(conn)
        finally:
            self._slots.release()

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT)
            try:
                reader = _Reader(conn)
                identity = reader.line(MAX_IDENTITY)
                head = reader.head(MAX_HEAD)
                if identity is None:
                    return
                if head is None:
                    reply, method = metadata_paths.Answer(400, b"400 Bad Request\n"), "GET"
                else:
                    method, target = head
                    try:
                        reply = self.answer(identity, method, target)
                    except Exception:  # the database is away: the guest retries
                        LOG.exception("metadata request failed")
                        reply = metadata_paths.Answer(503, b"503 Service Unavailable\n")
                conn.sendall(_response(reply, head_only=method == "HEAD"))
            except OSError:
                return


class _Reader:
    """Reads the identity line, then the HTTP request head, from one connection."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""

    def _until(self, marks: tuple[bytes, ...], limit: int) -> bytes | None:
        while True:
            found = [(i, m) for m in marks if (i := self.buffer.find(m)) >= 0]
            if found:
                index, mark = min(found)
                taken, self.buffer = self.buffer[:index], self.buffer[index + len(mark) :]
                return taken
            if len(self.buffer) > limit:
                return None
            data = self.conn.recv(4096)
            if not data:
                return None
            self.buffer += data

    def line(self, limit: int) -> str | None:
        raw = self._until((b"\n",), limit)
        return raw.decode("ascii", "replace").strip() if raw is not None else None

    def head(self, limit: int) -> tuple[str, str] | None:
        """(method, target) of the request; the headers are read past and ignored."""
        raw = self._until((b"\r\n\r\n", b"\n\n"), limit)
        if raw is None:
            return None
        request_line = raw.split(b"\n", 1)[0].decode("latin-1").strip()
        words = request_line.split()
        if len(words) not in (2, 3) or not words[1].startswith(("/", "http://")):
            return None
        return words[0].upper(), words[1]


def _response(reply: metadata_paths.Answer, *, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}\r\n"
        f"Content-Type: {reply.content_type}\r\n"
        f"Content-Length: {len(reply.body)}\r\n"
        + ("Allow: GET, HEAD\r\n" if reply.status == 405 else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode() + (b"" if head_only else reply.body)


def install_relay(directory: Path) -> Path:
    """Copy the relay script to ``<directory>/relay.py`` (a path that outlives code moves: it is
    in running guests' command lines); rewritten only when it changed."""
    source = Path(launch.__file__).with_name("metadata_relay.py")
    target = directory / RELAY
    content = source.read_bytes()
    if not target.is_file() or target.read_bytes() != content:
        tmp = directory / (RELAY + ".tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    return target


def relay_command(data_dir: Path) -> Callable[[GuestSpec], str]:
    """The QEMU driver's ``metadata_command``: the guestfwd command of one guest (no comma: QEMU
    option syntax; the service refuses a data directory with one)."""
    directory = Path(metadata_paths.service_socket(Path(data_dir))).parent
    python = shutil.which("python3") or sys.executable
    sock = metadata_paths.service_socket(Path(data_dir))
    if "," in f"{python}{directory}" or " " in f"{python}{directory}":
        raise ValueError(f"the metadata relay's paths cannot contain a comma or a space: {directory}")

    def command(guest: GuestSpec) -> str:
        return f"{python} -I -S {directory / RELAY} {sock} {guest.uuid}"

    return command

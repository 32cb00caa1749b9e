"""The guestfwd relay: one guest connection to 169.254.169.254:80 <-> the metadata service.

QEMU (user-mode networking, ``guestfwd=tcp:169.254.169.254:80-cmd:<this>``) starts this script
for each connection the guest opens, with the connection on stdin/stdout. The command line,
written into the guest's QEMU command line by the host, names the metadata service's unix
socket and the instance: the relay connects to that socket, says ``instance <uuid>`` on the
first line (the identity comes from the channel, never from the guest's bytes), then copies
the guest's request to the service and the answer back until either side closes.

Standard library only, run as ``python3 -I -S metadata_relay.py SOCKET UUID``: it starts in a
few tens of milliseconds and reaches nothing but that one socket.
"""

import os
import select
import socket
import sys
import time

LIFETIME = 60.0  # one request and its answer; a connection held open longer is cut
CHUNK = 65536


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: metadata_relay.py SOCKET INSTANCE_UUID\n")
        return 2
    path, uuid = argv[1], argv[2]
    service = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        service.connect(path)
        service.sendall(f"instance {uuid}\n".encode())
    except OSError:
        os.write(1, b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return 1
    pump(service)
    return 0


def pump(service: socket.socket) -> None:
    guest_in, guest_out = 0, 1
    deadline = time.monotonic() + LIFETIME
    sources = [guest_in, service.fileno()]
    while sources:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select(sources, [], [], left)
        for fd in ready:
            if fd == guest_in:
                data = _read(guest_in)
                if data:
                    service.sendall(data)
                else:  # the guest finished sending: the service still answers
                    sources.remove(guest_in)
                    _shutdown(service)
            else:
                data = service.recv(CHUNK)
                if not data:
                    return  # the answer is complete
                _write_all(guest_out, data)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, KeyboardInterrupt):
        sys.exit(1)

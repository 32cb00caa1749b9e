"""Remote consoles end to end: ``openstack console url show`` (noVNC and ``--serial``) against
``novalite serve``, and a websocket client that opens the serial URL and reads the fake guest's
banner through the serial console proxy."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.conftest import RunningServer


def _json(server: RunningServer, *args: str) -> dict[str, str]:
    out: dict[str, str] = json.loads(server.openstack(*args, "-f", "json").stdout)
    return out


async def _banner(url: str) -> bytes:
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("binary")]) as ws:
        received = b""
        while b"\n" not in received:
            chunk = await asyncio.wait_for(ws.recv(), timeout=30)
            received += chunk if isinstance(chunk, bytes) else chunk.encode()
        await ws.send(b"ping\r\n")
        while b"ping" not in received.split(b"\n", 1)[1]:
            chunk = await asyncio.wait_for(ws.recv(), timeout=30)
            received += chunk if isinstance(chunk, bytes) else chunk.encode()
        return received


def test_console_urls_and_the_serial_console(server: RunningServer) -> None:
    created = _json(
        server,
        *("server", "create", "--flavor", "m1.tiny", "--image", "novalite-tiny"),
        *("--no-network", "--wait", "console-vm"),
    )
    novnc = _json(server, "console", "url", "show", "console-vm")
    assert novnc["type"] == "novnc" and novnc["protocol"] == "vnc"
    assert novnc["url"].startswith(server.url + "/novnc/vnc_auto.html?path=%3Ftoken%3D")
    serial = _json(server, "console", "url", "show", "--serial", "console-vm")
    assert serial["type"] == "serial"
    assert serial["url"].startswith(server.url.replace("http://", "ws://") + "/compute-console/?token=")
    received = asyncio.run(_banner(serial["url"]))
    assert b"console-vm" in received and created["id"].encode() in received
    server.openstack("server", "delete", "--wait", "console-vm")

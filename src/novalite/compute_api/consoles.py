"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6+), the legacy actions
``os-getVNCConsole`` / ``os-getSPICEConsole`` / ``os-getSerialConsole`` / ``os-getRDPConsole``
(2.1-2.5, dispatched by ``server_actions.HANDLERS``), ``GET /os-console-auth-tokens/{token}``
(admin), and the serial console proxy: a websocket at ``/compute-console/?token=...`` (mounted by
``app.create_app``) that bridges to the guest's serial port (what ``services.consoles`` puts in a
serial console URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.context import RequestContext
from novalite.errors import NotFound, Unauthorized
from novalite.runtime import Runtime
from novalite.services import consoles as service

router = APIRouter()
V21 = "/compute/v2.1"

_TYPES_26 = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"]


def remote_console_schema(version: Version) -> dict[str, Any]:
    protocols, types = ["vnc", "spice", "rdp", "serial"], list(_TYPES_26)
    if version >= V(2, 8):  # 2.8: mks / webmks
        protocols, types = [*protocols, "mks"], [*types, "webmks"]
    if version >= V(2, 99):  # 2.99: spice-direct
        types = [*types, "spice-direct"]
    return {
        "type": "object",
        "properties": {
            "remote_console": {
                "type": "object",
                "properties": {
                    "protocol": {"type": "string", "enum": protocols},
                    "type": {"type": "string", "enum": types},
                },
                "required": ["protocol", "type"],
                "additionalProperties": False,
            }
        },
        "required": ["remote_console"],
        "additionalProperties": False,
    }


# legacy action -> (protocol, the types its schema accepts)
LEGACY_ACTIONS: dict[str, tuple[str, list[str]]] = {
    "os-getVNCConsole": ("vnc", ["novnc", "xvpvnc"]),
    "os-getSPICEConsole": ("spice", ["spice-html5"]),
    "os-getSerialConsole": ("serial", ["serial"]),
    "os-getRDPConsole": ("rdp", ["rdp-html5"]),
}


def _legacy_schema(action: str, types: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            action: {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": types}},
                "required": ["type"],
                "additionalProperties": False,
            }
        },
        "required": [action],
        "additionalProperties": False,
    }


@router.post(V21 + "/servers/{server_id}/remote-consoles")
async def create_remote_console(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> JSONResponse:
    version = request_version(request)
    if version < V(2, 6):  # 2.6: remote-consoles replaces the os-get*Console actions
        raise NotFound("The resource could not be found.")
    body = await json_body(request)
    validate(remote_console_schema(version), body)
    protocol, kind = body["remote_console"]["protocol"], body["remote_console"]["type"]
    url = await run_in_threadpool(service.get_console, runtime(request), ctx, server_id, protocol, kind)
    return JSONResponse({"remote_console": {"protocol": protocol, "type": kind, "url": url}})


def legacy_action(name: str) -> Any:
    """The handler of one legacy console action (``server_actions.HANDLERS``): 200
    ``{"console": {"type", "url"}}``; gone (404) from 2.6 on."""
    protocol, types = LEGACY_ACTIONS[name]

    def handler(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> JSONResponse:
        if request_version(request) >= V(2, 6):
            raise NotFound("The resource could not be found.")
        validate(_legacy_schema(name, types), body)
        kind = body[name]["type"]
        url = service.get_console(runtime(request), ctx, server_id, protocol, kind)
        return JSONResponse({"console": {"type": kind, "url": url}})

    return handler


@router.get(V21 + "/os-console-auth-tokens/{console_token}")
async def show_console_auth_token(
    console_token: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    found = await run_in_threadpool(service.validate_token, runtime(request), console_token)
    if request_version(request) < V(2, 31) and found.console_type != "rdp-html5":
        # before 2.31 only RDP tokens could be shown
        raise Unauthorized("The requested console type details are not accessible")
    return {
        "console": {
            "instance_uuid": found.instance_uuid,
            "host": found.host,
            "port": found.port,
            "internal_access_path": found.internal_access_path,
        }
    }


SERIAL_PROXY_PATH = service.SERIAL_PROXY_PATH


async def serial_console_proxy(websocket: WebSocket) -> None:
    """Nova's serial proxy: the token (``?token=`` or a ``token`` cookie) must be live and name a
    serial console; the handshake answers the ``binary`` subprotocol when offered (as websockify),
    then bytes flow both ways between the client and the guest's serial port."""
    rt: Runtime = websocket.app.state.runtime
    token = websocket.query_params.get("token") or websocket.cookies.get("token") or ""
    try:
        found = await run_in_threadpool(service.validate_token, rt, token)
    except NotFound:
        found = None
    offered = list(websocket.scope.get("subprotocols") or [])
    refused = (offered and "binary" not in offered) or not _same_origin(websocket)
    if found is None or found.console_type != "serial" or refused:
        await websocket.close(code=1008)  # before accept: the handshake is refused (403)
        return
    try:
        if found.path:
            reader, writer = await asyncio.open_unix_connection(
                sock=await run_in_threadpool(_unix_socket, found.path)
            )
        else:
            reader, writer = await asyncio.open_connection(found.host, found.port)
    except OSError:
        await websocket.close(code=1008)
        return
    await websocket.accept(subprotocol="binary" if offered else None)
    await _bridge(websocket, reader, writer)


def _unix_socket(path: str) -> socket.socket:
    """A connected unix socket; a path longer than sun_path (~107 bytes: a deep instance
    directory) is reached through its directory's file descriptor."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)  # a console that has a client already may not take another one
    dir_fd = -1
    try:
        target = path
        if len(path.encode()) > 100:
            dir_fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
            target = f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)
    sock.setblocking(False)
    return sock


def _same_origin(websocket: WebSocket) -> bool:
    """Nova's proxy check: a browser's ``Origin`` must name the host the request was sent to
    (no ``Origin``, as from a command-line client, is fine)."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True
    parts = urlsplit(origin)
    host = urlsplit("//" + websocket.headers.get("host", "")).hostname
    return parts.scheme in ("http", "https") and parts.hostname is not None and parts.hostname == host


async def _bridge(websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def to_client() -> None:
        while data := await reader.read(4096):
            await websocket.send_bytes(data)

    async def to_guest() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.ensure_future(to_client()), asyncio.ensure_future(to_guest())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await websocket.close()

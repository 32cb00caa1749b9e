"""``/servers/{id}/os-interface``: a server's network interfaces (ports).

GET list / GET one (``interfaceAttachment(s)``: port_id, net_id, mac_addr, port_state,
fixed_ips; ``tag`` from 2.70), POST attach (``port_id`` or ``net_id`` with at most one fixed IP;
``tag`` from 2.49) -> 200 with the attachment, DELETE detach -> 202. The work is done by
``novalite.services.server_devices``; addresses in the server view follow the ports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from novalite.api.common import json_body, request_context, runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas.servers import TAG, UUID
from novalite.context import RequestContext
from novalite.errors import BadRequest
from novalite.services import device_hotplug as hotplug
from novalite.services import server_devices as devices
from novalite.services import server_queries as queries

router = APIRouter(prefix="/compute/v2.1")
_BASE = "/servers/{server_id}/os-interface"

IP_ADDRESS: dict[str, Any] = {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}


def attach_schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {
        "port_id": UUID,
        "net_id": UUID,
        "fixed_ips": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "properties": {"ip_address": IP_ADDRESS},
                "required": ["ip_address"],
                "additionalProperties": False,
            },
        },
    }
    if version >= V(2, 49):  # 2.49: tagged attach
        props["tag"] = TAG
    return {
        "type": "object",
        "properties": {
            "interfaceAttachment": {"type": "object", "properties": props, "additionalProperties": False}
        },
        "additionalProperties": False,
    }


def interface_view(iface: devices.Interface, version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "net_id": iface.net_id,
        "port_id": iface.port_id,
        "mac_addr": iface.mac_addr,
        "port_state": iface.port_state,
        "fixed_ips": [{"ip_address": ip, "subnet_id": subnet} for ip, subnet in iface.fixed_ips],
    }
    if version >= V(2, 70):  # 2.70: device tags shown
        out["tag"] = iface.tag
    return out


@router.get(_BASE)
def list_interfaces(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        items = devices.list_interfaces(s, inst)
    return {"interfaceAttachments": [interface_view(i, version) for i in items]}


@router.get(_BASE + "/{port_id}")
def show_interface(
    server_id: str, port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    version = request_version(request)
    with runtime(request).db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        iface = devices.get_interface(s, inst, port_id)
    return {"interfaceAttachment": interface_view(iface, version)}


def _attach(request: Request, ctx: RequestContext, server_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    version = request_version(request)
    port_id, net_id = spec.get("port_id"), spec.get("net_id")
    fixed_ips = spec.get("fixed_ips") or []
    if port_id and net_id:
        raise BadRequest("Must not input both network_id and port_id")
    if fixed_ips and not net_id:
        raise BadRequest("Must input network_id when request IP address")
    iface = hotplug.attach_interface(  # a real guest gets the NIC plugged in by its host
        runtime(request),
        ctx,
        server_id,
        port_id=port_id,
        net_id=net_id,
        fixed_ip=fixed_ips[0]["ip_address"] if fixed_ips else None,
        tag=spec.get("tag"),
    )
    return {"interfaceAttachment": interface_view(iface, version)}


@router.post(_BASE)
async def attach_interface(
    server_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    body = await json_body(request)
    validate(attach_schema(request_version(request)), body)
    return await run_in_threadpool(_attach, request, ctx, server_id, body.get("interfaceAttachment") or {})


def _detach(request: Request, ctx: RequestContext, server_id: str, port_id: str) -> None:
    hotplug.detach_interface(runtime(request), ctx, server_id, port_id)


@router.delete(_BASE + "/{port_id}", status_code=202)
def detach_interface(
    server_id: str, port_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    _detach(request, ctx, server_id, port_id)
    return Response(status_code=202)

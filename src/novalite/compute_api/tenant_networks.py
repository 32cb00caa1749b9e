"""``/os-tenant-networks`` (2.1-2.35, 404 from 2.36): Nova's proxy over the networks the caller
sees in Neutron, each ``{"id", "cidr": "None", "label": <name>}`` (``cidr`` is the literal
string: Neutron networks carry no cidr). ``GET …/{id}``: one network, or 404 "Network not
found". Creating and deleting networks here went with nova-network: 410 at every version.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from novalite.api.common import reject_nul, request_context, runtime
from novalite.api.microversion import V, request_version
from novalite.context import RequestContext
from novalite.db.models.network import Network
from novalite.errors import NotFound, NovaliteError
from novalite.network import networks
from novalite.services import network_proxies as proxies


class Gone(NovaliteError):
    """webob's HTTPGone as Nova raises it (no fault name of its own: ``computeFault``)."""

    status = 410
    title = "Gone"


GONE = "This resource is no longer available.  No forwarding address is given."


def _reads_available(request: Request) -> None:
    if request_version(request) >= V(2, 36):  # 2.36: the network proxies are gone
        raise NotFound("The resource could not be found.")


router = APIRouter(prefix="/compute/v2.1", dependencies=[Depends(reject_nul)])


def network_view(net: Network) -> dict[str, Any]:
    return {"id": net.id, "cidr": "None", "label": net.name}


@router.get("/os-tenant-networks", dependencies=[Depends(_reads_available)])
def list_networks(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"networks": [network_view(n) for n in networks.visible_networks(s, ctx)]}


@router.get("/os-tenant-networks/{network_id}", dependencies=[Depends(_reads_available)])
def show_network(
    network_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> dict[str, Any]:
    with runtime(request).db.reader() as s:
        return {"network": network_view(proxies.get_network(s, ctx, network_id))}


@router.post("/os-tenant-networks")
def create_network(request: Request, ctx: RequestContext = Depends(request_context)) -> None:
    raise Gone(GONE)


@router.delete("/os-tenant-networks/{network_id}")
def delete_network(network_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> None:
    raise Gone(GONE)

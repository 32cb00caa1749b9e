"""Neutron's ``auto-allocated-topology``: a project without networks gets one on demand (Nova's
``networks: "auto"``, ``GET /v2.0/auto-allocated-topology/{project_id}``).

The topology is Neutron's: a network ``auto_allocated_network`` with an IPv4 subnet, and a router
``auto_allocated_router`` with its gateway on the cloud's external network and an interface on
that subnet, all owned by the project. Neutron takes the external network flagged ``is_default``
and the subnet from the default subnet pool; novalite has neither flag nor pools, so it takes the
one external network (``public`` when there are several) and the CIDR below. Asking again returns
the same network.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.models.network import Network
from novalite.errors import BadRequest
from novalite.network import networks, routers

NETWORK_NAME = "auto_allocated_network"
SUBNET_NAME = "auto_allocated_subnet_v4"
ROUTER_NAME = "auto_allocated_router"
CIDR = "10.0.0.0/26"


def existing(s: Session, project_id: str) -> str | None:
    q = select(Network.id).where(Network.project_id == project_id, Network.name == NETWORK_NAME)
    return s.execute(q).scalar()


def external_network(s: Session) -> Network | None:
    q = select(Network).where(Network.router_external.is_(True)).order_by(Network.created_at)
    found = list(s.scalars(q))
    if len(found) > 1:
        found = [n for n in found if n.name == "public"] or found[:1]
    return found[0] if found else None


def unable(project_id: str) -> BadRequest:
    return BadRequest(
        f"Unable to automatically allocate a network for project {project_id}",
        kind="UnableToAutoAllocateNetwork",
    )


def allocate(s: Session, project_id: str, user_id: str = "") -> str:
    """The project's auto-allocated network id, created with its subnet and router if needed."""
    found = existing(s, project_id)
    if found is not None:
        return found
    external = external_network(s)
    if external is None:
        raise unable(project_id)
    ctx = RequestContext(user_id=user_id, project_id=project_id, roles=("member",))
    net = networks.create_network(s, ctx, {"name": NETWORK_NAME, "project_id": project_id})
    subnet = networks.create_subnet(
        s,
        ctx,
        {"name": SUBNET_NAME, "network_id": net.id, "ip_version": 4, "cidr": CIDR, "project_id": project_id},
    )
    gateway = {"network_id": external.id}
    router = routers.create_router(
        s, ctx, {"name": ROUTER_NAME, "project_id": project_id, "external_gateway_info": gateway}
    )
    routers.add_interface(s, ctx, router, {"subnet_id": subnet.id})
    return str(net.id)

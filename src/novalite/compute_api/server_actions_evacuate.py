"""The ``evacuate`` action of POST /servers/{id}/action (§3.5 of the move operations): an admin
rebuilds a server of a down compute host on another host. 200, with ``{"adminPass": ...}`` below
2.14 (when ``enable_instance_password``), an empty body from 2.14.

Per microversion: below 2.14 ``onSharedStorage`` is required (and refuses an ``adminPass`` when
true); 2.29 adds ``force`` (a given host bypasses the scheduler below 2.29, and with ``force``
until 2.67; from 2.68 a host is only the scheduler's target); from 2.95 the server ends SHUTOFF.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, request_version
from novalite.compute_api.schemas.moves import BOOLEAN, HOST, is_true
from novalite.context import RequestContext
from novalite.domain.microversion import Version
from novalite.errors import BadRequest
from novalite.services import evacuate as service
from novalite.services.create_server.request import generate_password
from novalite.services.server_queries import get_instance

PASSWORD = {"type": "string"}


def schema(version: Version) -> dict[str, Any]:
    props: dict[str, Any] = {"host": HOST, "adminPass": PASSWORD}
    required: list[str] = []
    if version < V(2, 14):
        props["onSharedStorage"] = BOOLEAN
        required = ["onSharedStorage"]
    elif V(2, 29) <= version < V(2, 68):
        props["force"] = BOOLEAN
    inner = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {"evacuate": inner},
        "required": ["evacuate"],
        "additionalProperties": False,
    }


def evacuate(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    rt = runtime(request)
    with rt.db.reader() as s:  # a missing server is a 404 before a bad body
        get_instance(s, ctx, server_id)
    ctx.require_admin("os_compute_api:os-evacuate")
    version = request_version(request)
    validate(schema(version), body)
    req = body["evacuate"]
    host = req.get("host")
    password = req.get("adminPass")
    force = False
    if V(2, 29) <= version < V(2, 68):
        force = is_true(req.get("force", False))
        if force and host is None:
            raise BadRequest("Can't force to a non-provided destination")
    elif version < V(2, 29):
        force = host is not None
    if version < V(2, 14):
        shared = is_true(req["onSharedStorage"])
        if shared and password:
            raise BadRequest("admin password can't be changed on existing disk")
        if not shared and not password:
            password = generate_password()
    elif not password:
        password = generate_password()
    service.evacuate(rt, ctx, server_id, host=host, force=force, stop=version >= V(2, 95))
    if version < V(2, 14) and rt.settings.enable_instance_password:
        return JSONResponse({"adminPass": password}, status_code=200)
    return Response(status_code=200)

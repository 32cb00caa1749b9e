"""The ``rebuild`` server action (§6.4): a new image (and optionally name, metadata, key, user data,
...) for an existing server; answers 202 with the server view and ``adminPass``.

The work is ``services.server_rebuild``. The request schema follows the microversions
(personality until 2.56, description 2.19, key_name 2.54, user_data 2.57, trusted certificates
2.63, hostname 2.90 / FQDN 2.94).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from novalite.api.common import runtime, validate
from novalite.api.microversion import V, Version, request_version
from novalite.compute_api.schemas import servers as schemas
from novalite.compute_api.views import servers as views
from novalite.context import RequestContext
from novalite.services import server_queries as queries
from novalite.services import server_rebuild as service
from novalite.services.create_server.request import generate_password


def rebuild_schema(version: Version) -> dict[str, Any]:
    create = schemas.create_schema(version)["properties"]["server"]["properties"]
    props: dict[str, Any] = {
        "imageRef": schemas.UUID,
        "name": schemas.NAME,
        "adminPass": {"type": "string"},
        "metadata": schemas.METADATA,
        "preserve_ephemeral": schemas.BOOLEAN,
        "OS-DCF:diskConfig": create["OS-DCF:diskConfig"],
        "accessIPv4": create["accessIPv4"],
        "accessIPv6": create["accessIPv6"],
    }
    if version < V(2, 57):  # personality until 2.56
        props["personality"] = copy.deepcopy(create["personality"])
    if version >= V(2, 19):  # 2.19: description
        props["description"] = schemas.DESCRIPTION
    if version >= V(2, 54):  # 2.54: key_name (null removes the key)
        props["key_name"] = {"oneOf": [schemas.NAME, {"type": "null"}]}
    if version >= V(2, 57):  # 2.57: user_data (null removes it)
        props["user_data"] = {"oneOf": [create["user_data"], {"type": "null"}]}
    if version >= V(2, 63):  # 2.63: trusted image certificates
        props["trusted_image_certificates"] = create["trusted_image_certificates"]
    if version >= V(2, 90):  # 2.90: hostname (2.94: FQDN)
        props["hostname"] = create["hostname"]
    return {
        "type": "object",
        "properties": {
            "rebuild": {
                "type": "object",
                "properties": props,
                "required": ["imageRef"],
                "additionalProperties": False,
            }
        },
        "required": ["rebuild"],
        "additionalProperties": False,
    }


def rebuild(request: Request, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Response:
    version = request_version(request)
    validate(rebuild_schema(version), body)
    req = body["rebuild"]
    password = req.get("adminPass") or generate_password()
    rt = runtime(request)
    service.rebuild(rt, ctx, server_id, req)
    with rt.db.reader() as s:
        inst = queries.get_instance(s, ctx, server_id)
        extras = queries.load_extras(s, [inst], server_groups=True)[inst.uuid]
    view = views.server_rebuild_view(request, inst, extras, version=version, ctx=ctx, admin_pass=password)
    return JSONResponse({"server": view}, status_code=202)

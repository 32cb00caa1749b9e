"""Remote consoles (``POST /servers/{id}/remote-consoles``, the legacy ``os-get*Console``
actions) and their tokens (``GET /os-console-auth-tokens/{token}``, the console proxy).

A console request asks the server's host where the console listens (``ComputeAPI.
get_console_endpoint``), stores a token for it (only the token's SHA-256, valid
``console_token_ttl`` seconds, Nova's ``[consoleauth] token_ttl``) and answers the URL that carries
the token: noVNC's inside its ``path`` parameter, the serial proxy's as ``?token=``. The serial
proxy is ``compute_api.consoles``' websocket route on this same server.

Refusals, as Nova's: a type that does not belong to the protocol, 400 "Invalid console type";
one the host's driver does not offer (or RDP, removed from Nova), 400 "Unavailable console
type"; a driver with no consoles at all, 501; no host yet or not running, 409 "Instance ... is
not ready"; deleting or migrating, 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid as uuidlib
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from novalite.context import RequestContext
from novalite.db.base import utcnow
from novalite.db.models.compute import Instance
from novalite.db.models.consoles import ConsoleAuthToken
from novalite.domain.states import PowerState, TaskState
from novalite.errors import BadRequest, Conflict, NotFound
from novalite.messaging.transport import CallTimeout, RemoteError
from novalite.runtime import Runtime
from novalite.services.os_hosts import FeatureNotSupported
from novalite.services.server_queries import get_instance

SERIAL_PROXY_PATH = "/compute-console/"  # the serial console websocket route (compute_api.consoles)

# protocol -> the console types Nova accepts with it
PROTOCOL_TYPES: dict[str, tuple[str, ...]] = {
    "vnc": ("novnc", "xvpvnc"),
    "spice": ("spice-html5", "spice-direct"),
    "serial": ("serial",),
    "rdp": ("rdp-html5",),
    "mks": ("webmks",),
}
REMOVED = ("rdp-html5", "xvpvnc")  # gone from Nova: always unavailable


@dataclass(frozen=True)
class Endpoint:
    """What a valid token opens: the instance and where its console listens."""

    instance_uuid: str
    console_type: str
    host: str
    port: int | None
    path: str | None
    internal_access_path: str | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _not_ready(uuid: str) -> Conflict:
    return Conflict(f"Instance {uuid} is not ready", kind="InstanceNotReady")


def _unavailable(console_type: str) -> BadRequest:
    return BadRequest(f"Unavailable console type {console_type}.")


def _url(rt: Runtime, console_type: str, token: str) -> tuple[str, str]:
    """(access URL base, the URL the user gets)."""
    public = rt.settings.effective_public_url
    if console_type == "serial":
        scheme, _, rest = public.partition("://")
        base = ("wss" if scheme == "https" else "ws") + "://" + rest + SERIAL_PROXY_PATH
        return base, f"{base}?token={token}"
    if console_type == "novnc":
        base = public + "/novnc/vnc_auto.html"
        return base, f"{base}?path={quote('?token=' + token, safe='')}"
    base = public + "/console/" + console_type
    return base, f"{base}?token={token}"


def prune(s: Session) -> None:
    """Drop expired tokens and the tokens of deleted servers (deleting a server ends its consoles)."""
    s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires <= utcnow()))
    gone = select(Instance.uuid).where(Instance.deleted.is_(True))
    s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.instance_uuid.in_(gone)))


def get_console(rt: Runtime, ctx: RequestContext, server_id: str, protocol: str, console_type: str) -> str:
    """A new console URL for the server (its token stored); the refusals above."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        uuid, host, task = inst.uuid, inst.host, inst.task_state
    # Nova's order: the API checks the host and the task state, the compute host the type
    if host is None:
        raise _not_ready(uuid)
    if task in (TaskState.DELETING, TaskState.MIGRATING):
        raise Conflict(
            f"Cannot 'get_{protocol}_console' instance {uuid} while it is in task_state {task}",
            kind="InstanceInvalidState",
        )
    if console_type not in PROTOCOL_TYPES.get(protocol, ()):
        raise BadRequest(f"Invalid console type {console_type}")
    if console_type in REMOVED:
        raise _unavailable(console_type)
    try:
        answer = rt.services.require_compute_api().get_console_endpoint(ctx, uuid, host, console_type)
    except (CallTimeout, RemoteError):
        raise _not_ready(uuid) from None
    if answer.get("power_state") is None:  # its host no longer knows it
        raise _not_ready(uuid)
    if not answer.get("supported"):
        raise FeatureNotSupported()
    if console_type not in answer.get("console_types", ()):
        raise _unavailable(console_type)
    found = answer.get("endpoint")
    if answer["power_state"] != PowerState.RUNNING or not found:
        raise _not_ready(uuid)
    return _issue(rt, uuid, console_type, found)


def _issue(rt: Runtime, uuid: str, console_type: str, found: dict[str, object]) -> str:
    token = str(uuidlib.uuid4())
    base, url = _url(rt, console_type, token)
    ttl = rt.settings.console_token_ttl
    port = found.get("port")
    row = ConsoleAuthToken(
        token_hash=_hash(token),
        instance_uuid=uuid,
        console_type=console_type,
        host=str(found.get("host") or ""),
        port=int(port) if isinstance(port, int) else None,
        path=str(found["path"]) if found.get("path") else None,
        internal_access_path=str(found["internal_access_path"])
        if found.get("internal_access_path")
        else None,
        access_url_base=base,
        expires=utcnow() + dt.timedelta(seconds=ttl),
    )
    with rt.db.session() as s:
        prune(s)
        s.add(row)
    return url


def validate_token(rt: Runtime, token: str) -> Endpoint:
    """The endpoint a live token opens; 404 "Token not found" for an unknown, expired or
    deleted server's token."""
    with rt.db.session() as s:
        prune(s)
        row = s.scalars(select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == _hash(token))).first()
        if row is None:
            raise NotFound("Token not found")
        return Endpoint(
            instance_uuid=row.instance_uuid,
            console_type=row.console_type,
            host=row.host,
            port=row.port,
            path=row.path,
            internal_access_path=row.internal_access_path,
        )

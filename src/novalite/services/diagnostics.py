"""Server diagnostics (``GET /servers/{id}/diagnostics``, ``compute_api.diagnostics``): the
server's host reports them through its compute agent (``ComputeAPI.get_diagnostics``, an RPC
call), from its virt driver.

Refusals, as Nova's: no host yet, 409 "Instance … is not ready"; not running, 409 "Cannot
'get_diagnostics' instance … while it is in power state …"; a driver that reports none, 501.
"""

from __future__ import annotations

from typing import Any

from novalite.context import RequestContext
from novalite.domain.states import PowerState
from novalite.errors import Conflict
from novalite.messaging.transport import CallTimeout, RemoteError
from novalite.runtime import Runtime
from novalite.services.os_hosts import FeatureNotSupported
from novalite.services.server_queries import get_instance

# Nova's power_state.STATE_MAP
POWER_STATE_NAMES = {
    PowerState.NOSTATE: "pending",
    PowerState.RUNNING: "running",
    PowerState.PAUSED: "paused",
    PowerState.SHUTDOWN: "shutdown",
    PowerState.CRASHED: "crashed",
    PowerState.SUSPENDED: "suspended",
}


def _not_ready(server_id: str) -> Conflict:
    return Conflict(f"Instance {server_id} is not ready", kind="InstanceNotReady")


def diagnostics(rt: Runtime, ctx: RequestContext, server_id: str) -> dict[str, Any]:
    """The driver's report (Nova's 2.48 fields); the views shape it per microversion."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        uuid, host = inst.uuid, inst.host
    if host is None:
        raise _not_ready(uuid)
    try:
        answer = rt.services.require_compute_api().get_diagnostics(ctx, uuid, host)
    except (CallTimeout, RemoteError):
        raise _not_ready(uuid) from None
    power = (answer or {}).get("power_state")
    if power is None:  # its host no longer knows it (deleted or moved meanwhile)
        raise _not_ready(uuid)
    if power != PowerState.RUNNING:
        state = {int(k): v for k, v in POWER_STATE_NAMES.items()}.get(int(power), "pending")
        raise Conflict(
            f"Cannot 'get_diagnostics' instance {uuid} while it is in power state {state}",
            kind="InstanceInvalidState",
        )
    report = answer.get("diagnostics")
    if report is None:
        raise FeatureNotSupported()
    return dict(report)

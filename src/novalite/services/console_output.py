"""``os-getConsoleOutput`` (``POST /servers/{id}/action``): a real guest's serial console comes
from its host's driver through an RPC call to the compute agent (``GetConsoleOutput``); a
simulated host's console is made up (``server_actions.console_output``)."""

from __future__ import annotations

from novalite.compute import hosts
from novalite.compute.rpcapi import ComputeClient
from novalite.context import RequestContext
from novalite.domain.states import VmState
from novalite.errors import Conflict
from novalite.messaging.transport import CallTimeout, RemoteError
from novalite.runtime import Runtime
from novalite.services import server_actions
from novalite.services.server_queries import get_instance


def console_output(rt: Runtime, ctx: RequestContext, server_id: str, length: int) -> str:
    """The last ``length`` lines of the server's serial console; -1 for all of it."""
    with rt.db.reader() as s:
        inst = get_instance(s, ctx, server_id)
        uuid, host, vm_state = inst.uuid, inst.host, inst.vm_state
    if host is None or host.startswith(hosts.PREFIX):
        return server_actions.console_output(rt.db, ctx, server_id, length)
    if vm_state == VmState.BUILDING:
        raise Conflict(f"Instance {server_id} is not ready", kind="InstanceNotReady")
    client: ComputeClient = rt.services.require_compute_api().compute
    try:
        answer = client.get_console_output(
            ctx, instance_uuid=uuid, host=host, length=None if length < 0 else length
        )
    except (CallTimeout, RemoteError):
        raise Conflict(f"Instance {server_id} is not ready", kind="InstanceNotReady") from None
    output = (answer or {}).get("output")
    if output is None:
        return server_actions.console_output(rt.db, ctx, server_id, length)
    return str(output)

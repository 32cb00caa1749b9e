"""A compute agent's side of remote consoles: where its driver's console of a guest listens.

The API asks with ``GetConsoleEndpoint`` (a call, ``ComputeAPI.get_console_endpoint``); the agent
answers ``{"power_state", "console_types", "supported", "endpoint"}``: the guest's power state as
recorded, the console types its driver offers (``Capabilities.console_types``), whether the driver
has the console hook at all (``virt.driver.ConsoleDriver``), and the endpoint (``{host, port,
path, internal_access_path}``, None when the guest has no such console now).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select

from novalite.compute.guest_spec import guest_spec
from novalite.db.models.compute import Instance
from novalite.domain.states import PowerState
from novalite.messaging.messages import Message

if TYPE_CHECKING:
    from novalite.compute.manager import ComputeAgent


@dataclass(frozen=True)
class GetConsoleEndpoint(Message):
    METHOD: ClassVar[str] = "get_console_endpoint"
    VERSION: ClassVar[str] = "1.0"
    context: dict[str, Any]
    instance_uuid: str
    host: str
    console_type: str


def console_endpoint(agent: ComputeAgent, msg: GetConsoleEndpoint) -> dict[str, Any]:
    types = list(agent.driver.capabilities().console_types)
    hook = getattr(agent.driver, "console_endpoint", None)  # optional: see ConsoleDriver
    answer: dict[str, Any] = {
        "power_state": None,
        "console_types": types,
        "supported": hook is not None,
        "endpoint": None,
    }
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == msg.instance_uuid)).first()
        if inst is None or inst.deleted:
            return answer
        guest = guest_spec(
            inst,
            agent.host,
            display_name=inst.display_name,
            project_id=inst.project_id,
        )
        answer["power_state"] = power = int(inst.power_state)
    if hook is None or power != PowerState.RUNNING or msg.console_type not in types:
        return answer
    found = hook(guest, msg.console_type)
    answer["endpoint"] = asdict(found) if found is not None else None
    return answer

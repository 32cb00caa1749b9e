"""What a QEMU host's data plane wants for VXLAN (compute/tunnels.py): each network with ports on
this host joins the other hosts with ports on it, at their tunnel addresses (compute node
``host_ip``, each host's ``my_ip``); loopback addresses (simulated hosts) and hosts without a port
on the network are no peers. (The devices themselves: tests/netns/test_vxlan.py; two real hosts:
tests/e2e/test_qemu_two_hosts.py.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from novalite.compute import networking
from novalite.db.models.placement import ComputeNode
from tests.conftest import Api
from tests.functional.test_evacuate import _boot_on


def _networks(stack: Api, host: str, tunnel_ip: str | None) -> dict[str, Any]:
    with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
        state = networking.desired_state(s, host, tunnel_ip=tunnel_ip)
    return {n.id: (n.tunnel_local, n.tunnel_peers) for n in state.networks}


def _host_ip(stack: Api, host: str, ip: str) -> None:
    stack.runtime.db.write(  # type: ignore[attr-defined]
        lambda s: s.execute(update(ComputeNode).where(ComputeNode.host == host).values(host_ip=ip))
    )


def test_each_network_floods_to_the_other_hosts_with_ports_on_it(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=3)
    _host_ip(stack, "fake-host-1", "198.19.0.1")
    _host_ip(stack, "fake-host-2", "198.19.0.2")  # fake-host-3 keeps 127.0.0.1: not a peer
    _boot_on(stack, "one", "fake-host-1")
    alone = _networks(stack, "fake-host-1", "198.19.0.1")
    assert alone and set(alone.values()) == {(None, ())}  # no other host: no VXLAN device

    two = _boot_on(stack, "two", "fake-host-2")
    _boot_on(stack, "three", "fake-host-3")
    [(net, tunnel)] = _networks(stack, "fake-host-1", "198.19.0.1").items()
    assert tunnel == ("198.19.0.1", ("198.19.0.2",))
    assert _networks(stack, "fake-host-2", "198.19.0.2") == {net: ("198.19.0.2", ("198.19.0.1",))}
    # without a tunnel address (serve on one machine): no VXLAN at all
    assert _networks(stack, "fake-host-1", None) == {net: (None, ())}

    # host 2's only server gone: host 1 floods to nobody, and host 2 wants nothing
    assert stack.delete(f"/compute/v2.1/servers/{two}", as_="admin").status_code == 204
    stack.wait_for(f"/compute/v2.1/servers/{two}", lambda r: r.status_code == 404, as_="admin")
    assert _networks(stack, "fake-host-1", "198.19.0.1") == {net: (None, ())}
    assert _networks(stack, "fake-host-2", "198.19.0.2") == {}

"""A NIC hot-plugged on a tenant network (issue 17 item 6 with issue 20's data plane):
``novalite serve --driver qemu --network-dataplane on``. ``openstack server add port`` puts the
port's tap on its network's bridge, then plugs it into the running guest, which leases the port's
fixed IP from the network's dnsmasq (``nic added ethN <mac> <ip>/24`` on its console);
``server remove port`` unplugs it, and deleting everything leaves no tap, bridge, DHCP namespace
or dnsmasq of that network and port on the host.

Needs root, QEMU, dnsmasq, nft and pyroute2: skips loudly without them, fails under
NOVALITE_REQUIRE_SERVICES=1 (the fixture is tests/e2e/test_qemu_networks.py's). Every QEMU
started here is killed and every file removed.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_qemu_networks import Cloud, _wait, cloud
from tests.netns.conftest import host_snapshot

pytestmark = pytest.mark.e2e

__all__ = ["cloud"]  # the module's fixture (a cloud of its own)

CIDR, IP = "10.77.41.0/24", "10.77.41.21"


@pytest.mark.timeout(900)  # TCG guests on a shared 2-core host
def test_a_port_on_a_tenant_network_is_hot_plugged_on_its_tap(cloud: Cloud) -> None:
    created = cloud.json(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--config-drive", "true",
        "--no-network", "--wait", "hp1",
    )  # fmt: skip
    uuid = created["id"]
    _wait("hp1 ready", lambda: f"novalite-guest ready {uuid}" in cloud.console(uuid))
    network = cloud.json("network", "create", "hn1")["id"]
    cloud.cli("subnet", "create", "--network", "hn1", "--subnet-range", CIDR, "hs1")
    port = cloud.json("port", "create", "--network", "hn1", "--fixed-ip", f"subnet=hs1,ip-address={IP}", "hp")
    mark = len(cloud.console(uuid))
    cloud.cli("server", "add", "port", uuid, port["id"])
    assert f"tap{port['id'][:11]}" in host_snapshot()["links"]  # on its bridge before QEMU opened it
    pattern = rf"novalite-guest: nic added (eth\d+) {port['mac_address']} (\S*)"
    added = _wait("the NIC on the guest's console", lambda: re.search(pattern, cloud.console(uuid)[mark:]))
    assert added.group(2) == f"{IP}/24", cloud.console(uuid)[-2000:]  # leased from the network's dnsmasq

    mark = len(cloud.console(uuid))
    cloud.cli("server", "remove", "port", uuid, port["id"])
    gone = rf"novalite-guest: nic removed {added.group(1)}\b"
    _wait("the NIC gone from the guest", lambda: re.search(gone, cloud.console(uuid)[mark:]))
    tap = f"tap{port['id'][:11]}"
    _wait("the port's tap gone", lambda: tap not in host_snapshot()["links"], timeout=30)

    cloud.cli("server", "delete", "--wait", uuid)
    cloud.cli("port", "delete", "hp")
    cloud.cli("subnet", "delete", "hs1")
    cloud.cli("network", "delete", "hn1")
    # other tests may run a data plane on this host meanwhile: look for what this one made
    _wait("the port's tap and the network's bridge, DHCP namespace and dnsmasq gone",
          lambda: not _left(network, port["id"]), timeout=30)  # fmt: skip


def _left(network_id: str, port_id: str) -> list[str]:
    """What the host still has of this network and port (bridge, tap, DHCP namespace, dnsmasq)."""
    snapshot = host_snapshot()
    marks = (network_id[:11], port_id[:11])
    found = [*snapshot["netns"], *snapshot["links"], *snapshot["dnsmasq"]]
    return [item for item in found if any(m in item for m in marks)]

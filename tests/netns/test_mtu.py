"""A VXLAN network's MTU, end to end on one host's data plane (issue 20).

A tenant network's default MTU is the underlay's less VXLAN's 50 bytes (1450 on 1500, as in
Neutron; ``network.networks.default_mtu``). The bridge, the VXLAN device, the guest's tap and the
DHCP server's veth all carry it, and dnsmasq tells the guest the same (option 26): a guest sending
full-size frames then never loses them at the VXLAN device.

The data plane runs in a namespace that plays the compute host (``reconcile.apply`` run there in
a subprocess), with a dummy underlay interface holding the tunnel address: nothing is routed in
the host's own namespace, and the namespace takes every device with it at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from novalite.network import networks
from novalite.network.dataplane import l2_vxlan, names

from .conftest import UDHCPC_SCRIPT, _skip_or_fail, in_ns, require_netns, sh

NET = "e1e1e1e1-0000-4000-8000-000000000001"
PORT = ("e1a1a1a1-0000-4000-8000-0000000000a1", "fa:16:3e:20:00:a1", "10.231.11.11")
LOCAL, PEER = "198.19.199.1", "198.19.199.2"  # the underlay: a veth pair to a namespace of its own

APPLY = """
import sys
from pathlib import Path
from novalite.network.dataplane import dhcp, reconcile

data_dir, action, mtu = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
net, (port, mac, ip), local, peer = sys.argv[4], sys.argv[5:8], sys.argv[8], sys.argv[9]
subnet = dhcp.DhcpSubnet(id="s1", cidr="10.231.11.0/24", gateway_ip="10.231.11.1", dhcp_ip="10.231.11.2")
state = reconcile.DesiredState(
    networks=(reconcile.Network(net, subnets=(subnet,), mtu=mtu, tunnel_local=local, tunnel_peers=(peer,)),),
    ports=(reconcile.Port(port, net, mac, fixed_ips=(ip,), port_security_enabled=False),),
)
if action == "apply":
    reconcile.apply(state, data_dir)
else:
    reconcile.teardown(data_dir)
"""


class Host:
    """A namespace playing the compute host, one guest namespace on a veth named like its tap, and
    one holding the other end of the underlay."""

    def __init__(self, tmp: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns, self.guest, self.peer, self.tmp = f"nlmtu-{tag}", f"nlmtg-{tag}", f"nlmtp-{tag}", tmp
        self.data_dir = tmp / "data"
        self.script = tmp / "apply.py"

    def make(self) -> None:
        self.data_dir.mkdir()
        self.script.write_text(APPLY)
        for ns in (self.ns, self.guest, self.peer):
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.ns,
            "link",
            "add",
            "under0",
            "type",
            "veth",
            "peer",
            "name",
            "under0",
            "netns",
            self.peer,
        )
        for ns, address in ((self.ns, LOCAL), (self.peer, PEER)):
            in_ns(ns, "ip", "addr", "add", f"{address}/30", "dev", "under0")
            in_ns(ns, "ip", "link", "set", "under0", "up")
        tap = names.tap_name(PORT[0])
        sh(
            "ip",
            "-n",
            self.ns,
            "link",
            "add",
            tap,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.guest,
        )
        in_ns(self.guest, "ip", "link", "set", "eth0", "address", PORT[1])
        in_ns(self.guest, "ip", "link", "set", "eth0", "up")

    def run(self, action: str, mtu: int) -> None:
        args = [
            sys.executable,
            str(self.script),
            str(self.data_dir),
            action,
            str(mtu),
            NET,
            *PORT,
            LOCAL,
            PEER,
        ]
        # nsenter, not ``ip netns exec``: that gives the process a mount namespace of its own, where
        # the qdhcp- namespace it makes would stay invisible to everyone else
        done = sh("nsenter", f"--net=/run/netns/{self.ns}", *args, check=False)
        assert done.returncode == 0, done.stderr

    def mtu(self, ns: str, ifname: str) -> int:
        return int(in_ns(ns, "cat", f"/sys/class/net/{ifname}/mtu").stdout)

    def lease_mtu(self) -> str:
        script, out = self.tmp / "udhcpc.sh", self.tmp / "lease"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        os.environ["OUT"] = str(out)
        try:
            in_ns(self.guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "1",
                  "-O", "mtu", "-s", str(script), check=False)  # fmt: skip
        finally:
            del os.environ["OUT"]
        fields = dict(kv.split("=", 1) for kv in out.read_text().split() if "=" in kv) if out.exists() else {}
        return fields.get("mtu", "")

    def close(self, mtu: int) -> None:
        try:
            self.run("teardown", mtu)
        finally:
            for ns in (self.guest, self.peer, self.ns):
                sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    require_netns()
    if shutil.which("nsenter") is None:
        _skip_or_fail("nsenter (util-linux) missing")
    made = Host(tmp_path)
    try:
        made.make()
        yield made
    finally:
        made.close(networks.default_mtu({}))


def test_a_tenant_network_is_1450_on_every_device_and_in_the_dhcp_lease() -> None:
    assert networks.default_mtu({}) == 1450 == networks.UNDERLAY_MTU - l2_vxlan.OVERHEAD
    assert networks.default_mtu({"router:external": True}) == 1500
    assert networks.default_mtu({"provider:network_type": "flat"}) == 1500


@pytest.mark.timeout(180)
def test_bridge_vxlan_tap_dhcp_veth_and_option_26_carry_the_network_mtu(host: Host) -> None:
    mtu = networks.default_mtu({})  # what the API shows for a new tenant network
    host.run("apply", mtu)
    devices = {
        "bridge": host.mtu(names.network_namespace(NET), names.bridge_name(NET)),
        "vxlan": host.mtu(names.network_namespace(NET), l2_vxlan.device_name(NET)),
        "tap": host.mtu(names.network_namespace(NET), names.tap_name(PORT[0])),
        "dhcp veth": host.mtu(names.dhcp_namespace(NET), names.dhcp_ns_veth(NET)),
    }
    assert devices == dict.fromkeys(devices, 1450)
    assert host.lease_mtu() == "1450"

    # the network's MTU changed (openstack network set --mtu): every device and the lease follow
    host.run("apply", 1400)
    assert host.mtu(names.network_namespace(NET), l2_vxlan.device_name(NET)) == 1400
    assert host.mtu(names.network_namespace(NET), names.tap_name(PORT[0])) == 1400
    assert host.mtu(names.network_namespace(NET), names.bridge_name(NET)) == 1400
    in_ns(host.guest, "ip", "addr", "flush", "dev", "eth0")
    assert host.lease_mtu() == "1400"

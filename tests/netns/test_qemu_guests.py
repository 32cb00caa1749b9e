"""Two real guests (QEMU TCG, the default image) on one network through the library's taps.

Each guest gets its fixed IP from the network's dnsmasq, and its user_data pings the other
guest and prints the result on its console. ICMP between them is allowed by a rule whose
remote group is their own security group.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from novalite.guest.builder import GuestImage
from novalite.network.dataplane import dhcp, l2, reconcile
from novalite.network.dataplane import security_groups as sg
from novalite.virt.configdrive import ConfigDriveData, write_config_drive
from tests.guest.conftest import QemuGuests, require_qemu

from .conftest import require_netns

NET = "c17c17c1-0000-4000-8000-000000000003"
CIDR = "10.231.8.0/24"
SG_ID = "ce11ce11-0000-4000-8000-000000000000"
GUESTS = {
    "vm-one": ("c1c1c1c1-0000-4000-8000-0000000000c1", "fa:16:3e:17:01:01", "10.231.8.21", "10.231.8.22"),
    "vm-two": ("c2c2c2c2-0000-4000-8000-0000000000c2", "fa:16:3e:17:01:02", "10.231.8.22", "10.231.8.21"),
}


def _user_data(peer: str) -> bytes:
    return (
        "#!/bin/sh\n"
        "n=0\n"
        "while [ $n -lt 90 ]; do\n"
        f'  if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then echo "peer-ping {peer} ok"; exit 0; fi\n'
        "  n=$((n+1))\n"
        "done\n"
        f'echo "peer-ping {peer} failed"\n'
    ).encode()


def _state() -> reconcile.DesiredState:
    ports = tuple(
        reconcile.Port(pid, NET, mac, fixed_ips=(ip,), hostname=name, security_group_ids=(SG_ID,))
        for name, (pid, mac, ip, _peer) in GUESTS.items()
    )
    rules = (
        sg.SecurityGroupRule("egress", "IPv4"),
        sg.SecurityGroupRule("ingress", "IPv4", "icmp", remote_group_id=SG_ID),
    )
    subnet = dhcp.DhcpSubnet(id="sc", cidr=CIDR, gateway_ip="10.231.8.1")
    return reconcile.DesiredState(
        networks=(reconcile.Network(NET, subnets=(subnet,)),),
        ports=ports,
        security_groups=(sg.SecurityGroup(SG_ID, rules),),
    )


def test_two_guests_on_taps_get_their_fixed_ips_and_ping_each_other(
    tmp_path: Path,
    qemu_guests: QemuGuests,
    guest_image: GuestImage,
) -> None:
    require_netns()
    require_qemu()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    try:
        taps = reconcile.apply(_state(), data_dir).taps
        running = {}
        for name, (pid, mac, _ip, peer) in GUESTS.items():
            data = ConfigDriveData(str(uuid.uuid4()), hostname=name, name=name, user_data=_user_data(peer))
            drive = write_config_drive(data, qemu_guests.path(f"{name}.config"))
            fd = l2.open_tap(taps[pid])  # in the network's namespace: QEMU gets a descriptor
            assert fd is not None
            running[name] = qemu_guests.start(
                "-drive", f"file={qemu_guests.overlay(f'{name}.qcow2')},if=virtio,format=qcow2",
                "-drive", f"file={drive},media=cdrom,format=raw,readonly=on",
                "-netdev", f"tap,id=n0,fd={fd}",
                "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
                pass_fds=(fd,),
            )  # fmt: skip
            os.close(fd)  # QEMU has its own
        for name, (_pid, _mac, ip, peer) in GUESTS.items():
            guest = running[name]
            guest.wait_for(rf"net eth0 {ip}/24")
            guest.wait_for(rf"peer-ping {peer} (ok|failed)")
            assert f"peer-ping {peer} ok" in guest.console_text(), guest.diagnostics()
    finally:
        qemu_guests.close()
        reconcile.teardown(data_dir)

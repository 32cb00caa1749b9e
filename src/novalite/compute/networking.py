"""The QEMU host's network data plane, kept in line with the database (docs/networking.md, Wiring).

:func:`desired_state` reads the ports of this host's instances (with their networks, subnets and
security groups) and :class:`HostNetworking` hands it to
:func:`novalite.network.dataplane.reconcile.apply`, which creates the bridges, taps, dnsmasq and
nftables rules wanted and removes what is stale. The agent reconciles before each QEMU spawn
(the guest's taps must exist: QEMU is handed an fd on each), after each destroy, at start,
and whenever the desired state read from the database changes (a watcher polls it each second):
a security group rule created or deleted through the network API reaches running guests without
any message between the API and the agent, in one process or two.

``network_dataplane`` (``novalite serve --network-dataplane``): ``on``, ``off``, or ``auto`` = on
when this process runs as root with CAP_NET_ADMIN and dnsmasq, nft and pyroute2 are available.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from novalite.db.base import Database
from novalite.db.models.compute import Instance, Migration
from novalite.db.models.network import (
    Network,
    Port,
    PortIP,
    PortSecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from novalite.db.models.network import SecurityGroup as SecurityGroupRow

LOG = logging.getLogger(__name__)
CAP_NET_ADMIN = 12
TOOLS = ("dnsmasq", "nft")


def unavailable_reason() -> str | None:
    """Why this process cannot run the data plane (None: it can)."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        status = Path("/proc/self/status").read_text()
        caps = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
        if not int(caps, 16) & (1 << CAP_NET_ADMIN):
            return "no CAP_NET_ADMIN capability"
    except (OSError, StopIteration, ValueError, IndexError):
        return "cannot read this process's capabilities"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if importlib.util.find_spec("pyroute2") is None:
        missing.append("pyroute2 (Python package)")
    if missing:
        return "missing " + ", ".join(missing)
    return None


def resolve(setting: str) -> bool:
    """``network_dataplane`` to on/off, logging why user-mode networking is used when off."""
    if setting not in ("auto", "on", "off"):
        raise SystemExit(f"novalite: network_dataplane must be auto, on or off, not {setting!r}")
    if setting == "off":
        LOG.info("network data plane off (network_dataplane=off): guests use QEMU user-mode networking")
        return False
    reason = unavailable_reason()
    if setting == "on":
        if reason is not None:
            raise SystemExit(f"novalite: --network-dataplane on cannot start: {reason}")
        LOG.info("network data plane on: bridges, taps, dnsmasq and nftables on this host")
        return True
    if reason is not None:
        LOG.warning(
            "network data plane off (network_dataplane=auto, %s): guests use QEMU user-mode "
            "networking, no tenant networks between guests, no security groups",
            reason,
        )
        return False
    LOG.info("network data plane on (network_dataplane=auto): bridges, taps, dnsmasq and nftables")
    return True


def desired_state(
    s: Session,
    host: str,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    expose_external_network: bool = False,
    tunnel_ip: str | None = None,
) -> Any:
    """The data plane wanted on ``host``: the ports of its live instances (plus the instances in
    ``include``, minus those in ``exclude``), their networks with subnets, their security groups,
    and the routers with their floating IPs (``compute/routing.py``). With ``tunnel_ip`` (this
    host's ``my_ip``), each network also gets its VXLAN peers (``compute/tunnels.py``)."""
    from novalite.compute import routing

    state = routing.with_routers(
        s,
        _port_state(s, host, include=include, exclude=exclude),
        expose_external_network=expose_external_network,
    )
    if tunnel_ip is None:
        return state
    from novalite.compute import tunnels

    return tunnels.with_tunnels(s, state, host, tunnel_ip)


def _port_state(s: Session, host: str, *, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Any:
    from novalite.network.dataplane import dhcp
    from novalite.network.dataplane import reconcile as rc
    from novalite.network.dataplane import security_groups as sg

    excluded = set(exclude)
    instances = set(
        s.scalars(
            select(Instance.uuid).where(
                Instance.host == host, Instance.deleted.is_(False), Instance.vm_state != "deleted"
            )
        )
    )
    instances |= set(  # live migrations coming here: the guest's taps before QEMU takes it in
        s.scalars(
            select(Migration.instance_uuid).where(
                Migration.dest_compute == host,
                Migration.migration_type == "live-migration",
                Migration.status.in_(("preparing", "running")),
            )
        )
    )
    instances = (instances | set(include)) - excluded
    if not instances:
        return rc.DesiredState()
    ports = list(s.scalars(select(Port).where(Port.device_id.in_(instances)).order_by(Port.id)))
    port_ids = [p.id for p in ports]
    ips: dict[str, list[str]] = {}
    for port_id, address in s.execute(
        select(PortIP.port_id, PortIP.ip_address)
        .where(PortIP.port_id.in_(port_ids))
        .order_by(PortIP.ip_address)
    ).tuples():
        ips.setdefault(port_id, []).append(address)
    groups_of: dict[str, list[str]] = {}
    for port_id, group_id in s.execute(
        select(PortSecurityGroup.port_id, PortSecurityGroup.security_group_id)
        .where(PortSecurityGroup.port_id.in_(port_ids))
        .order_by(PortSecurityGroup.security_group_id)
    ).tuples():
        groups_of.setdefault(port_id, []).append(group_id)
    hostnames: dict[str, str] = {
        uuid: name
        for uuid, name in s.execute(
            select(Instance.uuid, Instance.hostname).where(Instance.uuid.in_(instances))
        ).tuples()
    }
    network_ids = sorted({p.network_id for p in ports})
    networks = {n.id: n for n in s.scalars(select(Network).where(Network.id.in_(network_ids)))}
    subnets: dict[str, list[Any]] = {}
    for sn in s.scalars(select(Subnet).where(Subnet.network_id.in_(network_ids)).order_by(Subnet.id)):
        subnets.setdefault(sn.network_id, []).append(sn)
    group_ids = sorted({g for gs in groups_of.values() for g in gs})
    rules: dict[str, list[sg.SecurityGroupRule]] = {g: [] for g in group_ids}
    known = set(s.scalars(select(SecurityGroupRow.id).where(SecurityGroupRow.id.in_(group_ids))))
    for r in s.scalars(
        select(SecurityGroupRule)
        .where(SecurityGroupRule.security_group_id.in_(group_ids))
        .order_by(SecurityGroupRule.id)
    ):
        rules[r.security_group_id].append(
            sg.SecurityGroupRule(
                direction=r.direction,
                ethertype=r.ethertype,
                protocol=r.protocol,
                port_range_min=r.port_range_min,
                port_range_max=r.port_range_max,
                remote_ip_prefix=r.remote_ip_prefix,
                remote_group_id=r.remote_group_id,
            )
        )
    return rc.DesiredState(
        networks=tuple(
            rc.Network(
                id=net_id,
                mtu=networks[net_id].mtu if net_id in networks else None,
                dhcp_enabled=any(sn.enable_dhcp for sn in subnets.get(net_id, [])),
                subnets=tuple(
                    dhcp.DhcpSubnet(
                        id=sn.id,
                        cidr=sn.cidr,
                        gateway_ip=sn.gateway_ip,
                        dns_nameservers=tuple(sn.dns_nameservers or ()),
                        host_routes=tuple(
                            dhcp.HostRoute(destination=str(h["destination"]), nexthop=str(h["nexthop"]))
                            for h in sn.host_routes or ()
                            if isinstance(h, dict) and "destination" in h and "nexthop" in h
                        ),
                    )
                    for sn in subnets.get(net_id, [])
                    if sn.enable_dhcp and sn.ip_version == 4
                ),
            )
            for net_id in network_ids
        ),
        ports=tuple(
            rc.Port(
                id=p.id,
                network_id=p.network_id,
                mac=p.mac_address,
                fixed_ips=tuple(ips.get(p.id, ())),
                hostname=hostnames.get(p.device_id) or None,
                security_group_ids=tuple(groups_of.get(p.id, ())),
                port_security_enabled=p.port_security_enabled,
            )
            for p in ports
        ),
        security_groups=tuple(sg.SecurityGroup(id=g, rules=tuple(rules[g])) for g in group_ids if g in known),
    )


class HostNetworking:
    """Reconciles one QEMU host's data plane with the database (serialised: one apply at a time)."""

    def __init__(
        self,
        db: Database,
        host: str,
        data_dir: Path,
        *,
        interval: float = 1.0,
        expose_external_network: bool = False,
        tunnel_ip: str | None = None,
    ) -> None:
        self.db, self.host, self.data_dir, self.interval = db, host, Path(data_dir), interval
        self.expose_external_network = expose_external_network
        self.tunnel_ip = tunnel_ip  # this host's my_ip: VXLAN to the other hosts (None: no VXLAN)
        self.resync_passes = 30  # every 30 passes of the watcher, a full apply
        self._lock = threading.Lock()
        self._applied: Any = None

    def reconcile(self, *, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        from novalite.compute import dhcp_ports
        from novalite.network.dataplane import reconcile as rc

        with self._lock:
            with self.db.reader() as s:
                state = desired_state(
                    s,
                    self.host,
                    include=include,
                    exclude=exclude,
                    expose_external_network=self.expose_external_network,
                    tunnel_ip=self.tunnel_ip,
                )
                have = dhcp_ports.current(s, self.host)
            want = dhcp_ports.wanted(state)
            if not dhcp_ports.in_line(have, want):  # this host's own DHCP port on each network
                have = self.db.write(lambda s: dhcp_ports.sync(s, self.host, want))
            state = dhcp_ports.with_dhcp_ports(state, have)
            if state == self._applied:
                return
            # no port and no router left: nothing at all stays behind, the nftables table included
            result = (
                rc.apply(state, self.data_dir)
                if state.ports or state.routers
                else rc.Result(removed=rc.teardown(self.data_dir))
            )
            self._applied = state if not include and not exclude else None
            if result.removed:
                LOG.info("network data plane: removed %s", ", ".join(result.removed))

    def plug(self, instance_uuid: str) -> None:
        """Before QEMU starts: the guest's taps on their bridges, DHCP and filters in place."""
        self.reconcile(include=[instance_uuid])

    def unplug(self, instance_uuid: str) -> None:
        """After the guest is gone: its taps go, and the networks left without a port."""
        self.reconcile(exclude=[instance_uuid])

    def teardown(self) -> None:
        from novalite.network.dataplane import reconcile as rc

        with self._lock:
            rc.teardown(self.data_dir)
            self._applied = None

    def start(self) -> Callable[[], None]:
        """Watch the database: apply whenever the desired state changes. Returns the stopper."""
        done = threading.Event()

        def loop() -> None:
            passes = 0
            while not done.wait(self.interval):
                passes += 1
                if self.resync_passes and passes % self.resync_passes == 0:
                    self._applied = None  # now and then apply even if the database did not change:
                    # what vanished from the host (a device deleted by hand) is rebuilt
                try:
                    self.reconcile()
                except Exception:  # keep watching through transient database or netlink errors
                    LOG.exception("network data plane reconcile failed")

        thread = threading.Thread(target=loop, name="network-dataplane", daemon=True)
        thread.start()

        def stop() -> None:
            done.set()
            thread.join(timeout=5)

        return stop

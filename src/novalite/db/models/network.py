"""Embedded Neutron subset: networks, subnets, ports (with their fixed IPs), security groups,
routers and floating IPs, and per-project network quotas.

A router's interfaces and gateway are ports (``device_id`` the router, ``device_owner``
``network:router_interface`` / ``network:router_gateway``); a floating IP's address is held by a
port on the external network (``network:floatingip``), so the address's uniqueness is the
``port_ips`` constraint's.

``PortIP`` carries a unique ``(subnet_id, ip_address)``: the database itself refuses to hand
one address to two ports, so concurrent allocations can only fail and retry, never collide.
``DefaultSecurityGroup`` has the project as its primary key for the same reason: two
concurrent first requests of a project cannot both create a ``default`` group.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from novalite.db.base import Base, UTCDateTime, new_uuid, utcnow


class Network(Base):
    __tablename__ = "networks"
    __table_args__ = (Index("ix_networks_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(64))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False)  # "router:external"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    description: Mapped[str] = mapped_column(String(255), default="")
    # the ports' default (Neutron's port-security extension); admins' provider:* attributes
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    provider_network_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    provider_physical_network: Mapped[str | None] = mapped_column(String(255), nullable=True)
    provider_segmentation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Subnet(Base):
    __tablename__ = "subnets"
    __table_args__ = (Index("ix_subnets_network", "network_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)  # 4 or 6
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # [{start, end}]
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Port(Base):
    __tablename__ = "ports"
    __table_args__ = (
        UniqueConstraint("network_id", "mac_address", name="uq_ports_network_mac"),
        Index("ix_ports_device", "device_id"),
        Index("ix_ports_project", "project_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), default="")
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    mac_address: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    binding_host_id: Mapped[str] = mapped_column(String(255), default="")  # "binding:host_id"
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    vnic_type: Mapped[str] = mapped_column(String(32), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(
        JSON, default=list
    )  # [{ip_address, mac}]
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list
    )  # [{opt_name, opt_value, ..}]
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PortIP(Base):
    """One fixed IP of a port; ``(subnet_id, ip_address)`` is unique across all ports."""

    __tablename__ = "port_ips"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address", name="uq_port_ips_subnet_ip"),)

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)


class SecurityGroup(Base):
    __tablename__ = "security_groups"
    __table_args__ = (Index("ix_security_groups_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DefaultSecurityGroup(Base):
    """Which group is a project's ``default`` one (at most one per project)."""

    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"))


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"
    __table_args__ = (Index("ix_sg_rules_group", "security_group_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    security_group_id: Mapped[str] = mapped_column(ForeignKey("security_groups.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))  # ingress | egress
    ethertype: Mapped[str] = mapped_column(String(8))  # IPv4 | IPv6
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=True
    )
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PortSecurityGroup(Base):
    __tablename__ = "port_security_groups"

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), primary_key=True
    )


class NetworkTag(Base):
    """A tag on a network, subnet, port or security group (ids are unique across them)."""

    __tablename__ = "network_tags"
    __table_args__ = (Index("ix_network_tags_tag", "tag"),)

    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class NetworkQuota(Base):
    """A per-project override of one Neutron quota (absent: the default)."""

    __tablename__ = "network_quotas"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Router(Base):
    __tablename__ = "routers"
    __table_args__ = (Index("ix_routers_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    # the external gateway: its network and port (None: no gateway) and SNAT on it
    gw_network_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    gw_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # [{destination, nexthop}]
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FloatingIP(Base):
    """An address on an external network, optionally mapped to a port's fixed IP (through
    ``router_id``, the router joining the port's subnet to that external network)."""

    __tablename__ = "floating_ips"
    __table_args__ = (
        Index("ix_floating_ips_project", "project_id"),
        Index("ix_floating_ips_fixed_port", "fixed_port_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    project_id: Mapped[str] = mapped_column(String(64))
    floating_network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_port_id: Mapped[str] = mapped_column(String(36))
    fixed_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

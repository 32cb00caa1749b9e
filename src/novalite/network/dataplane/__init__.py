"""The network data plane on one host: Linux bridges, taps, DHCP and security groups.

Layout (Neutron's linuxbridge agent; the reasoning is in docs/networking.md):

* ``l2``: one namespace ``qbr-<net>`` per network holding its bridge ``brq-<net>``, carrying no
  IP address, and one tap ``tap<port>`` per port on it (QEMU gets an open descriptor on it);
* ``dhcp``: one namespace ``qdhcp-<net>`` per network, joined to the bridge by a veth pair,
  with one dnsmasq serving every subnet of the network from fixed MAC -> IP entries;
* ``security_groups``: one nftables table ``bridge novalite`` per network namespace filtering
  each port's traffic on the bridge, replaced atomically with ``nft -f``;
* ``reconcile``: makes the host match a desired state described by plain dataclasses and
  removes what is no longer wanted.

Everything here needs root (CAP_NET_ADMIN); nothing adds an address to the host's namespace
but ``--expose-external-network`` (``l3.sync_host_addresses``).
"""

from __future__ import annotations

"""Two port attributes Neutron keeps beside the addresses: allowed address pairs (extra
IP/MAC pairs the port may send from) and extra DHCP options (per-port DHCP answers)."""

from __future__ import annotations

import ipaddress
from typing import Any

from novalite.errors import BadRequest, Conflict
from novalite.network import ipam


def _invalid(reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for operation: {reason}", kind="InvalidInput")


def address_pairs(
    requested: list[dict[str, Any]], port_mac: str, port_security: bool
) -> list[dict[str, str]]:
    """Validated pairs with the port's MAC filled in; 400 on bad or duplicate entries."""
    if requested and not port_security:
        raise Conflict(
            "Port Security must be enabled in order to have allowed address pairs on a port.",
            kind="AddressPairAndPortSecurityRequired",
        )
    out: list[dict[str, str]] = []
    for pair in requested:
        ip = pair.get("ip_address")
        if not isinstance(ip, str):
            raise BadRequest(
                "Allowed address pair must contain ip_address", kind="AllowedAddressPairsMissingIP"
            )
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise _invalid(f"'{ip}' is not a valid IP address.") from None
        mac = pair.get("mac_address") or port_mac
        if not isinstance(mac, str) or not ipam.valid_mac(mac):
            raise _invalid(f"'{mac}' is not a valid MAC address.")
        unknown = set(pair) - {"ip_address", "mac_address"}
        if unknown:
            raise _invalid(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        entry = {"ip_address": ip, "mac_address": mac.lower()}
        if entry in out:
            raise BadRequest(
                "Request contains duplicate address pair: mac_address "
                f"{entry['mac_address']} ip_address {ip}.",
                kind="DuplicateAddressPairInRequest",
            )
        out.append(entry)
    return out


def dhcp_options(current: list[dict[str, Any]], requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge requested options into ``current`` by (opt_name, ip_version); a null value removes one."""
    merged = {(o["opt_name"], o.get("ip_version", 4)): dict(o) for o in current}
    for opt in requested:
        name, value = opt.get("opt_name"), opt.get("opt_value")
        version = opt.get("ip_version", 4)
        if not isinstance(name, str) or not name or len(name) > 64:
            raise _invalid("opt_name must be a non-empty string of at most 64 characters.")
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _invalid("opt_value must be a string of at most 255 characters.")
        if version not in (4, 6, "4", "6"):
            raise _invalid(f"'{version}' is not a valid ip_version.")
        key = (name, int(version))
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = {"opt_name": name, "opt_value": value, "ip_version": int(version)}
    return list(merged.values())

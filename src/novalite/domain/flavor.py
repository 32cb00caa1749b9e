"""``FlavorSnapshot``: what a server keeps of its flavor at boot.

``services/flavors.py`` builds it (``snapshot``, ``find_snapshot``); the create pipeline checks
against it and stores ``to_dict()`` as the instance's ``flavor`` JSON column; the RequestSpec
document (``domain/request_spec.py``) carries it to the conductor and the scheduler, whose view
of a flavor it is (``scheduler.snapshots.FlavorView``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FlavorSnapshot:
    flavorid: str = ""
    name: str = ""
    memory_mb: int
    vcpus: int
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0  # MiB
    extra_specs: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False
    is_public: bool = True
    description: str | None = None

    def disk_gb(self, is_bfv: bool = False) -> int:
        """DISK_GB placement asks for: ephemeral + ceil(swap / 1024) + root (not when booting from volume)."""
        return self.ephemeral_gb + -(-self.swap // 1024) + (0 if is_bfv else self.root_gb)

    def to_dict(self) -> dict[str, Any]:
        """The instance's ``flavor`` column (``services.flavors.flavor_snapshot``'s contract)."""
        return {
            "name": self.name,
            "memory_mb": self.memory_mb,
            "vcpus": self.vcpus,
            "root_gb": self.root_gb,
            "ephemeral_gb": self.ephemeral_gb,
            "swap": self.swap,
            "flavorid": self.flavorid,
            "extra_specs": dict(self.extra_specs),
            "disabled": self.disabled,
            "is_public": self.is_public,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlavorSnapshot:
        """From ``to_dict``'s shape or a part of it (a RequestSpec's flavor): missing sizes are 0."""
        return cls(
            flavorid=str(d.get("flavorid") or ""),
            name=str(d.get("name") or ""),
            memory_mb=int(d.get("memory_mb") or 0),
            vcpus=int(d.get("vcpus") or 0),
            root_gb=int(d.get("root_gb") or 0),
            ephemeral_gb=int(d.get("ephemeral_gb") or 0),
            swap=int(d.get("swap") or 0),
            extra_specs=dict(d.get("extra_specs") or {}),
            disabled=bool(d.get("disabled", False)),
            is_public=bool(d.get("is_public", True)),
            description=d.get("description"),
        )

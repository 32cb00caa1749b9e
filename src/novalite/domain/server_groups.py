"""Server group policy rules, pure: the scheduler's filters and the compute side's late check
(Nova's ``_validate_instance_group_policy``) apply the same ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def max_per_host(rules: Mapping[str, Any] | None) -> int:
    """An anti-affinity group's ``max_server_per_host`` rule (at least 1; 1 when unset or invalid)."""
    try:
        return max(1, int((rules or {}).get("max_server_per_host", 1)))
    except (TypeError, ValueError, AttributeError):
        return 1

"""Schema pieces more than one compute resource uses."""

from __future__ import annotations

from typing import Any

# Nova's ``parameter_types.boolean``: a JSON boolean or one of these spellings (the servers schema
# keeps its own, narrower list: ``schemas.servers.BOOLEAN``).
BOOLEAN: dict[str, Any] = {
    "type": ["boolean", "string"],
    "enum": [
        True,
        "True",
        "TRUE",
        "true",
        "1",
        "ON",
        "On",
        "on",
        "YES",
        "Yes",
        "yes",
        "y",
        "t",
        False,
        "False",
        "FALSE",
        "false",
        "0",
        "OFF",
        "Off",
        "off",
        "NO",
        "No",
        "no",
        "n",
        "f",
    ],
}

"""novalite's own documents, outside the six services: the OpenAPI description of each API
(``api.openapi``), public as the version documents are."""

from __future__ import annotations

from novalite.api.policies.base import ANONYMOUS, Rule, Table

RULES: Table = {
    ("GET", "/openapi"): Rule("(none: API description)", ANONYMOUS),
    ("GET", "/openapi/{name}"): Rule("(none: API description)", ANONYMOUS),
}

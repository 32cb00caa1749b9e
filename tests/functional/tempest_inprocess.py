"""Tempest's own compute service clients, talking to the in-process ``stack``.

Tempest's clients (``tempest.lib.services.compute.*``) pick the response schema for the
requested microversion (``get_schema(schema_versions_info)``), check the exact status code,
validate the body with jsonschema (``additionalProperties: false`` nearly everywhere), check
that ``X-OpenStack-Nova-API-Version`` is echoed, and turn error responses into typed
exceptions (``NotFound``, ``BadRequest``, ``UnexpectedContentType`` ...). Using them unchanged
is the closest thing to a Tempest run that fits in a functional test.

Only two things are replaced: the HTTP object (requests go to the ``TestClient`` instead of
a socket) and the auth provider (the stack's tokens instead of a Keystone round trip).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from tempest.lib.services.compute import base_compute_client

BASE = "http://testserver"
C = TypeVar("C")


class _Response(dict):  # type: ignore[type-arg]
    """The shape Tempest's ``ClosingHttp.request`` returns: lower-cased headers plus status."""

    def __init__(self, url: str, r: Any) -> None:
        super().__init__()
        for key, value in r.headers.items():
            self[str(key).lower()] = value
        self.status: int = r.status_code
        self["status"] = str(r.status_code)
        self.reason: str = r.reason_phrase
        self.version = 11
        self["content-location"] = url


class InProcessHttp:
    """Stands in for ``tempest.lib.common.http.ClosingHttp``; forwards to the TestClient."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def request(
        self,
        url: str,
        method: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        chunked: bool = False,
        preload_content: bool = True,
    ) -> tuple[_Response, bytes]:
        r = self.client.request(method, url, headers=headers or {}, content=body)
        return _Response(url, r), r.content


@dataclass
class Credentials:
    """What Tempest's clients read from ``auth_provider.credentials``."""

    username: str
    user_id: str
    tenant_id: str
    tenant_name: str
    password: str = ""

    @property
    def project_id(self) -> str:
        return self.tenant_id

    @property
    def project_name(self) -> str:
        return self.tenant_name


class StaticAuthProvider:
    """A Keystone-less auth provider: a fixed token and base URL per service."""

    def __init__(self, token: str, credentials: Credentials, base_urls: dict[str, str]) -> None:
        self.token = token
        self.credentials = credentials
        self.base_urls = base_urls

    def get_token(self) -> str:
        return self.token

    def base_url(self, filters: dict[str, Any], auth_data: Any = None) -> str:
        """The service's catalog URL, plus ``/v2`` when the client names an api_version (Glance)."""
        base = self.base_urls[filters.get("service", "compute")]
        return f"{base}/{filters['api_version']}" if filters.get("api_version") else base

    def auth_request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        filters: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, str], Any]:
        base = self.base_url(filters or {})
        full = base if not url else "/".join([base.rstrip("/"), url.lstrip("/")])
        return full, dict(headers or {}, **{"X-Auth-Token": self.token}), body


def credentials_for(api: Any, who: str) -> Credentials:
    """admin -> the admin user in the admin project; demo -> the demo user in the demo project."""
    return Credentials(
        username=who, user_id=api.ids[f"{who}_user"], tenant_id=api.ids[f"{who}_project"], tenant_name=who
    )


def tempest_client(api: Any, cls: type[C], *, as_: str = "demo", service: str = "compute") -> C:
    """An instance of a Tempest service client class wired to the in-process stack."""
    provider = StaticAuthProvider(
        api.tokens[as_],
        credentials_for(api, as_),
        {"compute": f"{BASE}/compute/v2.1", "image": f"{BASE}/image"},
    )
    client = cls(provider, service, "RegionOne")  # type: ignore[call-arg]
    client.http_obj = InProcessHttp(api.client)  # type: ignore[attr-defined]
    return client


@contextmanager
def microversion(version: str | None) -> Iterator[None]:
    """Send ``X-OpenStack-Nova-API-Version: version`` and validate with that version's schemas."""
    old = base_compute_client.COMPUTE_MICROVERSION
    base_compute_client.COMPUTE_MICROVERSION = version
    try:
        yield
    finally:
        base_compute_client.COMPUTE_MICROVERSION = old

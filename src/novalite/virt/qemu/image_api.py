"""Image data over the Image API, for a QEMU host with no access to the image store's files.

:class:`ImageApiFetch` is a ``Fetch`` (virt/qemu/images.py): it streams
``GET {image}/v2/images/{id}/file`` with a token of the service user (Nova's ``[service_user]``,
``nova`` in project ``service`` with the ``admin`` role, so every project's images are readable).
The image cache writes what it yields to a ``.part`` file, verifies the hash and only then renames
it into place, under a per-image file lock: a failed download leaves nothing, and concurrent builds
of one image download it once.

Errors follow the image cache's contract: ``LookupError`` when the API says the image has no data
(404, 204, 410: no host will do better, the build ends in ERROR), ``RuntimeError`` for everything
else (unreachable API, refused credentials, a 5xx: the build may be tried on another host).

:class:`ServiceToken` keeps one token, renews it ``renew_margin_s`` before it expires, and drops it
when the API answers 401 (revoked, keys rotated away): the fetch then authenticates once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

LOG = logging.getLogger(__name__)
CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class ServiceUser:
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


@dataclass(frozen=True)
class Endpoints:
    identity: str  # the Identity API's base, e.g. https://cloud.example.com/identity
    image: str  # the Image API's base, e.g. https://cloud.example.com/image


def _unreachable(what: str, url: str, exc: Exception) -> RuntimeError:
    return RuntimeError(f"the {what} at {url} is unreachable: {type(exc).__name__}: {exc}")


class ServiceToken:
    """The service user's token, shared by every fetch of this host (thread-safe)."""

    def __init__(
        self,
        user: ServiceUser,
        client: httpx.Client,
        *,
        renew_margin_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.user = user
        self.client = client
        self.renew_margin_s = renew_margin_s
        self.clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0
        self.issued = 0  # tokens obtained so far (tests and logs)

    def get(self, identity_url: str) -> str:
        with self._lock:
            if not self._token or self.clock() >= self._expires - self.renew_margin_s:
                self._token, self._expires = self._authenticate(identity_url)
                self.issued += 1
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the API refused it); a newer one obtained meanwhile is kept."""
        with self._lock:
            if self._token == token:
                self._token, self._expires = "", 0.0

    def _authenticate(self, identity_url: str) -> tuple[str, float]:
        url = identity_url.rstrip("/") + "/v3/auth/tokens"
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.user.username,
                            "password": self.user.password,
                            "domain": {"name": self.user.user_domain_name},
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": self.user.project_name,
                        "domain": {"name": self.user.project_domain_name},
                    }
                },
            }
        }
        try:
            response = self.client.post(url, json=body, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise _unreachable("Identity API", url, exc) from exc
        if response.status_code != 201:
            raise RuntimeError(
                f"the Identity API at {url} refused the service user {self.user.username!r} "
                f"(project {self.user.project_name!r}): HTTP {response.status_code}; check "
                "service_user_password ([service_user] password, --service-password)"
            )
        token = response.headers.get("X-Subject-Token", "")
        if not token:
            raise RuntimeError(f"the Identity API at {url} returned no X-Subject-Token")
        return token, _expiry(response, default=self.clock() + 3600)


def _expiry(response: httpx.Response, *, default: float) -> float:
    try:
        expires_at = str(response.json()["token"]["expires_at"])
        return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError):
        return default


class ImageApiFetch:
    """``fetch(image_id)``: the image's data from the Image API, in chunks.

    ``endpoints`` is called on every fetch (cheap: a catalog read or two settings), so a catalog
    changed by an admin is followed without a restart and an API that was not up yet when the
    host started is found later.
    """

    def __init__(
        self,
        endpoints: Callable[[], Endpoints],
        token: ServiceToken,
        client: httpx.Client,
        *,
        chunk_size: int = CHUNK,
    ) -> None:
        self.endpoints = endpoints
        self.token = token
        self.client = client
        self.chunk_size = chunk_size

    def __call__(self, image_id: str) -> Iterator[bytes]:
        if not image_id or "/" in image_id or image_id in (".", ".."):
            raise LookupError(f"bad image id {image_id!r}")
        urls = self.endpoints()
        url = f"{urls.image.rstrip('/')}/v2/images/{image_id}/file"
        for attempt in (1, 2):
            token = self.token.get(urls.identity)
            try:
                with self.client.stream("GET", url, headers={"X-Auth-Token": token}, timeout=TIMEOUT) as resp:
                    if resp.status_code == 401 and attempt == 1:
                        self.token.invalidate(token)  # revoked or expired early: authenticate once more
                        continue
                    _check(resp, url, image_id)
                    yield from resp.iter_bytes(self.chunk_size)
                    LOG.info("image %s: %d bytes fetched from %s", image_id, resp.num_bytes_downloaded, url)
                    return
            except httpx.HTTPError as exc:
                raise _unreachable("Image API", url, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _check(resp: httpx.Response, url: str, image_id: str) -> None:
    if resp.status_code == 200:
        return
    if resp.status_code in (204, 404, 410):
        raise LookupError(f"the Image API has no data for it (HTTP {resp.status_code} from {url})")
    if resp.status_code == 401:
        raise RuntimeError(f"the Image API at {url} refused the service user's new token too (HTTP 401)")
    resp.read()
    detail = resp.text[:200].strip()
    raise RuntimeError(f"the Image API at {url} answered HTTP {resp.status_code}: {detail}")


def client() -> httpx.Client:
    """The HTTP client of one host's fetches (connections kept alive between images)."""
    return httpx.Client(follow_redirects=False, trust_env=False)


def auth_settings(settings: Any) -> ServiceUser:
    return ServiceUser(
        username=settings.service_user_name,
        password=settings.service_user_password,
        project_name=settings.service_user_project,
    )

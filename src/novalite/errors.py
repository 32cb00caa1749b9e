"""The error hierarchy. Every error the API can answer is one of these.

    NovaliteError (500, computeFault)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    │   ├── PolicyNotAuthorized          "Policy doesn't allow <rule> to be performed."
    │   └── OverQuota                    every quota refusal of the compute API
    ├── NotFound (404)
    ├── NotAcceptable (406)              microversion outside the range
    ├── Conflict (409)
    │   ├── placement.providers.ProviderGenerationConflict
    │   └── placement.allocations.AllocationConflict
    ├── RequestTooLarge (413)
    ├── UnsupportedMediaType (415)
    ├── ServiceUnavailable (503)
    │   └── EngineNotRunning             the conductor / compute side is not started here
    └── scheduler.service.NoValidHost    (500) never an HTTP answer: the fault of an ERROR server

Which Nova exception an error stands for is its ``kind`` (``BadRequest("...",
kind="ImageNotFound")``): Neutron reports it as the error type, and tests read it. One handler
per service renders these in the service's envelope (Nova faults, Keystone ``error``, Neutron
``NeutronError``, placement ``errors``): ``novalite.api.faults``.
"""

from __future__ import annotations

from typing import ClassVar


class NovaliteError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, message: str = "", *, kind: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message or self.title)
        self.message = message or self.title
        self.kind = kind or type(self).__name__
        self.headers = headers or {}


class BadRequest(NovaliteError):
    status = 400
    title = "Bad Request"


class Unauthorized(NovaliteError):
    status = 401
    title = "Unauthorized"


class Forbidden(NovaliteError):
    status = 403
    title = "Forbidden"


class PolicyNotAuthorized(Forbidden):
    def __init__(self, rule: str):
        super().__init__(f"Policy doesn't allow {rule} to be performed.")


class OverQuota(Forbidden):
    pass


class NotFound(NovaliteError):
    status = 404
    title = "Not Found"


class NotAcceptable(NovaliteError):
    status = 406
    title = "Not Acceptable"


class Conflict(NovaliteError):
    status = 409
    title = "Conflict"


class RequestTooLarge(NovaliteError):
    status = 413
    title = "Request Entity Too Large"


class UnsupportedMediaType(NovaliteError):
    status = 415
    title = "Unsupported Media Type"


class ServiceUnavailable(NovaliteError):
    status = 503
    title = "Service Unavailable"


class EngineNotRunning(ServiceUnavailable):
    """A part of the engine (conductor, compute side) was asked for in a process that has not
    started it (``runtime.Services``), or the engine process is being restarted. The answer says
    when to try again (``Retry-After``, seconds)."""

    RETRY_AFTER: ClassVar[int] = 2

    def __init__(self, message: str = "", *, kind: str | None = None, headers: dict[str, str] | None = None):
        retry = {"Retry-After": str(self.RETRY_AFTER)}
        super().__init__(message, kind=kind, headers={**retry, **(headers or {})})

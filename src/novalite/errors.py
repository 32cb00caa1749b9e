"""The error hierarchy. Every error the API can answer is one of these.

    NovaliteError (status 500, computeFault)
    ├── BadRequest (400)            ── Invalid, ValidationFailed, FlavorNotFoundForCreate, ...
    ├── Unauthorized (401)
    ├── Forbidden (403)             ── PolicyNotAuthorized, OverQuota
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── NotAcceptable (406)
    ├── Conflict (409)
    ├── RequestTooLarge (413)
    ├── UnsupportedMediaType (415)
    └── NotImplementedYet (501)

Each service renders these in its own envelope (Nova faults, Keystone ``error``,
Neutron ``NeutronError``, placement ``errors``) in ``novalite.api.faults``.
``kind`` names the error for services that report a type (Neutron, tests).
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


class MethodNotAllowed(NovaliteError):
    status = 405
    title = "Method Not Allowed"


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


class NotImplementedYet(NovaliteError):
    status = 501
    title = "Not Implemented"


class ServiceUnavailable(NovaliteError):
    status = 503
    title = "Service Unavailable"

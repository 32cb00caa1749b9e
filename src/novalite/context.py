"""Who is asking: the validated token's user, project and roles, plus the request id."""

from __future__ import annotations

from dataclasses import dataclass, field

from novalite.errors import PolicyNotAuthorized


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str
    roles: tuple[str, ...] = ()
    user_name: str = ""
    project_name: str = ""
    request_id: str = ""
    token_expires_at: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def require_admin(self, rule: str) -> None:
        """Raise the 403 Nova answers when a non-admin calls an admin-only API."""
        if not self.is_admin:
            raise PolicyNotAuthorized(rule)

    def can_access_project(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id

    @classmethod
    def system(cls, request_id: str = "") -> RequestContext:
        """An internal admin context for background work (conductor, compute)."""
        return cls(user_id="", project_id="", roles=("admin",), request_id=request_id)

"""Login lockout (Keystone's ``[security_compliance]`` lockout, policy-and-tokens.md §5.6).

A password login is checked in Keystone's order:

1. locked? (``failed_auth_count`` reached the limit and ``failed_auth_at`` is less than
   ``lockout_duration`` ago): refused even with the right password, and not counted;
2. wrong password: counted;
3. user disabled: refused;
4. success: the counter goes back to 0.

A lock that has run out is lifted (counter reset) at the next try. The counter is raised with
``UPDATE ... SET failed_auth_count = failed_auth_count + 1``, so concurrent wrong tries all count.
With ``lockout_failure_attempts`` 0 (the default) nothing is counted, and a success still clears
a count left from when lockout was on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update

from novalite.db.base import Database, utcnow
from novalite.db.models.identity import User
from novalite.errors import Unauthorized
from novalite.identity.passwords import verify_password

GENERIC = "The request you have made requires authentication."


@dataclass(frozen=True)
class Lockout:
    db: Database
    failure_attempts: int = 0  # 0: off
    duration: int = 1800  # seconds; 0: until an admin sets a new password

    def is_locked(self, user: User) -> bool:
        """Locked now; a lock that ran out is lifted here (the counter starts again)."""
        if not self.failure_attempts or (user.failed_auth_count or 0) < self.failure_attempts:
            return False
        if not self.duration or user.failed_auth_at is None:
            return True
        if user.failed_auth_at + dt.timedelta(seconds=self.duration) > utcnow():
            return True
        reset(self.db, user.id)  # (``user`` is left as read: a change would be written on commit)
        return False

    def record_failure(self, user_id: str) -> None:
        if not self.failure_attempts:
            return
        with self.db.session() as s:
            s.execute(
                update(User)
                .where(User.id == user_id)
                .values(failed_auth_count=User.failed_auth_count + 1, failed_auth_at=utcnow())
            )


def reset(db: Database, user_id: str) -> None:
    with db.session() as s:
        s.execute(update(User).where(User.id == user_id).values(failed_auth_count=0, failed_auth_at=None))


def check_password(
    user: User | None, password: str, *, lockout: Lockout | None, headers: dict[str, str]
) -> User:
    """``user`` (read by the caller) logs in with ``password``, or a 401 in Keystone's words."""
    if user is None:
        raise Unauthorized(GENERIC, headers=headers)
    if lockout is not None and lockout.is_locked(user):
        raise Unauthorized(f"The account is locked for user: {user.id}.", headers=headers)
    if not verify_password(password, user.password_hash):
        if lockout is not None:
            lockout.record_failure(user.id)
        raise Unauthorized(GENERIC, headers=headers)
    if not user.enabled:
        raise Unauthorized(f"The account is disabled for user: {user.id}.", headers=headers)
    if user.failed_auth_count and lockout is not None:
        reset(lockout.db, user.id)
    return user

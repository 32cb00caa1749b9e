"""Token revocation: events in the database, a list of them in every process's memory.

A Fernet token cannot be recalled, so what makes it invalid is an event that matches it
(Keystone's revocation events, policy-and-tokens.md §5.4): a row of ``revocation_events`` whose
set fields all equal the token's, with ``issued_before`` at or after the token's ``issued_at``.

    event written by             fields set                  tokens it kills
    user disabled / deleted      user_id                     all of that user's
    password changed             user_id                     all of that user's
    project disabled / deleted   project_id                  all scoped to that project
    role no longer held          user_id, project_id, role   that user's on that project that
                                                             carry the role
    role deleted                 role_id                     all that carry the role
    DELETE /v3/auth/tokens       audit_id                    that token only

The row is written in the transaction of the change itself (``record``), so a change and its
event commit together. Each process checks tokens against :class:`RevocationList`, an index of
the live events by user, project, audit id, (user, project, role) and role: a handful of dict
lookups per request, no query. The list is read again from the database when the table changed:
looked at (one ``count, max(id)`` query, in a short-lived thread beside the request) at most every
``REFRESH_INTERVAL`` seconds when tokens are being checked, and at once in the process that wrote
an event (``refresh`` after the commit).
So an event applies at once where it was made, and within about half a second in the other
processes on the same database (the engine process of a two-process serve, other API hosts).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from novalite.db.base import Database, utcnow
from novalite.db.models.identity import RevocationEvent
from novalite.identity.tokens import TokenData

LOG = logging.getLogger(__name__)

REFRESH_INTERVAL = 0.5  # seconds between looks at the table from the request path
# events are kept this long past the latest expiry of a token they can match (Keystone's
# [revoke] expiration_buffer)
EXPIRATION_BUFFER = dt.timedelta(seconds=1800)


def record(
    s: Session,
    *,
    ttl: int,
    user_id: str | None = None,
    project_id: str | None = None,
    role_id: str | None = None,
    audit_id: str | None = None,
    token_expires_at: dt.datetime | None = None,
) -> None:
    """Write a revocation event in ``s``'s transaction (and prune the expired ones).

    ``ttl``: the token lifetime; the event lives until every token issued before it expired
    (``token_expires_at`` when it revokes one token)."""
    now = utcnow()
    expires = token_expires_at or now + dt.timedelta(seconds=ttl)
    s.execute(delete(RevocationEvent).where(RevocationEvent.expires_at < now - EXPIRATION_BUFFER))
    s.add(
        RevocationEvent(
            user_id=user_id,
            project_id=project_id,
            role_id=role_id,
            audit_id=audit_id,
            issued_before=now,
            revoked_at=now,
            expires_at=expires,
        )
    )
    s.flush()


@dataclass(frozen=True)
class _Index:
    """The live events, by what they match: key -> the latest ``issued_before``."""

    users: dict[str, dt.datetime] = field(default_factory=dict)
    projects: dict[str, dt.datetime] = field(default_factory=dict)
    audits: dict[str, dt.datetime] = field(default_factory=dict)
    grants: dict[tuple[str, str, str], dt.datetime] = field(default_factory=dict)
    roles: dict[str, dt.datetime] = field(default_factory=dict)

    def add(self, ev: RevocationEvent) -> None:
        key: object
        if ev.audit_id is not None:
            table: dict = self.audits
            key = ev.audit_id
        elif ev.role_id is not None and ev.user_id is not None and ev.project_id is not None:
            table, key = self.grants, (ev.user_id, ev.project_id, ev.role_id)
        elif ev.role_id is not None:
            table, key = self.roles, ev.role_id
        elif ev.user_id is not None:
            table, key = self.users, ev.user_id
        elif ev.project_id is not None:
            table, key = self.projects, ev.project_id
        else:
            return
        if key not in table or table[key] < ev.issued_before:
            table[key] = ev.issued_before

    def matches(self, t: TokenData) -> bool:
        issued = t.issued_at
        for table, key in ((self.users, t.user_id), (self.projects, t.project_id), (self.audits, t.audit_id)):
            before = table.get(key)
            if before is not None and issued <= before:
                return True
        if self.grants or self.roles:
            for role_id, _ in t.roles:
                for before in (self.grants.get((t.user_id, t.project_id, role_id)), self.roles.get(role_id)):
                    if before is not None and issued <= before:
                        return True
        return False


class RevocationList:
    """This process's copy of the live revocation events (see the module docstring)."""

    def __init__(self, db: Database):
        self._db = db
        self._index = _Index()
        self._version: tuple[int, int] | None = None  # (count, max id) of the table when read
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._first = True  # the first check reads the events itself: no token slips by at start

    def is_revoked(self, token: TokenData) -> bool:
        if self._first:
            with self._lock:
                if self._first:
                    self._read(only_if_changed=False)
                    self._first = False
        now = time.monotonic()
        if now - self._checked_at >= REFRESH_INTERVAL and self._lock.acquire(blocking=False):
            # the look at the table runs beside the request, not in it (the request may be on the
            # event loop): this answer uses the events known so far
            self._checked_at = now
            threading.Thread(target=self._read_and_release, name="token-revocations", daemon=True).start()
        return self._index.matches(token)

    def refresh(self) -> None:
        """Read the events again now (after this process wrote one)."""
        with self._lock:
            self._read(only_if_changed=False)

    def _read_and_release(self) -> None:
        try:
            self._read(only_if_changed=True)
        finally:
            self._lock.release()

    def _read(self, *, only_if_changed: bool) -> None:
        """``only_if_changed``: only when the table's (count, max id) moved. Holds ``_lock``."""
        self._checked_at = time.monotonic()
        now = utcnow()
        try:
            with self._db.reader() as s:
                row = s.execute(select(func.count(), func.max(RevocationEvent.id))).one()
                version = (int(row[0]), int(row[1] or 0))
                if only_if_changed and version == self._version:
                    return
                index = _Index()
                for ev in s.scalars(select(RevocationEvent).where(RevocationEvent.expires_at >= now)):
                    index.add(ev)
            self._index, self._version = index, version
        except SQLAlchemyError as exc:
            # keep the events known so far; the next look tries again
            LOG.warning("could not read the token revocation events: %s", exc)

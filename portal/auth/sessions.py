"""Server-side sign-in sessions behind Flask's signed cookie.

The cookie carries a random session token; the database keeps its hash. Every
request re-checks the row, so signing out, "sign out everywhere", a password
change or a disabled account end a session even if its cookie was captured.
Idle and absolute timeouts are enforced here too.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from flask import current_app, request, session
from sqlalchemy import String, bindparam, cast, func, select, update

from portal.extensions import db
from tenants.isolation import note_user_setting
from tenants.models import AuthSession, User, utcnow

TOUCH_EVERY = timedelta(seconds=60)
# Built once (it runs on every request). The same round trip tells row-level security who
# the user is, so their own memberships, assignments and tokens are readable next.
_BY_TOKEN = select(AuthSession, func.set_config("app.user_id", cast(AuthSession.user_id, String), True)).where(
    AuthSession.token_hash == bindparam("token_hash"))


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def start(user: User) -> None:
    """Begin a fresh session for ``user``: the old cookie content is discarded (rotation)."""
    token = secrets.token_urlsafe(32)
    db.session.add(AuthSession(
        token_hash=_hash(token), user_id=user.id, ip=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:300],
    ))
    locale = session.get("locale")
    session.clear()
    session["sid"] = token
    if locale:
        session["locale"] = locale
    session.permanent = True


def current() -> AuthSession | None:
    """The valid session row of this request, or None (expired, revoked, unknown)."""
    token = session.get("sid")
    if not token:
        return None
    # tenants.isolation is told app.user_id is set, so it need not set it again.
    found = db.session.execute(_BY_TOKEN, {"token_hash": _hash(token)}).first()
    row = found[0] if found else None
    if row is not None:
        note_user_setting(db.session(), row.user_id)
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    now = utcnow()
    cfg = current_app.config
    if now - row.created_at > cfg["SESSION_ABSOLUTE_TIMEOUT"] or now - row.last_seen_at > cfg["SESSION_IDLE_TIMEOUT"]:
        row.revoked_at = now
        db.session.commit()
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    return row


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the user of the valid session, if it is ``user_id``."""
    row = current()
    if row is None or str(row.user_id) != user_id:
        return None
    return row.user


def end_current() -> None:
    """Revoke this browser's session."""
    token = session.get("sid")
    if token:
        db.session.execute(update(AuthSession).where(AuthSession.token_hash == _hash(token))
                           .values(revoked_at=utcnow()))
    session.clear()


def end_all(user_id: uuid.UUID, *, keep_current: bool = False) -> int:
    """Revoke every session of ``user_id`` (optionally all but this one); returns how many."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    token = session.get("sid") if keep_current else None
    if token:
        stmt = stmt.where(AuthSession.token_hash != _hash(token))
    return db.session.execute(stmt.values(revoked_at=utcnow())).rowcount

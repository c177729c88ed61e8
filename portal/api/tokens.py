"""Personal access tokens: ``bop_`` + 40 url-safe characters, one tenant, read or write.

Only the SHA-256 of a token is stored, with a short display prefix; the raw
token is handed to its owner once, when it is created. ``authenticate_bearer``
is what ``portal.access`` calls for every request to an ``api*`` blueprint.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from flask import g, request
from flask_babel import gettext as _
from sqlalchemy import select, text, update
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.exceptions import NotFound

from portal.extensions import db
from tenants import audit
from tenants.models import ApiToken, Tenant, User, utcnow

TOKEN_PREFIX = "bop_"  # noqa: S105 (a public marker that makes leaked tokens easy to scan for)
PREFIX_SHOWN = 12  # "bop_" + 8 characters: enough to tell tokens apart, useless to an attacker
SCOPES = ("read", "write")
LAST_USED_RESOLUTION = timedelta(minutes=1)
# 30 random bytes are exactly 40 url-safe base64 characters (no padding).
_RAW = re.compile(r"^bop_[A-Za-z0-9_-]{40}$")
_PRESENT = text("select set_config('app.token_hash', :hex, true)")
_BIND = text("select set_config('app.tenant_ids', :tenants, true), set_config('app.user_id', :user, true)")


class TokenError(ValueError):
    """A refusal the user may read: says what to change."""


def token_hash(raw: str) -> bytes:
    """The SHA-256 digest stored for ``raw`` (tokens are random, so no salt or slow hash is needed)."""
    return hashlib.sha256(raw.encode()).digest()


def create_token(user: User, tenant: Tenant, name: str, scope: str, *, ip: str | None = None) -> str:
    """Create a token for ``user`` in ``tenant``; returns the raw token (shown once, never stored).

    The caller has checked ``tenant:tokens.manage`` and bound ``tenant``. Commits,
    with a ``token.created`` event in the tenant's log.
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError(_("Give the token a name of 1 to 100 characters, e.g. the tool that will use it."))
    if scope not in SCOPES:
        raise TokenError(_("The scope must be read or write."))
    raw = TOKEN_PREFIX + secrets.token_urlsafe(30)
    row = ApiToken(tenant_id=tenant.id, user_id=user.id, name=name, prefix=raw[:PREFIX_SHOWN],
                   token_hash=token_hash(raw), scope=scope)
    db.session.add(row)
    db.session.flush()
    audit.record("token.created", audit.Actor.of(user), tenant_id=tenant.id, ip=ip,
                 object_type="api_token", object_id=row.id,
                 data={"name": name, "scope": scope, "prefix": row.prefix})
    db.session.commit()
    return raw


def own_tokens(user: User) -> list[ApiToken]:
    """``user``'s tokens in the bound tenant, newest first (the ORM scope limits the tenant)."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())))


def access_token(user: User, token_id: uuid.UUID | str) -> ApiToken:
    """``user``'s own token ``token_id`` in the bound tenant; NotFound for missing, foreign or
    someone else's alike."""
    try:
        tid = uuid.UUID(str(token_id))
    except ValueError:
        raise NotFound() from None
    token = db.session.scalars(
        select(ApiToken).where(ApiToken.id == tid, ApiToken.user_id == user.id)).first()
    if token is None:
        raise NotFound()
    return token


def revoke_token(user: User, tenant: Tenant, token_id: uuid.UUID | str, *, ip: str | None = None) -> ApiToken:
    """Revoke ``user``'s own token ``token_id`` (idempotent); commits with ``token.revoked``."""
    token = access_token(user, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record("token.revoked", audit.Actor.of(user), tenant_id=tenant.id, ip=ip,
                     object_type="api_token", object_id=token.id,
                     data={"name": token.name, "prefix": token.prefix})
    db.session.commit()
    return token


def _presented() -> str | None:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not _RAW.match(raw):
        return None
    return raw


def authenticate_bearer() -> User | None:
    """The user behind the request's ``Authorization: Bearer`` token, or None.

    None for a missing, malformed, unknown or revoked token, a disabled user or a
    suspended tenant (the gate answers 401). On success the token is in
    ``g.api_token``; the gate then enforces its tenant and its read/write scope.
    """
    raw = _presented()
    if raw is None:
        return None
    digest = token_hash(raw)
    # No tenant is bound yet: row-level security admits exactly the token whose
    # secret was presented, through app.token_hash, in this same transaction.
    db.session.execute(_PRESENT, {"hex": digest.hex()})
    token = db.session.scalars(
        select(ApiToken).where(ApiToken.token_hash == digest).execution_options(rls_only=True)).first()
    db.session.execute(_PRESENT, {"hex": ""})  # the widening served its purpose: close it again
    if token is None or token.revoked_at is not None:
        return None
    if not token.user.is_active or not token.tenant.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        _touch(token, now)
    g.api_token = token
    return token.user


def _touch(token: ApiToken, now: datetime) -> None:
    # At most once a minute per token, in a short transaction of its own: it is kept
    # even if the request fails, and committing the request's session here would
    # expire the objects the gate is about to use. The tenant is bound for RLS's WITH CHECK.
    with db.engine.begin() as conn:
        conn.execute(_BIND, {"tenants": str(token.tenant_id), "user": str(token.user_id)})
        conn.execute(update(ApiToken.__table__).where(ApiToken.__table__.c.id == token.id)
                     .values(last_used_at=now))
    set_committed_value(token, "last_used_at", now)

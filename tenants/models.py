"""Tenants, users, memberships, staff assignments, sessions, tokens.

``Tenant`` and ``User`` are provider-level (a person may belong to several
tenants); everything that belongs to one client company is ``TenantScoped``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the database stores UTC)."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A random, unguessable public id."""
    return uuid.uuid4()


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


# A tenant in these states can be opened (a suspended one by the provider only); "offboarding" and
# "offboarded" tenants exist for nobody.
LIVE_STATUSES = ("active", "suspended")


class Tenant(Timestamped, db.Model):
    """A client company served by the provider."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="active", nullable=False)
    currency: Mapped[str] = mapped_column(String(3), default="VND", nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh", nullable=False)
    locale: Mapped[str] = mapped_column(String(8), default="vi", nullable=False)
    enforce_mfa: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Bytes of documents this tenant may store; None means the provider's default (TENANT_QUOTA_BYTES).
    storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Why the vault refuses this tenant's uploads ("nonpayment"), or None. Set and cleared by billing
    # (portal.billing.dunning); read by the vault, which never imports billing.
    uploads_suspended_reason: Mapped[str | None] = mapped_column(String(40))

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_gone(self) -> bool:
        """Offboarded, or being offboarded: it exists for nobody any more (its URLs answer 404)."""
        return self.status not in LIVE_STATUSES


class User(Timestamped, db.Model):
    """A person who signs in: provider staff (``provider_role``) or a client user."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    provider_role: Mapped[str | None] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(8), default="en", nullable=False)
    # Notification e-mails: "immediate" (one per event) or "digest" (one a day).
    notify_mode: Mapped[str] = mapped_column(String(10), default="immediate", server_default="immediate",
                                             nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # TOTP secret, encrypted at field level (tenants.fields); never logged.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_provider(self) -> bool:
        return self.provider_role is not None

    @property
    def has_mfa(self) -> bool:
        return self.mfa_enrolled_at is not None


class Membership(TenantScoped, Timestamped, db.Model):
    """A client user's role in one tenant."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    tenant: Mapped[Tenant] = relationship(lazy="joined")


class Assignment(TenantScoped, Timestamped, db.Model):
    """A provider manager or staff member assigned to work for one tenant."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    tenant: Mapped[Tenant] = relationship(lazy="joined")


class AuthSession(Timestamped, db.Model):
    """A signed-in browser session, server side, so sign-out really ends it."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship(lazy="joined")


class UserToken(Timestamped, db.Model):
    """A single-use, expiring link token (invite or password reset); stored hashed."""

    __tablename__ = "user_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    purpose: Mapped[str] = mapped_column(String(10), nullable=False)  # invite | reset
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class RecoveryCode(db.Model):
    """A second-factor recovery code, hashed, usable once."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(TenantScoped, Timestamped, db.Model):
    """A personal access token, scoped to one tenant and to read or write; stored hashed."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(Sealed("api_tokens.name"), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True, nullable=False)
    scope: Mapped[str] = mapped_column(String(5), nullable=False)  # read | write
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(lazy="joined")
    tenant: Mapped[Tenant] = relationship(lazy="joined")

"""Rules of a client workspace: its people, its settings, its access log, API tokens.

Shared by the pages under ``/t/<tenant_slug>/`` and the JSON API. Every function
takes the acting user and the tenant explicitly, and expects the caller (the
gate, for requests) to have checked the authorisation table and bound that
tenant: queries are scoped by ``tenants.isolation``, never by hand here, so a
row of another tenant is simply not found. Writers own their transaction
(they commit) and record what they did in the tenant's audit log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select, tuple_
from werkzeug.exceptions import NotFound

from portal.api import tokens as api_tokens
from portal.auth import services as auth
from portal.extensions import db
from tenants import audit
from tenants.audit import AuditEvent
from tenants.context import current_scope
from tenants.models import ApiToken, Membership, Tenant, User, utcnow
from tenants.policy import CLIENT_ROLES, Role, is_client

AUDIT_PAGE = 50
SIDES = ("provider", "client", "system")


class ClientError(ValueError):
    """A refusal the user can act on; ``status`` is the HTTP status to answer with."""

    status = 422


class Conflict(ClientError):
    """The change would break a rule of the workspace (answered 409)."""

    status = 409


def _client_role(role: str) -> Role:
    if role not in {r.value for r in CLIENT_ROLES}:
        raise ClientError(_("Choose a role: client admin, approver or member."))
    return Role(role)


# --- people ---------------------------------------------------------------------------

def member_count() -> int:
    """How many people belong to the bound tenant."""
    return db.session.scalar(select(func.count()).select_from(Membership)) or 0


def members(*, after: tuple[datetime, uuid.UUID] | None = None, limit: int | None = None) -> list[Membership]:
    """The bound tenant's memberships in joining order (created_at, id), after a cursor key."""
    query = select(Membership).order_by(Membership.created_at, Membership.id)
    if after is not None:
        query = query.where(tuple_(Membership.created_at, Membership.id) > tuple_(*after))
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query).unique())


def access_membership(membership_id: uuid.UUID | str) -> Membership:
    """The membership ``membership_id`` of the bound tenant.

    NotFound for an id that does not exist, is malformed or belongs to another
    tenant alike: the ORM scope (and RLS underneath) only ever sees the bound tenant.
    """
    try:
        mid = uuid.UUID(str(membership_id))
    except ValueError:
        raise NotFound() from None
    membership = db.session.scalars(select(Membership).where(Membership.id == mid)).first()
    if membership is None:
        raise NotFound()
    return membership


def invite_member(actor: User, tenant: Tenant, email: str, name: str, role: str,
                  ip: str | None) -> Membership:
    """Invite ``email`` to ``tenant`` with a client role (``tenant:users.manage``).

    The invitation e-mail leaves after the commit; the new member is pending until
    they set a password. Raises ClientError (422) for a bad role or address and
    Conflict (409) when the person already belongs here or is provider staff.
    """
    client_role = _client_role(role)
    address = auth.normalise_email(email)
    if "@" not in address or len(address) > 254:
        raise ClientError(_("Enter a valid e-mail address."))
    try:
        user = auth.invite(actor, address, (name or "").strip()[:200], role=client_role,
                           tenant=tenant, ip=ip)
    except auth.AuthError as err:
        # What is left is "already here" or "provider staff": a conflict with existing people.
        db.session.rollback()
        raise Conflict(_(str(err))) from None
    return db.session.scalars(select(Membership).where(Membership.user_id == user.id)).one()


def _lock_admins() -> list[uuid.UUID]:
    # Lock the admin rows so that two admins demoting each other at the same time
    # cannot both pass the "not the last admin" check (the second waits and re-reads).
    return list(db.session.scalars(
        select(Membership.id).where(Membership.role == Role.CLIENT_ADMIN.value)
        .order_by(Membership.id).with_for_update()))


def _last_admin(membership: Membership) -> Conflict:
    return Conflict(_("%(name)s is the last client admin of this workspace, and a workspace always "
                      "needs one. Make another person a client admin first, then try again.",
                      name=membership.user.name))


def change_role(actor: User, tenant: Tenant, membership_id: uuid.UUID | str, role: str,
                ip: str | None) -> Membership:
    """Give a member another client role (``tenant:users.manage``).

    Conflict (409) when it would leave the workspace without a client admin.
    """
    new_role = _client_role(role)
    membership = access_membership(membership_id)
    if membership.role == new_role.value:
        return membership
    admins = _lock_admins()
    if membership.role == Role.CLIENT_ADMIN.value and admins == [membership.id]:
        db.session.rollback()
        raise _last_admin(membership)
    old = membership.role
    membership.role = new_role.value
    audit.record("user.role_changed", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 object_type="user", object_id=membership.user_id,
                 data={"email": membership.user.email, "from": old, "to": new_role.value})
    db.session.commit()
    return membership


def remove_member(actor: User, tenant: Tenant, membership_id: uuid.UUID | str, ip: str | None) -> None:
    """Take a person out of the workspace (``tenant:users.manage``); their tokens here are revoked.

    The account itself stays: the person may belong to other workspaces.
    Conflict (409) for the last client admin.
    """
    membership = access_membership(membership_id)
    admins = _lock_admins()
    if membership.role == Role.CLIENT_ADMIN.value and admins == [membership.id]:
        db.session.rollback()
        raise _last_admin(membership)
    user = membership.user
    now = utcnow()
    for token in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                           ApiToken.revoked_at.is_(None))):
        token.revoked_at = now
    db.session.delete(membership)
    audit.record("user.removed", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 object_type="user", object_id=user.id, data={"email": user.email})
    db.session.commit()


def set_enforce_mfa(actor: User, tenant: Tenant, enabled: bool, ip: str | None) -> None:
    """Require (or stop requiring) a second factor for everyone (``tenant:settings.manage``)."""
    if tenant.enforce_mfa == enabled:
        return
    tenant.enforce_mfa = enabled
    audit.record("settings.mfa_required" if enabled else "settings.mfa_optional",
                 audit.Actor.of(actor), tenant_id=tenant.id, ip=ip, object_type="tenant",
                 object_id=tenant.id)
    db.session.commit()


# --- the access log -----------------------------------------------------------------------

@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_before: int | None  # the ``before`` of the next (older) page, None on the last page


def audit_events(*, before: int | None = None, side: str | None = None,
                 limit: int = AUDIT_PAGE) -> EventPage:
    """The bound tenant's audit events, newest first, older than ``before`` (a seq).

    ``side`` keeps only what one side did ("provider": the provider's people). Client readers
    never see internal events (the provider's internal notes and time).
    """
    if side is not None and side not in SIDES:
        raise ClientError(_("Filter by provider, client or system."))
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit + 1)
    if is_client(current_scope().role):  # the provider's internal notes and time are not the client's to read
        query = query.where(AuditEvent.internal.is_(False))
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if side is not None:
        query = query.where(AuditEvent.actor_side == side)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].seq if more and rows else None)


# --- API tokens -------------------------------------------------------------------------------

def my_tokens(actor: User) -> list[ApiToken]:
    """The actor's own tokens in the bound tenant, newest first."""
    return api_tokens.own_tokens(actor)


def create_api_token(actor: User, tenant: Tenant, name: str, scope: str, ip: str | None) -> str:
    """A new token of the actor in ``tenant``; returns the raw token, to be shown once."""
    try:
        return api_tokens.create_token(actor, tenant, name, scope, ip=ip)
    except api_tokens.TokenError as err:
        raise ClientError(_(str(err))) from None


def revoke_api_token(actor: User, tenant: Tenant, token_id: uuid.UUID | str, ip: str | None) -> ApiToken:
    """Revoke one of the actor's own tokens; NotFound for anyone else's."""
    return api_tokens.revoke_token(actor, tenant, token_id, ip=ip)

"""Tenant lifecycle and staff assignments (provider side).

Callers have checked the authorisation table (``provider:tenants.manage``,
``provider:assignments.manage``); each function binds the tenant it writes
into, so its rows pass row-level security, and records the change in both the
tenant's log (the client sees who was given access) and the platform log.
"""

from __future__ import annotations

import re
import uuid
from zoneinfo import available_timezones

from sqlalchemy import select

from portal.extensions import db
from tenants import audit
from tenants.context import Scope, bound
from tenants.models import Assignment, Tenant, User

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
CURRENCIES = {"VND": 0, "USD": 2, "EUR": 2, "JPY": 0, "SGD": 2, "KRW": 0}  # ISO 4217 minor units
STATUSES = ("active", "suspended")


class TenantError(ValueError):
    """A refusal the provider can act on; the message says what to change."""


def tenant_by_slug(slug: str) -> Tenant | None:
    return db.session.scalars(select(Tenant).where(Tenant.slug == slug)).first()


def _in(tenant_id: uuid.UUID, actor: User | None) -> bound:
    return bound(Scope(user_id=actor.id if actor else None, tenant_ids=frozenset({tenant_id})))


def create_tenant(actor: User | None, *, name: str, slug: str, currency: str = "VND",
                  timezone: str = "Asia/Ho_Chi_Minh", locale: str = "vi", ip: str | None = None) -> Tenant:
    """Create a client tenant; validates slug, currency and time zone."""
    name, slug, currency = name.strip(), slug.strip().lower(), currency.strip().upper()
    if not name:
        raise TenantError("Give the company's name.")
    if not SLUG.match(slug):
        raise TenantError("The short name must be 3-63 lowercase letters, digits or dashes, "
                          "starting and ending with a letter or digit.")
    if currency not in CURRENCIES:
        raise TenantError(f"Currency must be one of {', '.join(sorted(CURRENCIES))}.")
    if timezone not in available_timezones():
        raise TenantError("Unknown time zone; use a name like Asia/Ho_Chi_Minh.")
    if locale not in ("en", "vi"):
        raise TenantError("Language must be en or vi.")
    if tenant_by_slug(slug):
        raise TenantError(f"The short name {slug!r} is taken; choose another.")
    tenant = Tenant(name=name, slug=slug, currency=currency, timezone=timezone, locale=locale)
    db.session.add(tenant)
    db.session.flush()
    who = audit.Actor.of(actor)
    with _in(tenant.id, actor):
        audit.record("tenant.created", who, tenant_id=tenant.id, ip=ip, object_type="tenant",
                     object_id=tenant.id, data={"name": name, "slug": slug})
    audit.record("tenant.created", who, ip=ip, object_type="tenant", object_id=tenant.id, data={"slug": slug})
    db.session.commit()
    return tenant


def set_status(actor: User | None, tenant: Tenant, status: str, ip: str | None = None) -> None:
    """Suspend or re-activate a tenant."""
    if status not in STATUSES:
        raise TenantError(f"Status must be one of {', '.join(STATUSES)}.")
    if tenant.status == status:
        return
    tenant.status = status
    who = audit.Actor.of(actor)
    with _in(tenant.id, actor):
        audit.record(f"tenant.{'suspended' if status == 'suspended' else 'activated'}", who,
                     tenant_id=tenant.id, ip=ip, object_type="tenant", object_id=tenant.id)
    audit.record(f"tenant.{status}", who, ip=ip, object_type="tenant", object_id=tenant.id)
    db.session.commit()


def assign(actor: User, tenant: Tenant, staff: User, ip: str | None = None) -> Assignment:
    """Give a manager or staff member access to ``tenant`` (idempotent)."""
    if staff.provider_role not in ("manager", "staff"):
        raise TenantError("Only managers and staff are assigned; provider admins see every tenant.")
    with _in(tenant.id, actor):
        existing = db.session.scalars(select(Assignment).where(Assignment.user_id == staff.id)).first()
        if existing:
            return existing
        row = Assignment(tenant_id=tenant.id, user_id=staff.id, assigned_by_id=actor.id)
        db.session.add(row)
        audit.record("assignment.added", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                     object_type="user", object_id=staff.id, data={"email": staff.email,
                                                                   "role": staff.provider_role})
        db.session.commit()
    return row


def unassign(actor: User, tenant: Tenant, staff: User, ip: str | None = None) -> bool:
    """Remove a staff member's access to ``tenant``; True if there was one."""
    with _in(tenant.id, actor):
        row = db.session.scalars(select(Assignment).where(Assignment.user_id == staff.id)).first()
        if row is None:
            return False
        db.session.delete(row)
        audit.record("assignment.removed", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                     object_type="user", object_id=staff.id, data={"email": staff.email})
        db.session.commit()
    return True

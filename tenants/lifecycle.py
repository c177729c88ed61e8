"""Tenant lifecycle and staff assignments (provider side).

Callers have checked the authorisation table (``provider:tenants.manage``,
``provider:assignments.manage``); the functions check it again for the acting
user (``actor=None`` means the system: CLI, demo data), and a manager may only
touch the tenants they are assigned to. Each function binds the tenant it
writes into, so its rows pass row-level security, and records the change in
both the tenant's log (the client sees who was given access) and the platform
log.

Reading several tenants at once goes through ``tenants.reach.across_tenants``
(``assignments_overview``), which binds only tenants within the actor's reach
and records a ``cross_tenant.read`` event in the platform log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import available_timezones

from blinker import Namespace
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from tenants import audit
from tenants.context import bound, for_tenant
from tenants.models import Assignment, Membership, Tenant, User
from tenants.policy import Role, allowed
from tenants.reach import across_tenants, visible_tenants

_signals = Namespace()
# Sent inside the transaction that removes an assignment, with the tenant bound: (tenant, user=, actor=, ip=).
assignment_removed = _signals.signal("assignment-removed")

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
CURRENCIES = {"VND": 0, "USD": 2, "EUR": 2, "JPY": 0, "SGD": 2, "KRW": 0}  # ISO 4217 minor units
LOCALES = ("vi", "en")
STATUSES = ("active", "suspended")
ASSIGNABLE = (Role.MANAGER.value, Role.STAFF.value)


class TenantError(ValueError):
    """A refusal the provider can act on; the message says what to change.

    ``field`` names the input the message is about (``name``, ``slug``,
    ``currency``, ``timezone``, ``locale``), when there is one, so a form can
    show it next to that input.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TenantNotFound(LookupError):
    """The tenant does not exist or the actor may not see it (answered as 404)."""


class NotAllowed(PermissionError):
    """The actor's provider role may not perform this action (answered as 403)."""


def tenant_by_slug(slug: str) -> Tenant | None:
    """The tenant with ``slug``, whoever asks (tenants are provider-level rows)."""
    return db.session.scalars(select(Tenant).where(Tenant.slug == slug)).first()


def _in(tenant_id: uuid.UUID, actor: User | None) -> bound:
    return for_tenant(tenant_id, actor.id if actor else None)


def _require(actor: User | None, action: str) -> None:
    # actor=None is the system (CLI, demo data), which the authorisation table does not cover.
    if actor is not None and not allowed(actor.provider_role, action):
        raise NotAllowed(action)


def may_see(actor: User | None, tenant_id: uuid.UUID) -> bool:
    """True when ``actor`` (None: the system) may see ``tenant_id``: see ``tenants.reach``."""
    return actor is None or tenant_id in {t.id for t in visible_tenants(actor)}


# --- tenants -------------------------------------------------------------------------

def slug_problem(slug: str) -> str | None:
    """What is wrong with a short name as typed (surrounding spaces aside), in words; None when it is good.

    The tenant form asks this too, so that it shows this beside every other error of the form at once.
    """
    slug = (slug or "").strip()
    if slug != slug.lower() and SLUG.match(slug.lower()):
        # Not lowercased silently: the short name is in every link, so the person should know what it is.
        return _("The short name is written in lowercase: %(slug)s.", slug=slug.lower())
    if not SLUG.match(slug):
        return _("The short name must be 3-63 lowercase letters, digits or dashes, "
                 "starting and ending with a letter or digit.")
    return None


def new_tenant(actor: User | None, *, name: str, slug: str, currency: str = "VND",
               timezone: str = "Asia/Ho_Chi_Minh", locale: str = "vi", ip: str | None = None) -> Tenant:
    """Validate and add a client tenant to the current transaction, without committing.

    For callers that do more in the same transaction (onboarding invites the
    client admin too) and commit or roll back the whole. Raises ``TenantError``.
    """
    _require(actor, "provider:tenants.manage")
    name, slug, currency = (name or "").strip(), (slug or "").strip(), (currency or "").strip().upper()
    if not name:
        raise TenantError(_("Give the company's name."), "name")
    if len(name) > 200:
        raise TenantError(_("The company's name can be at most 200 characters."), "name")
    problem = slug_problem(slug)
    if problem:
        raise TenantError(problem, "slug")
    if currency not in CURRENCIES:
        raise TenantError(_("Currency must be one of %(list)s.", list=", ".join(sorted(CURRENCIES))), "currency")
    if timezone not in available_timezones():
        raise TenantError(_("Unknown time zone; use a name like Asia/Ho_Chi_Minh."), "timezone")
    if locale not in LOCALES:
        raise TenantError(_("Language must be en or vi."), "locale")
    taken = TenantError(_("The short name %(slug)s is taken; choose another.", slug=slug), "slug")
    if tenant_by_slug(slug):
        raise taken
    tenant = Tenant(name=name, slug=slug, currency=currency, timezone=timezone, locale=locale)
    try:
        # A savepoint: losing a race for the slug leaves the caller's transaction usable.
        with db.session.begin_nested():
            db.session.add(tenant)
    except IntegrityError:
        raise taken from None
    who = audit.Actor.of(actor)
    with _in(tenant.id, actor):
        audit.record("tenant.created", who, tenant_id=tenant.id, ip=ip, object_type="tenant",
                     object_id=tenant.id, data={"name": name, "slug": slug})
    audit.record("tenant.created", who, ip=ip, object_type="tenant", object_id=tenant.id, data={"slug": slug})
    return tenant


def create_tenant(actor: User | None, *, name: str, slug: str, currency: str = "VND",
                  timezone: str = "Asia/Ho_Chi_Minh", locale: str = "vi", ip: str | None = None) -> Tenant:
    """Create a client tenant and commit; validates name, slug, currency, time zone, language."""
    tenant = new_tenant(actor, name=name, slug=slug, currency=currency, timezone=timezone,
                        locale=locale, ip=ip)
    db.session.commit()
    return tenant


def set_status(actor: User | None, tenant: Tenant, status: str, ip: str | None = None) -> None:
    """Suspend or re-activate a tenant (a suspended tenant's client users get 403)."""
    _require(actor, "provider:tenants.manage")
    if status not in STATUSES:
        raise TenantError(_("Status must be one of %(list)s.", list=", ".join(STATUSES)), "status")
    if tenant.is_gone:
        raise TenantError(_("This tenant was offboarded: its data is destroyed and it cannot be re-opened."),
                          "status")
    if tenant.status == status:
        return
    tenant.status = status
    who = audit.Actor.of(actor)
    with _in(tenant.id, actor):
        audit.record(f"tenant.{'suspended' if status == 'suspended' else 'activated'}", who,
                     tenant_id=tenant.id, ip=ip, object_type="tenant", object_id=tenant.id)
    audit.record(f"tenant.{status}", who, ip=ip, object_type="tenant", object_id=tenant.id)
    db.session.commit()


# --- assignments ---------------------------------------------------------------------

def _check_manages(actor: User, tenant: Tenant) -> None:
    _require(actor, "provider:assignments.manage")
    if not may_see(actor, tenant.id):
        raise TenantNotFound(tenant.slug)


def assign(actor: User, tenant: Tenant, staff: User, ip: str | None = None) -> Assignment:
    """Give a manager or staff member access to ``tenant`` (idempotent).

    ``actor`` is a provider admin, or a manager assigned to ``tenant``
    (``TenantNotFound`` otherwise).
    """
    _check_manages(actor, tenant)
    if staff.provider_role not in ASSIGNABLE:
        raise TenantError(_("Only managers and staff are assigned; provider admins see every tenant."))
    if not staff.is_active:
        raise TenantError(_("%(name)s's account is disabled; enable it before assigning them.", name=staff.name))
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
    """Remove a staff member's access to ``tenant``; True if there was one.

    Same callers as ``assign``. The person loses access at their next request.
    """
    _check_manages(actor, tenant)
    with _in(tenant.id, actor):
        row = db.session.scalars(select(Assignment).where(Assignment.user_id == staff.id)).first()
        if row is None:
            return False
        db.session.delete(row)
        audit.record("assignment.removed", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                     object_type="user", object_id=staff.id, data={"email": staff.email})
        # Areas built on this one hand over what the person leaves behind here (their running timer,
        # the tasks they had taken), in this same transaction.
        assignment_removed.send(tenant, user=staff, actor=actor, ip=ip)
        db.session.commit()
    return True


# --- reading who works for a tenant --------------------------------------------------

@dataclass(frozen=True)
class StaffRef:
    """A provider person assigned to a tenant, as plain values (no ORM row leaves the scope)."""

    id: uuid.UUID
    name: str
    email: str
    role: str
    is_active: bool


@dataclass(frozen=True)
class TenantOverview:
    """Who works for a tenant, and how many client users it has."""

    tenant_id: uuid.UUID
    staff: tuple[StaffRef, ...]
    client_users: int
    documents_outstanding: int = 0  # requested documents not yet received
    documents_overdue: int = 0

    @property
    def staff_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(s.id for s in self.staff)


def _read_overviews(tenant_ids: frozenset[uuid.UUID], *,
                    with_documents: bool = False) -> dict[uuid.UUID, TenantOverview]:
    # Runs with exactly ``tenant_ids`` bound: the ORM criteria and RLS both scope the reads.
    staff: dict[uuid.UUID, list[StaffRef]] = {t: [] for t in tenant_ids}
    rows = db.session.execute(
        select(Assignment.tenant_id, User.id, User.name, User.email, User.provider_role, User.is_active)
        .join(User, User.id == Assignment.user_id).order_by(User.name)
    ).all()
    for tenant_id, *person in rows:
        staff[tenant_id].append(StaffRef(*person))
    counts: dict[uuid.UUID, int] = {
        tenant_id: n for tenant_id, n in db.session.execute(
            select(Membership.tenant_id, func.count(Membership.id)).group_by(Membership.tenant_id))}
    waiting: dict[uuid.UUID, tuple[int, int]] = {}
    if with_documents:  # only the dashboard shows them
        from portal.documents.requests import outstanding_counts  # the vault sits above this module

        waiting = outstanding_counts()
    return {t: TenantOverview(t, tuple(staff[t]), counts.get(t, 0), *waiting.get(t, (0, 0))) for t in tenant_ids}


def tenant_overview(actor: User, tenant: Tenant) -> TenantOverview:
    """Assigned staff and client-user count of one tenant ``actor`` may see (else ``TenantNotFound``)."""
    if not may_see(actor, tenant.id):
        raise TenantNotFound(tenant.slug)
    with _in(tenant.id, actor):
        return _read_overviews(frozenset({tenant.id}))[tenant.id]


def assignments_overview(actor: User, tenant_ids: Iterable[uuid.UUID], *, why: str = "assignments overview",
                         ip: str | None = None, with_documents: bool = False) -> dict[uuid.UUID, TenantOverview]:
    """Assigned staff and client-user counts of several tenants at once: the one cross-tenant read.

    Every tenant must be visible to ``actor`` (provider admin: any; manager or
    staff: their assignments), else ``TenantNotFound`` and nothing is read.
    Binds all of them in one scope, reads, and records one ``cross_tenant.read``
    event in the platform log naming the tenants and ``why``; commits. ``with_documents`` adds the
    requested documents still outstanding (the dashboard shows them).
    """
    _require(actor, "provider:console.view")
    ids = frozenset(tenant_ids)
    if not ids:
        return {}
    with across_tenants(actor, why, only=ids, ip=ip) as reachable:
        if reachable != ids:  # asked for a tenant beyond the actor's reach: read nothing
            db.session.rollback()
            raise TenantNotFound("a tenant the actor is not assigned to")
        overviews = _read_overviews(ids, with_documents=with_documents)
    db.session.commit()
    return overviews

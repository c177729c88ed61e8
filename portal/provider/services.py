"""Provider console rules: onboarding a client, the provider's people, the platform log, the outbox.

Services take the acting user explicitly, own their transaction (commit, or
roll back everything on a refusal) and never read ``request``; views pass the
caller's IP. Tenant rules live in ``tenants.lifecycle``, identity rules in
``portal.auth.services``; this module composes them for the console.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.auth.services import AuthError, invite, resend_invitation, set_active, with_tenant
from portal.clients.services import EXPORT_BATCH, LogFilter, check_filter, filter_log, stream_log
from portal.extensions import db
from tenants import audit
from tenants.audit import PlatformAuditEvent
from tenants.lifecycle import TenantError, new_tenant
from tenants.models import Tenant, User
from tenants.policy import PROVIDER_ROLES, Role
from tenants.zones import provider_zone

AUDIT_PAGE_SIZE = 50


class OnboardingError(ValueError):
    """Creating a tenant or inviting its client admin was refused; nothing was created.

    ``field`` names the form input the message is about, when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def onboard_tenant(actor: User, *, name: str, slug: str, currency: str, timezone: str, locale: str,
                   admin_email: str, admin_name: str, ip: str | None) -> Tenant:
    """Create a client tenant and invite its client admin, in one transaction.

    ``actor`` is a provider admin (``provider:tenants.manage``). Either both the
    tenant and the invite (user, membership, link, e-mail, audit events) commit,
    or nothing does: a refusal of either rolls the whole transaction back and
    raises ``OnboardingError`` with the reason.
    """
    try:
        tenant = new_tenant(actor, name=name, slug=slug, currency=currency, timezone=timezone,
                            locale=locale, ip=ip)
        # The membership and the tenant's audit event need the new tenant bound; invite() commits
        # the tenant together with everything it writes.
        with with_tenant(actor.id, tenant):
            invite(actor, admin_email, admin_name, role=Role.CLIENT_ADMIN, tenant=tenant, ip=ip)
    except TenantError as err:
        db.session.rollback()
        raise OnboardingError(str(err), err.field) from err
    except AuthError as err:
        db.session.rollback()
        raise OnboardingError(str(err), "admin_email") from err
    except BaseException:
        db.session.rollback()
        raise
    return tenant


# --- the provider's people -------------------------------------------------------------

def start_offboarding(actor: User, tenant: Tenant) -> None:
    """Queue the offboarding of ``tenant`` (provider admins): the job runs ``portal.offboarding.procedure``."""
    from workers import enqueue

    if actor.provider_role != Role.PROVIDER_ADMIN:
        raise PermissionError("provider:tenants.offboard")
    enqueue("offboarding.run", tenant.id, actor.id)
    db.session.commit()


def provider_people() -> list[User]:
    """Everyone with a provider role, active or not, by name."""
    return list(db.session.scalars(
        select(User).where(User.provider_role.is_not(None)).order_by(User.name, User.email)))


def provider_person(user_id: str) -> User | None:
    """The provider person with public id ``user_id``; None for a client user, a bad or unknown id."""
    try:
        uid = uuid.UUID(str(user_id))
    except ValueError:
        return None
    user = db.session.get(User, uid)
    return user if user is not None and user.provider_role else None


def invite_staff(actor: User, email: str, name: str, role: str, ip: str | None) -> User:
    """Invite a provider admin, manager or staff member (``provider:staff.manage``).

    Raises ``AuthError`` (nothing written) when the address cannot be invited.
    """
    if role not in {r.value for r in PROVIDER_ROLES}:
        raise AuthError(_("Choose provider admin, manager or staff."))
    try:
        return invite(actor, email, name, role=Role(role), tenant=None, ip=ip)
    except BaseException:
        db.session.rollback()
        raise


def resend_staff_invitation(actor: User, person: User, ip: str | None) -> None:
    """E-mail a provider person still to accept their invitation a fresh link (``provider:staff.manage``).

    The links sent before stop working; recorded as ``user.invitation_resent`` in the
    platform log. Raises ``AuthError`` (``ResendTooSoon`` within a minute of the last one)
    when there is nothing to resend; ``person`` comes from ``provider_person``.
    """
    resend_invitation(actor, person, None, ip)


def set_staff_active(actor: User, person: User, active: bool, ip: str | None) -> None:
    """Disable (ending all their sessions at once) or re-enable a provider person.

    ``actor`` is a provider admin (``provider:staff.manage``); nobody can
    disable their own account, so the provider always keeps an admin who can
    sign in. Raises ``AuthError`` on refusal.
    """
    if not person.provider_role:
        raise AuthError(_("Only provider people are managed here."))
    if person.id == actor.id and not active:
        raise AuthError(_("You cannot disable your own account; ask another provider admin."))
    set_active(actor, person, active, ip)


# --- the platform audit log ------------------------------------------------------------

# The kinds of action the provider's log can keep (``kind``), as prefixes of the action names.
PLATFORM_KINDS: dict[str, tuple[str, ...]] = {
    "signins": ("auth.",),
    "people": ("user.",),
    "clients": ("tenant.",),
    "security": ("access.", "keys.", "audit_log.", "stripe.", "storage."),
    "reads": ("cross_tenant.",),
    "services": ("service_line.", "quality_rate."),
    "plans": ("plan.",),
}


@dataclass(frozen=True)
class AuditPage:
    """One page of the platform log, newest first; ``older`` is the cursor of the next page."""

    events: list[PlatformAuditEvent]
    older: int | None


def platform_events(before: int | None = None, limit: int = AUDIT_PAGE_SIZE,
                    wanted: LogFilter | None = None) -> AuditPage:
    """Platform audit events with ``seq < before`` (all when None) that ``wanted`` keeps, newest first.

    Cursor pagination on the chain's sequence number: stable while new events arrive, and cheap on
    the unique index. Days are the provider's (``PROVIDER_TIMEZONE``). For ``provider:audit.view``;
    ``ClientError`` names what is wrong with a filter.
    """
    query = select(PlatformAuditEvent).order_by(PlatformAuditEvent.seq.desc()).limit(limit + 1)
    query = filter_log(query, PlatformAuditEvent, wanted or LogFilter(), PLATFORM_KINDS, provider_zone())
    if before is not None:
        query = query.where(PlatformAuditEvent.seq < before)
    rows = list(db.session.scalars(query))
    older = rows[limit - 1].seq if len(rows) > limit else None
    return AuditPage(rows[:limit], older)


def export_platform_events(actor: User, wanted: LogFilter, ip: str | None, header: list[str],
                           rows_of: Callable[[list[PlatformAuditEvent]], Iterable[list[object]]]) -> Iterator[str]:
    """The platform log as ``wanted`` keeps it, as CSV lines to stream (``provider:audit.view``).

    The export is written to the log itself (``audit_log.exported``, with its filter) and committed
    before the first line; ``ClientError`` for a filter the reader got wrong, before anything is recorded.
    """
    check_filter(wanted, PLATFORM_KINDS)
    audit.record("audit_log.exported", audit.Actor.of(actor), ip=ip, data={"filter": wanted.shown()})
    db.session.commit()

    def page(before: int | None) -> tuple[list[PlatformAuditEvent], int | None]:
        found = platform_events(before, EXPORT_BATCH, wanted)
        return found.events, found.older

    return stream_log(header, page, rows_of)


# --- the e-mail outbox (embedded default) ----------------------------------------------

@dataclass(frozen=True)
class OutboxMail:
    """An e-mail written to the outbox folder, as shown in the console."""

    subject: str
    to: str
    date: str | None
    body: str


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def smtp_configured() -> bool:
    """True when e-mail goes out through SMTP (then there is no outbox folder to show)."""
    return bool(current_app.config.get("SMTP_URL"))


def outbox(limit: int = 50) -> list[OutboxMail]:
    """The newest e-mails of the outbox folder (``provider:audit.view``; they hold invite links)."""
    from portal.mail import outbox_messages

    return [OutboxMail(str(m["Subject"] or ""), str(m["To"] or ""),
                       str(m["Date"]) if m["Date"] else None, _text_body(m))
            for m in outbox_messages(limit)]

"""Rules of a client workspace: its people, its settings, its access log, API tokens.

Shared by the pages under ``/t/<tenant_slug>/`` and the JSON API. Every function
takes the acting user and the tenant explicitly, and expects the caller (the
gate, for requests) to have checked the authorisation table and bound that
tenant: queries are scoped by ``tenants.isolation``, never by hand here, so a
row of another tenant is simply not found. Writers own their transaction
(they commit) and record what they did in the tenant's audit log.
"""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select, tuple_
from werkzeug.exceptions import NotFound

from portal import spreadsheet
from portal.api import tokens as api_tokens
from portal.auth import services as auth
from portal.extensions import db
from tenants import audit
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import bound, current_scope
from tenants.models import ApiToken, Membership, Tenant, User, utcnow
from tenants.policy import CLIENT_ROLES, Role, is_client
from tenants.zones import start_of_day, tenant_zone

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


class TooSoon(ClientError):
    """The same thing was just done (a double click); answered 429 with ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def resend_invitation(actor: User, tenant: Tenant, membership_id: uuid.UUID | str, ip: str | None) -> Membership:
    """E-mail a member still to accept their invitation a fresh link (``tenant:users.manage``).

    The links sent before stop working (whoever opens one is told a newer e-mail replaced
    it); recorded as ``user.invitation_resent`` in the tenant's log. NotFound for a
    membership of another tenant (or none); Conflict (409) when the person has accepted
    already or is disabled; TooSoon (429) within a minute of the last invitation.
    """
    membership = access_membership(membership_id)
    try:
        auth.resend_invitation(actor, membership.user, tenant, ip)
    except auth.ResendTooSoon as err:
        raise TooSoon(str(err), err.retry_after) from None
    except auth.AuthError as err:
        raise Conflict(str(err)) from None
    return membership


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


# --- reading a log: the access log here, the platform log in the provider console ----------
# Both logs are read the same way: a side, a kind of action, a range of days in the reader's time
# zone, newest first by sequence number (keyset paging on ``before``), and exported as CSV.

# The kinds of action a reader can keep (``kind``), as prefixes of the action names.
LOG_KINDS: dict[str, tuple[str, ...]] = {
    "documents": ("document.", "documents.", "request.", "intake."),
    "work": ("task.", "task_template.", "time.", "service_target.", "quality.", "quality_rate."),
    "people": ("user.", "assignment."),
    "security": ("token.", "keys.", "settings.", "access_log."),
    "workspace": ("tenant.", "export."),
    "billing": ("statement.",),
    "books": ("ledger.",),
    "dataentry": ("dataentry.",),
    "payroll": ("payroll.",),
}
EXPORT_BATCH = 500  # events read at a time while a CSV export streams


@dataclass(frozen=True)
class LogFilter:
    """What a reader keeps of a log: one side, one kind of action, days ``since``..``until`` (both included)."""

    side: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None

    def shown(self) -> dict[str, str]:
        """The filter as the audit record of an export keeps it (only what was set)."""
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items() if v}


def check_filter(wanted: LogFilter, kinds: Mapping[str, tuple[str, ...]]) -> None:
    """Raise ClientError (422) naming what is wrong with a filter: an unknown side or kind, a start after the end."""
    if wanted.side is not None and wanted.side not in SIDES:
        raise ClientError(_("Filter by provider, client or system."))
    if wanted.kind is not None and wanted.kind not in kinds:
        raise ClientError(_("Choose a kind of event from the list."))
    if wanted.since and wanted.until and wanted.since > wanted.until:
        raise ClientError(_("The start date %(start)s is after the end date %(end)s: swap them, or pick again.",
                            start=wanted.since.isoformat(), end=wanted.until.isoformat()))


def filter_log(query: Select, model: type[AuditEvent | PlatformAuditEvent], wanted: LogFilter,
               kinds: Mapping[str, tuple[str, ...]], zone: ZoneInfo) -> Select:
    """``query`` over ``model`` (either chain) narrowed to ``wanted`` (``check_filter``); days are taken in ``zone``."""
    check_filter(wanted, kinds)
    if wanted.side is not None:
        query = query.where(model.actor_side == wanted.side)
    if wanted.kind is not None:
        query = query.where(or_(*(model.action.startswith(p, autoescape=True) for p in kinds[wanted.kind])))
    if wanted.since:
        query = query.where(model.occurred_at >= start_of_day(wanted.since, zone))
    if wanted.until:  # the whole last day, to the next midnight there
        query = query.where(model.occurred_at < start_of_day(wanted.until + timedelta(days=1), zone))
    return query


Event = TypeVar("Event", AuditEvent, PlatformAuditEvent)


def stream_log(header: list[str], page: Callable[[int | None], tuple[list[Event], int | None]],
               rows_of: Callable[[list[Event]], Iterable[list[object]]]) -> Iterator[str]:
    """A log as CSV, read ``EXPORT_BATCH`` events at a time (``page(before)``) and sent as it is read.

    Text cells are neutralised against formulas (``portal.spreadsheet``); UTF-8 with a byte-order mark,
    so spreadsheets read Vietnamese names right. A stream is read after its view returned, when the
    request's contexts are gone (perhaps in another ``contextvars`` context): each batch is read and
    turned into rows (``rows_of``) in an app context of its own, with the caller's scope and language
    bound again. ``rows_of`` must not rely on the request (give it the reader's time zone now).
    """
    app, scope, locale = current_app._get_current_object(), current_scope(), str(get_locale())  # type: ignore[attr-defined]

    def lines() -> Iterator[str]:
        out, before = io.StringIO(), None
        writer = csv.writer(out)
        writer.writerow(spreadsheet.row([str(h) for h in header]))
        yield "\ufeff" + _drain(out)
        while True:
            own = contextlib.nullcontext() if has_app_context() else app.app_context()
            with own, bound(scope), force_locale(locale):
                events, before = page(before)
                for row in rows_of(events):
                    writer.writerow(spreadsheet.row(["" if v is None else str(v) for v in row]))
                for event in events:
                    db.session.expunge(event)
            yield _drain(out)
            if before is None:
                return

    return lines()


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


@dataclass(frozen=True)
class Names:
    """Who and what the ids of a page of events are: people's names, tenants' names (by id as text)."""

    people: dict[str, str]
    tenants: dict[str, str]


def names_for(events: Iterable[AuditEvent | PlatformAuditEvent]) -> Names:
    """The names of the people and tenants a page of events refers to by id: two statements at most.

    An event's details name what it was about when it was recorded (a title, an e-mail); these
    fill in who did it, and the few events that carry only an id (a disabled account, a suspended
    tenant, a read across clients).
    """
    people: set[uuid.UUID] = set()
    tenants: set[uuid.UUID] = set()
    for event in events:
        if event.actor_id is not None:
            people.add(event.actor_id)
        ids = [event.object_id] if event.object_id else []
        if event.object_type == "user":
            people.update(_uuids(ids))
        elif event.object_type == "tenant" and isinstance(event, PlatformAuditEvent):  # a tenant's log: itself
            tenants.update(_uuids(ids))
        if event.action == "cross_tenant.read":
            tenants.update(_uuids(event.details.get("tenants") or []))
        if event.action == "access.refused":  # "provider person <id>": whom the refused request named
            people.update(_uuids(str(event.details.get("what") or "").split()[-1:]))
    return Names(
        {str(i): n for i, n in db.session.execute(select(User.id, User.name).where(User.id.in_(people)))}
        if people else {},
        {str(i): n for i, n in db.session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenants)))}
        if tenants else {})


def _uuids(values: Iterable[object]) -> set[uuid.UUID]:
    out = set()
    for value in values:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            out.add(uuid.UUID(str(value)))
    return out


def event_actor(event: AuditEvent | PlatformAuditEvent, names: Names) -> tuple[str, str | None]:
    """Who did it, for a person: their name, and under it the address the log recorded when that differs."""
    recorded = event.who
    if event.actor_side == "system" and event.actor_id is None:
        return _("system"), None
    name = names.people.get(str(event.actor_id)) if event.actor_id else None
    if name and recorded and name != recorded:
        return name, recorded
    return name or recorded or _("unknown"), None


def event_object(event: AuditEvent | PlatformAuditEvent, names: Names) -> str | None:
    """What an event was about, named for a person: from its own details, else from ``names``; never a bare id."""
    data = event.details
    if event.object_type == "tenant" and names.tenants.get(str(event.object_id)):
        return names.tenants[str(event.object_id)]  # a client by its name, not its short name in links
    for key in ("name", "email", "slug", "what"):
        if data.get(key):
            return str(data[key])
    if event.action == "cross_tenant.read" and data.get("tenants"):
        return ", ".join(sorted(names.tenants.get(str(t), _("a closed client")) for t in data["tenants"]))
    if event.object_type == "user":
        return names.people.get(str(event.object_id))
    if event.object_type == "tenant":
        return names.tenants.get(str(event.object_id))
    return None


# --- the access log -----------------------------------------------------------------------

@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_before: int | None  # the ``before`` of the next (older) page, None on the last page


def audit_events(*, before: int | None = None, side: str | None = None, kind: str | None = None,
                 since: date | None = None, until: date | None = None, limit: int = AUDIT_PAGE) -> EventPage:
    """The bound tenant's audit events, newest first, older than ``before`` (a seq).

    ``side`` keeps only what one side did ("provider": the provider's people), ``kind`` one kind of
    action (``LOG_KINDS``), ``since``/``until`` the days between (in the tenant's time zone, both
    included). Client readers never see internal events (the provider's internal notes and time):
    every reader of the access log (its page, its CSV, the API) comes through here.
    """
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit + 1)
    query = filter_log(query, AuditEvent, LogFilter(side, kind, since, until), LOG_KINDS,
                       tenant_zone(current_scope().tenant_id))
    if is_client(current_scope().role):  # the provider's internal notes and time are not the client's to read
        query = query.where(AuditEvent.internal.is_(False))
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].seq if more and rows else None)


def export_audit_events(actor: User, tenant: Tenant, wanted: LogFilter, ip: str | None, header: list[str],
                        rows_of: Callable[[list[AuditEvent]], Iterable[list[object]]]) -> Iterator[str]:
    """The access log as ``wanted`` keeps it, as CSV lines to stream (``stream_log``) (``tenant:audit.view``).

    The export is written to the log itself (``access_log.exported``, with its filter) and committed
    before the first line; a filter the reader got wrong raises ClientError before anything is recorded.
    """
    check_filter(wanted, LOG_KINDS)
    audit.record("access_log.exported", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 object_type="tenant", object_id=tenant.id, data={"filter": wanted.shown()})
    db.session.commit()

    def page(before: int | None) -> tuple[list[AuditEvent], int | None]:
        found = audit_events(before=before, limit=EXPORT_BATCH, **asdict(wanted))
        return found.events, found.next_before

    return stream_log(header, page, rows_of)


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

"""Document requests: provider staff ask a client for documents; the client uploads against them.

A request is a short list of items ("March bank statement, Vietcombank"), each
with an optional due date. An item is fulfilled by an upload against it
(``services.upload`` with ``UploadTarget.item``). Reminders go out by e-mail
before and after the due date, once each, sent by a scheduled job; the e-mail
names no document, only the workspace and a link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from werkzeug.exceptions import NotFound

from portal import mail
from portal.documents.models import DocumentRequest, RequestItem
from portal.documents.services import DocumentError, parse_category
from portal.extensions import db
from tenants import audit
from tenants.lookups import parse_id
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import CLIENT_ROLES
from tenants.zones import reader_today, tenant_zone, today_in

MAX_ITEMS = 30


@dataclass(frozen=True)
class ItemInput:
    description: str
    category: str = "other"
    due: str | None = None


def _parse_due(raw: str | None, today: date) -> date | None:
    """An item's due date: a day from ``today`` (the client's) on, since a date already passed would
    reach the client overdue."""
    value = (raw or "").strip()
    if not value:
        return None
    try:
        due = date.fromisoformat(value)
    except ValueError:
        raise DocumentError(_("Give due dates as YYYY-MM-DD, for example 2026-04-05.")) from None
    if due < today:
        raise DocumentError(_("The due date %(date)s has already passed: give today or a later day.",
                              date=format_date(due)))
    return due


def create_request(actor: User, tenant: Tenant, *, title: str, note: str | None, items: list[ItemInput],
                   ip: str | None = None) -> DocumentRequest:
    """Ask the client for documents; the client's people get an e-mail with a link."""
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise DocumentError(_("Give the request a title of at most 200 characters."))
    items = [item for item in items if item.description.strip()]
    if not items:
        raise DocumentError(_("Add at least one document you need, for example “March bank statement”."))
    if len(items) > MAX_ITEMS:
        raise DocumentError(_("A request can ask for at most %(n)d documents; split it in two.", n=MAX_ITEMS))
    today = today_in(tenant_zone(tenant.id))
    request = DocumentRequest(tenant_id=tenant.id, title=title, note=(note or "").strip()[:2000] or None,
                              created_by_id=actor.id)
    db.session.add(request)
    for position, item in enumerate(items):
        description = item.description.strip()
        if len(description) > 300:
            raise DocumentError(_("Describe each document in at most 300 characters."))
        db.session.add(RequestItem(tenant_id=tenant.id, request=request, position=position,
                                   description=description, category=parse_category(item.category),
                                   due_date=_parse_due(item.due, today)))
    db.session.flush()
    audit.record("request.created", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document_request",
                 object_id=request.id, ip=ip, data={"name": title, "items": len(items)})
    _notify(tenant, _recipients(), request.id, "created")
    db.session.commit()
    return request


def get_request(request_id: uuid.UUID | str) -> DocumentRequest:
    """A request of the bound tenant, or 404."""
    request = db.session.get(DocumentRequest, parse_id(str(request_id)))
    if request is None:
        raise NotFound()
    return request


def get_item(request_id: uuid.UUID | str, item_id: uuid.UUID | str, *, lock: bool = False) -> RequestItem:
    """An item of a request of the bound tenant, or 404 (another tenant's, another request's, a missing one)."""
    query = select(RequestItem).where(RequestItem.id == parse_id(str(item_id)),
                                      RequestItem.request_id == parse_id(str(request_id)))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    item = db.session.scalar(query)
    if item is None:
        raise NotFound()
    return item


class ItemConflict(DocumentError):
    """The item is not in a state this answer applies to (answered 409 with what it is now)."""

    status = 409


MAX_REASON = 300


def mark_not_applicable(actor: User, tenant: Tenant, request_id: str, item_id: str, *, reason: str | None,
                        ip: str | None = None) -> RequestItem:
    """The client answers an outstanding item "we don't have this / not applicable", with a reason.

    Client people who may answer requests (the gate: ``tenant:requests.answer``). The item is found
    first (another tenant's is a 404 whatever the reason says), locked, and must still be open: one
    received or answered already is a 409. It then counts as resolved: not outstanding, never
    overdue, never reminded. Both sides read the reason (sealed with the tenant's key).
    Recorded as ``request.item_not_applicable``.
    """
    item = get_item(request_id, item_id, lock=True)
    reason = (reason or "").strip()
    if not reason:
        raise DocumentError(_("Say why you don't have this document: your provider reads it."))
    if len(reason) > MAX_REASON:
        raise DocumentError(_("Keep the reason to at most %(n)d characters.", n=MAX_REASON))
    if item.fulfilled_at is not None:
        raise ItemConflict(_("“%(item)s” was received already.", item=item.description))
    if item.not_applicable_at is not None:
        raise ItemConflict(_("“%(item)s” was answered “not applicable” already.", item=item.description))
    item.not_applicable_at, item.not_applicable_by_id, item.not_applicable_reason = utcnow(), actor.id, reason
    audit.record("request.item_not_applicable", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="request_item", object_id=item.id, ip=ip,
                 data={"name": item.description, "reason": reason})
    db.session.commit()
    return item


def reopen_item(actor: User, tenant: Tenant, request_id: str, item_id: str, *, ip: str | None = None) -> RequestItem:
    """The provider reopens an item the client answered "not applicable": outstanding again.

    The provider's people who manage requests (the gate: ``tenant:requests.manage``). The client's
    reason is kept in the audit event (``request.item_reopened``), not on the item. An item that is
    not answered "not applicable" is a 409.
    """
    item = get_item(request_id, item_id, lock=True)
    if item.not_applicable_at is None:
        raise ItemConflict(_("“%(item)s” is not answered “not applicable”; there is nothing to reopen.",
                             item=item.description))
    reason = item.not_applicable_reason
    item.not_applicable_at = item.not_applicable_by_id = item.not_applicable_reason = None
    audit.record("request.item_reopened", audit.Actor.of(actor), tenant_id=tenant.id, object_type="request_item",
                 object_id=item.id, ip=ip, data={"name": item.description, "not_applicable_reason": reason})
    db.session.commit()
    return item


def list_requests() -> list[DocumentRequest]:
    """The bound tenant's requests, newest first."""
    query = select(DocumentRequest).order_by(DocumentRequest.created_at.desc(), DocumentRequest.id.desc())
    return list(db.session.scalars(query.limit(200)))


def outstanding_items(limit: int = 500) -> list[RequestItem]:
    """Every unfulfilled item of the bound tenant, the most urgent first (no due date last)."""
    query = (select(RequestItem).where(RequestItem.is_open)
             .order_by(RequestItem.due_date.asc().nulls_last(), RequestItem.created_at))
    return list(db.session.scalars(query.limit(limit)))


def outstanding_counts(today: date | None = None) -> dict[uuid.UUID, tuple[int, int]]:
    """(outstanding, overdue) requested documents per bound tenant, for the provider's overview."""
    today = today or reader_today()
    rows = db.session.execute(
        select(RequestItem.tenant_id, func.count(), func.count().filter(RequestItem.due_date < today))
        .where(RequestItem.is_open).group_by(RequestItem.tenant_id))
    return {tenant_id: (outstanding, overdue) for tenant_id, outstanding, overdue in rows}


def _recipients() -> list[User]:
    """The bound tenant's client people who can sign in (those still to accept an invite cannot)."""
    query = (select(User).join(Membership, Membership.user_id == User.id)
             .where(Membership.role.in_([r.value for r in CLIENT_ROLES]), User.is_active.is_(True),
                    User.password_hash.is_not(None)))
    return list(db.session.scalars(query))


def _notify(tenant: Tenant, people: list[User], request_id: uuid.UUID, why: str, due: date | None = None) -> int:
    """E-mail ``people`` about a request: what happened and a link, no document names."""
    # Built by hand: jobs have no request to build URLs from.
    link = f"{current_app.config['BASE_URL'].rstrip('/')}/t/{tenant.slug}/requests/{request_id}"
    sent = 0
    for user in people:
        with force_locale(user.locale or "en"):
            if why == "created":
                subject = _("%(company)s: your accountants need some documents", company=tenant.name)
                body = _("Your provider has asked for documents for %(company)s.\n\n"
                         "See what is needed and upload it here:\n%(link)s\n", company=tenant.name, link=link)
            elif why == "due_soon":
                subject = _("%(company)s: documents due on %(due)s", company=tenant.name, due=due.isoformat())
                body = _("Some documents your provider asked for are due on %(due)s.\n\n"
                         "Upload them here:\n%(link)s\n", due=due.isoformat(), link=link)
            else:
                subject = _("%(company)s: documents overdue", company=tenant.name)
                body = _("Some documents your provider asked for were due on %(due)s and have not arrived yet.\n\n"
                         "Upload them here:\n%(link)s\n", due=due.isoformat(), link=link)
        mail.send(user.email, subject, body)
        sent += 1
    return sent


def send_reminders(tenant_id: uuid.UUID | str, today: date | None = None) -> int:
    """Job: remind the client of items due soon and of overdue items, each reminder once.

    The ``UPDATE ... WHERE reminded_*_at IS NULL RETURNING`` claims items atomically,
    so a scheduler that runs twice (or two workers) sends each reminder once.
    """
    tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
    if tenant is None or not tenant.is_active:
        return 0
    today = today or today_in(tenant_zone(tenant.id))  # the client's own day
    soon = today + timedelta(days=current_app.config["REMINDER_DAYS_BEFORE"])
    open_item = RequestItem.is_open  # an item answered "not applicable" is not reminded of
    now = utcnow()
    before = db.session.execute(
        update(RequestItem).where(open_item, RequestItem.reminded_before_at.is_(None),
                                  RequestItem.due_date >= today, RequestItem.due_date <= soon)
        .values(reminded_before_at=now).returning(RequestItem.request_id, RequestItem.due_date)
        .execution_options(synchronize_session=False)).all()
    after = db.session.execute(
        update(RequestItem).where(open_item, RequestItem.reminded_after_at.is_(None), RequestItem.due_date < today)
        .values(reminded_after_at=now).returning(RequestItem.request_id, RequestItem.due_date)
        .execution_options(synchronize_session=False)).all()
    sent = 0
    people = _recipients() if before or after else []
    for rows, why in ((before, "due_soon"), (after, "overdue")):
        earliest: dict[uuid.UUID, date] = {}
        for request_id, due in rows:
            earliest[request_id] = min(due, earliest.get(request_id, due))
        for request_id, due in earliest.items():
            sent += _notify(tenant, people, request_id, why, due)
    if sent:
        audit.record("request.reminders_sent", audit.SYSTEM, tenant_id=tenant.id,
                     data={"due_soon": len(before), "overdue": len(after)})
    db.session.commit()
    return sent


"""Stripe in the statements: the invoice of each statement, the webhooks that pay it, the payment-method page.

When Stripe is on (``stripe_gateway.enabled()``), issuing or re-issuing a statement enqueues
``billing.stripe_invoice``, which calls ``invoice_statement``: the tenant's Stripe customer (kept in
its ``BillingAccount``), then one Stripe invoice per statement version whose lines are the statement's
lines to the minor unit (fee and usage lines, a negative discount line when there is one, then the tax
as a line), so Stripe's total is the statement's total. The gateway's idempotency keys and its search
by metadata make a retry, a second run or a crash half-way end with that one invoice.

Webhooks (``receive_webhook``): the signature is checked by the gateway; a refused one is answered 400
by the view and recorded in the platform audit log with the reason (never the payload). Each event is
recorded by its id before it is applied (``StripeEvent``, unique), so a duplicate delivery changes
nothing. An event is matched to its statement (by the invoice id, the invoice's own metadata, or the payment intent
a refund or dispute names, traced to its invoice through Stripe's invoice payments when no statement
has met it yet) with every tenant bound for that one read, and applied with only that tenant bound:

- money is a fact and always applies once: ``invoice.paid`` records a Stripe payment (reference: the
  invoice id), ``charge.refunded`` a negative one;
- the payment state follows the object's state, not arrival: the statement keeps the Stripe time of
  the last event applied (``stripe_event_at``) and an older event never changes the state; a
  ``payment_failed`` never overwrites paid or refunded. So any order of the same events ends the same.

Each applied event is audited in the tenant's chain (``statement.paid``, ``statement.payment_failed``,
``statement.refunded``, ``statement.charge_disputed``) and the client's and the provider's admins are
notified (a link, never an amount). A payment lifts a suspension for non-payment (``dunning``).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale, format_decimal
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from portal.billing import documents, dunning
from portal.billing import stripe_gateway as gateway
from portal.billing.models import Payment, Statement, StripeEvent
from portal.extensions import db
from tenants import audit
from tenants.audit import all_tenants_scope
from tenants.context import bound, for_tenant
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import Role
from tenants.zones import tenant_zone, today_in

HANDLED = ("invoice.paid", "invoice.payment_failed", "charge.refunded", "charge.dispute.created")
# The payment state each event leads to, and the audit action and notification that say so.
STATE = {"invoice.paid": "paid", "invoice.payment_failed": "failed", "charge.refunded": "refunded",
         "charge.dispute.created": "disputed"}
ACTION = {"invoice.paid": "statement.paid", "invoice.payment_failed": "statement.payment_failed",
          "charge.refunded": "statement.refunded", "charge.dispute.created": "statement.charge_disputed"}
NOTICE = {"invoice.paid": "statement_paid", "invoice.payment_failed": "statement_payment_failed",
          "charge.refunded": "statement_refunded", "charge.dispute.created": "statement_charge_disputed"}
# Final states: an older (or simultaneous) payment failure never overwrites them.
FINAL = ("paid", "refunded")
# Ties in Stripe's time (one second apart at best): the state further along wins.
RANK = {"failed": 1, "paid": 2, "disputed": 3, "refunded": 4}


# --- the invoice of a statement ----------------------------------------------------------------------------

def invoice_lines(statement: Statement) -> list[gateway.InvoiceLine]:
    """The statement's lines as Stripe invoice lines, in the statement's language, summing to its total.

    Fee and usage lines as issued, then the discount as a negative line (when there is one), then the tax.
    """
    names = documents.line_names()
    with force_locale(statement.locale):
        lines = [gateway.InvoiceLine(documents.line_label(line.label, names), line.amount)
                 for line in statement.lines]
        if statement.discount:
            lines.append(gateway.InvoiceLine(_("Discount"), -statement.discount))
        lines.append(gateway.InvoiceLine(_("Tax (%(rate)s)", rate=format_decimal(statement.tax_rate_bp / 100) + " %"),
                                         statement.tax))
    return lines


def _client_admin_email(tenant: Tenant) -> str | None:
    return db.session.scalar(
        select(User.email).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant.id, Membership.role == Role.CLIENT_ADMIN.value,
               User.is_active.is_(True)).order_by(User.email).limit(1))


def ensure_customer(tenant: Tenant) -> str:
    """The bound tenant's Stripe customer id, made (or brought up to date) and stored; commits when it is new."""
    acct = dunning.account(tenant.id)
    customer_id = gateway.ensure_customer(tenant_id=str(tenant.id), name=tenant.name,
                                          email=_client_admin_email(tenant), customer_id=acct.stripe_customer_id)
    if customer_id != acct.stripe_customer_id:
        acct.stripe_customer_id = customer_id
        db.session.commit()  # kept before anything is billed: a retry finds the same customer
    return customer_id


def invoice_statement(statement_id: uuid.UUID | str) -> str | None:
    """The job: the Stripe invoice of the bound tenant's statement version, made once; returns its id.

    Nothing happens when Stripe is off, the statement is gone, already invoiced, or superseded by a
    correction before the job ran (the correction has its own invoice). Commits.
    """
    if not gateway.enabled():
        return None
    sid = uuid.UUID(str(statement_id))
    statement = db.session.get(Statement, sid)
    if statement is None or statement.stripe_invoice_id or statement.superseded_at is not None:
        return statement.stripe_invoice_id if statement else None
    tenant = db.session.get(Tenant, statement.tenant_id)
    customer_id = ensure_customer(tenant)
    statement = db.session.get(Statement, sid)
    issued_on = today_in(tenant_zone(tenant.id), statement.issued_at)
    invoice = gateway.create_invoice(customer_id=customer_id, statement_id=str(statement.id),
                                     version=statement.version, currency=statement.currency,
                                     lines=invoice_lines(statement),
                                     due_days=max(0, (statement.due_on - issued_on).days))
    statement = db.session.get(Statement, sid, with_for_update=True)
    if statement.stripe_invoice_id is None:
        statement.stripe_invoice_id = invoice.id
        statement.stripe_invoice_url = invoice.hosted_invoice_url
        audit.record("statement.stripe_invoiced", audit.SYSTEM, tenant_id=tenant.id, object_type="statement",
                     object_id=statement.id, data={"invoice": invoice.id, "total": invoice.total,
                                                   "currency": invoice.currency, "version": statement.version})
    db.session.commit()
    _void_replaced(statement)
    return statement.stripe_invoice_id


def _void_replaced(statement: Statement) -> None:
    """The invoices of the versions this one corrected, still open in Stripe: voided, so only this one is paid."""
    replaced = db.session.scalars(select(Statement).where(
        Statement.month == statement.month, Statement.version < statement.version,
        Statement.stripe_invoice_id.is_not(None), Statement.paid == 0))
    for old in replaced:
        gateway.void_invoice(invoice_id=old.stripe_invoice_id, statement_id=str(old.id), version=old.version)


def payment_method_url(tenant: Tenant, *, return_url: str) -> str:
    """A Stripe-hosted page where the bound tenant's client admin adds or changes the card (never our servers)."""
    customer_id = ensure_customer(tenant)
    return gateway.setup_session_url(customer_id=customer_id, return_url=return_url)


# --- webhooks ------------------------------------------------------------------------------------------------

def refuse_webhook(reason: str, *, ip: str | None) -> None:
    """Record a refused webhook in the platform audit log: the reason, never the payload. Commits."""
    db.session.rollback()
    audit.record("stripe.webhook_refused", audit.SYSTEM, ip=ip, data={"reason": reason[:300]})
    db.session.commit()


def receive_webhook(payload: bytes, signature: str | None, *, ip: str | None = None) -> str:
    """Verify and apply one webhook delivery; returns the outcome (applied, duplicate, stale, unmatched, ignored,
    or retry_later: Stripe could not say which invoice a refund or dispute is about; the view answers 409).

    Raises ``BadSignature`` (already audited) for a missing, wrong or stale signature.
    """
    try:
        event = gateway.verify_event(payload, signature or "")
    except gateway.BadSignature as exc:
        refuse_webhook(str(exc), ip=ip)
        raise
    return apply_event(event)


def _object_created(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event.get("created") or 0), UTC)


def apply_event(event: dict[str, Any]) -> str:
    """Apply a verified Stripe event once (see the module's docstring); commits. No tenant needs to be bound."""
    obj: dict[str, Any] = (event.get("data") or {}).get("object") or {}
    kind = str(event.get("type") or "")
    event_id = str(event["id"])
    if db.session.get(StripeEvent, event_id) is not None:
        db.session.rollback()
        return "duplicate"
    try:
        found = _statement_of(kind, obj) if kind in HANDLED else None
    except gateway.StripeGatewayError as exc:
        # Stripe could not say which invoice a refund or dispute is about: nothing is kept, and a non-2xx
        # answer makes Stripe deliver the event again later.
        db.session.rollback()
        current_app.logger.warning("Stripe event %s (%s) not matched yet: %s", event_id, kind, exc)
        return "retry_later"
    created = _object_created(event)
    claimed = db.session.execute(
        insert(StripeEvent).values(id=event_id, type=kind[:80], object_id=str(obj.get("id") or "")[:255]
                                   or None, created=created, received_at=utcnow(), outcome="received")
        .on_conflict_do_nothing(index_elements=[StripeEvent.id]).returning(StripeEvent.id)).first()
    if claimed is None:  # being applied right now by another delivery of the same event, which waited
        db.session.rollback()
        return "duplicate"
    if found is None:
        outcome = "ignored" if kind not in HANDLED else "unmatched"
        if outcome == "unmatched":
            current_app.logger.warning("Stripe event %s (%s) matches no statement", event_id, kind)
        _finish(event_id, outcome)
        db.session.commit()
        return outcome
    statement_id, tenant_id = found
    with for_tenant(tenant_id):
        outcome = _apply(kind, obj, created, event_id, statement_id, tenant_id)
        _finish(event_id, outcome)
        db.session.commit()
    return outcome


def _finish(event_id: str, outcome: str) -> None:
    db.session.execute(update(StripeEvent).where(StripeEvent.id == event_id)
                       .values(outcome=outcome, applied_at=utcnow() if outcome == "applied" else None))


def _payment_intent_of(invoice: dict[str, Any]) -> str | None:
    """The payment intent that paid an invoice: ``payments`` in today's API (when included), else the old field."""
    for row in ((invoice.get("payments") or {}).get("data") or []):
        payment = row.get("payment") or {}
        if payment.get("payment_intent"):
            return str(payment["payment_intent"])
    intent = invoice.get("payment_intent")
    return str(intent) if isinstance(intent, str) else None


def _statement_of(kind: str, obj: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(statement id, tenant id) the event is about, read with every tenant bound for these lookups.

    An invoice event names its invoice. A refund or dispute names the payment intent: known once a
    statement has met it, else asked of Stripe (``gateway.invoice_paid_by``), with no transaction left open
    while Stripe answers; its errors are the caller's to handle.
    """
    if kind.startswith("invoice."):
        return _first_statement(_invoice_wheres(str(obj.get("id")), obj.get("metadata") or {}))
    intent = obj.get("payment_intent") if isinstance(obj.get("payment_intent"), str) else None
    wheres = []
    if isinstance(obj.get("invoice"), str):  # a charge, in API versions that still name its invoice
        wheres.append(Statement.stripe_invoice_id == obj["invoice"])
    if intent:
        wheres.append(Statement.stripe_payment_intent_id == intent)
    found = _first_statement(wheres)
    if found is None and intent:
        db.session.rollback()
        paid = gateway.invoice_paid_by(intent)
        if paid is not None:
            found = _first_statement(_invoice_wheres(paid.id, paid.metadata))
    return found


def _invoice_wheres(invoice_id: str, metadata: dict[str, Any]) -> list:
    """Ways to find the statement of a Stripe invoice: its id, or our own metadata on it (the job may have
    died after Stripe finalised the invoice, before we stored its id)."""
    wheres = [Statement.stripe_invoice_id == invoice_id]
    with contextlib.suppress(TypeError, ValueError):
        wheres.append((Statement.id == uuid.UUID(str(metadata.get("statement_id"))))
                      & (Statement.version == int(metadata.get("version"))))
    return wheres


def _first_statement(wheres: list) -> tuple[uuid.UUID, uuid.UUID] | None:
    with bound(all_tenants_scope()):
        for where in wheres:
            row = db.session.execute(select(Statement.id, Statement.tenant_id).where(where).limit(1)).first()
            if row is not None:
                return row.id, row.tenant_id
    return None


def _record_money(kind: str, obj: dict[str, Any], statement: Statement) -> int:
    """The payment or refund the event carries, once (unique by method and reference); returns the amount added."""
    if kind == "invoice.paid":
        amount, reference = int(obj.get("amount_paid") or 0), str(obj.get("id"))
    elif kind == "charge.refunded":
        charge = str(obj.get("id"))
        before = -int(db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.statement_id == statement.id, Payment.method == "stripe",
            Payment.reference.like(f"refund:{charge}:%"))) or 0)
        refunded = int(obj.get("amount_refunded") or 0)
        amount, reference = -(refunded - before), f"refund:{charge}:{refunded}"
        if amount >= 0:
            return 0  # an older partial refund, arriving after a newer one that already counts it
    else:
        return 0
    if amount == 0 or db.session.scalar(select(Payment.id).where(Payment.method == "stripe",
                                                                 Payment.reference == reference[:100])):
        return 0
    paid_on = datetime.fromtimestamp(int(obj.get("created") or 0) or int(utcnow().timestamp()), UTC)
    db.session.add(Payment(tenant_id=statement.tenant_id, statement_id=statement.id, amount=amount,
                           paid_on=today_in(tenant_zone(statement.tenant_id), paid_on), method="stripe",
                           reference=reference[:100]))
    db.session.flush()
    statement.paid = db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))
                                       .where(Payment.statement_id == statement.id))
    return amount


def _newer(statement: Statement, state: str, created: datetime) -> bool:
    """Whether an event of Stripe time ``created`` leading to ``state`` may set the statement's state."""
    if state == "failed" and statement.payment_state in FINAL:
        return False
    last = statement.stripe_event_at
    if last is None or created > last:
        return True
    return created == last and RANK.get(state, 0) >= RANK.get(statement.payment_state, 0)


def _apply(kind: str, obj: dict[str, Any], created: datetime, event_id: str, statement_id: uuid.UUID,
           tenant_id: uuid.UUID) -> str:
    statement = db.session.get(Statement, statement_id, with_for_update=True)
    tenant = db.session.get(Tenant, tenant_id)
    if kind.startswith("invoice.") and statement.stripe_invoice_id is None:
        statement.stripe_invoice_id = str(obj.get("id"))
        statement.stripe_invoice_url = obj.get("hosted_invoice_url")
    if statement.stripe_payment_intent_id is None:  # kept, so later refunds and disputes match without asking
        statement.stripe_payment_intent_id = (_payment_intent_of(obj) if kind == "invoice.paid"
                                              else obj.get("payment_intent") if isinstance(
                                                  obj.get("payment_intent"), str) else None)
    amount = _record_money(kind, obj, statement)
    state = STATE[kind]
    moved = _newer(statement, state, created)
    if moved:
        statement.payment_state = state
        statement.stripe_event_at = created
    if not moved and not amount:
        return "stale"
    audit.record(ACTION[kind], audit.SYSTEM, tenant_id=tenant_id, object_type="statement", object_id=statement.id,
                 data={"method": "stripe", "event": event_id, "object": str(obj.get("id")), "amount": amount,
                       "state": statement.payment_state, "state_changed": moved})
    dunning.notify_billing(tenant, NOTICE[kind])
    dunning.evaluate(tenant)  # a payment lifts a suspension; a failure may bring a reminder due
    return "applied"

"""What people do with an issued statement: the client approves or disputes it, the provider records payments.

An approval or a dispute binds to the SHA-256 of the PDF the person was shown (``documents.pdf_sha256``):
if the statement changed since (a correction supersedes it), the answer is refused with a sentence, never
applied to what they did not see. A dispute opens a task in the provider's admin queue. A payment (a bank
transfer staff saw arrive, possibly part of the amount) moves the payment state; every step is audited.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from portal.billing import dunning
from portal.billing.documents import pdf_sha256
from portal.billing.models import Payment, Statement
from portal.billing.render import minor_units
from portal.extensions import db
from portal.work import services as work
from tenants import audit
from tenants.models import Tenant, User
from tenants.zones import tenant_zone, today_in

MAX_REASON = 500


class AnswerError(work.WorkError):
    """The answer cannot be taken; ``errors`` says why, by field (each shown next to its field; 422)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def get_statement(statement_id: str, *, lock: bool = False) -> Statement:
    """One of the bound tenant's statements (another tenant's id is simply not found)."""
    try:
        sid = uuid.UUID(str(statement_id))
    except ValueError:
        raise NotFound() from None
    statement = db.session.get(Statement, sid, with_for_update=lock or None)
    if statement is None:
        raise NotFound()
    return statement


def _answerable(statement: Statement, seen_sha256: str | None) -> None:
    if statement.superseded_at is not None:
        raise work.Conflict(_("This statement was replaced by a corrected version: open the new one and answer "
                              "that."))
    if statement.approval != "pending":
        raise work.Conflict(_("This statement was answered already."))
    current = pdf_sha256(statement)
    if current is None:
        raise work.Conflict(_("The statement's PDF is still being prepared: try again in a minute."))
    if seen_sha256 != current:
        raise work.Conflict(_("The statement changed since you opened it: reload the page and check it again."))


def approve(actor: User, tenant: Tenant, statement_id: str, *, seen_sha256: str | None,
            ip: str | None = None) -> Statement:
    """The client agrees with exactly the statement they saw."""
    statement = get_statement(statement_id, lock=True)
    _answerable(statement, seen_sha256)
    statement.approval = "approved"
    audit.record("statement.approved", audit.Actor.of(actor), tenant_id=tenant.id, object_type="statement",
                 object_id=statement.id, ip=ip, data={"month": f"{statement.month:%Y-%m}",
                                                      "version": statement.version, "sha256": seen_sha256})
    db.session.commit()
    return statement


def dispute(actor: User, tenant: Tenant, statement_id: str, *, reason: str | None, seen_sha256: str | None,
            ip: str | None = None) -> Statement:
    """The client does not agree: with a reason, which opens a task for the provider to answer."""
    reason = (reason or "").strip()
    if not reason:
        raise AnswerError({"reason": _("Say what is wrong with the statement, so that we can correct it.")})
    if len(reason) > MAX_REASON:
        raise AnswerError({"reason": _("Keep the reason to %(n)d characters.", n=MAX_REASON)})
    statement = get_statement(statement_id, lock=True)
    _answerable(statement, seen_sha256)
    statement.approval = "disputed"
    statement.payment_state = "disputed" if statement.paid == 0 else statement.payment_state
    task = work.create_task(actor, tenant, service_line_key="admin", priority=2,
                            title=_("Statement %(month)s disputed", month=f"{statement.month:%Y-%m}"),
                            description=reason)
    audit.record("statement.disputed", audit.Actor.of(actor), tenant_id=tenant.id, object_type="statement",
                 object_id=statement.id, ip=ip, data={"month": f"{statement.month:%Y-%m}", "task": str(task.id),
                                                      "version": statement.version, "sha256": seen_sha256})
    db.session.commit()
    return statement


def parse_amount(raw: str | None, currency: str) -> int:
    """An amount typed in the currency's major unit ("1.200.000", "1,200,000", "199.50") in its minor unit."""
    text = (raw or "").strip().replace(" ", "").replace("\u00a0", "")
    digits = minor_units(currency)
    if digits == 0:
        text = text.replace(".", "").replace(",", "")  # VND has no fraction: separators group thousands
    elif "." in text:
        text = text.replace(",", "")  # 1,200.50
    elif text.count(",") == 1 and len(text.rsplit(",", 1)[1]) <= digits:
        text = text.replace(",", ".")  # 1200,50
    else:
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AnswerError({"amount": _("Give the amount as a number, for example %(example)s.",
                                       example="1.200.000" if digits == 0 else "199.50")}) from None
    minor = value * (10 ** digits)
    if minor != minor.to_integral_value() or minor <= 0:
        raise AnswerError({"amount": _("Give an amount above zero, with at most %(n)d decimals.", n=digits)})
    return int(minor)


def record_payment(actor: User, tenant: Tenant, statement_id: str, *, amount: str | None, paid_on: str | None,
                   reference: str | None, ip: str | None = None) -> Payment:
    """A bank transfer that arrived for the statement (all of what is due, or part of it)."""
    statement = get_statement(statement_id, lock=True)
    errors: dict[str, str] = {}
    try:
        value = parse_amount(amount, statement.currency)
    except AnswerError as exc:
        errors.update(exc.errors)
        value = 0
    try:
        day = date.fromisoformat((paid_on or "").strip())
        if day > today_in(tenant_zone(tenant.id)):
            errors["paid_on"] = _("That day is in the future: give the day the money arrived.")
    except ValueError:
        errors["paid_on"] = _("Give the day the money arrived as YYYY-MM-DD.")
    reference = (reference or "").strip()
    if not reference or len(reference) > 100:
        errors["reference"] = _("Give the bank's reference of the transfer (at most 100 characters).")
    elif db.session.scalar(select(Payment.id).where(Payment.method == "transfer", Payment.reference == reference)):
        errors["reference"] = _("A payment with this reference is recorded already.")
    if value and value > statement.due:
        errors["amount"] = _("That is more than is due on this statement.")
    if errors:
        raise AnswerError(errors)
    payment = Payment(tenant_id=tenant.id, statement_id=statement.id, amount=value, paid_on=day, method="transfer",
                      reference=reference, recorded_by_id=actor.id)
    db.session.add(payment)
    db.session.flush()
    statement.paid = db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))
                                       .where(Payment.statement_id == statement.id))
    statement.payment_state = "paid" if statement.paid >= statement.total else "partly_paid"
    audit.record("statement.paid", audit.Actor.of(actor), tenant_id=tenant.id, object_type="statement",
                 object_id=statement.id, ip=ip, data={"amount": value, "paid_on": day.isoformat(),
                                                      "state": statement.payment_state})
    dunning.evaluate(tenant)  # paid up: reminders stop, and uploads suspended for non-payment resume at once
    db.session.commit()
    return payment

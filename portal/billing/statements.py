"""Issuing a tenant's monthly statement, once, and correcting it with a new version.

``issue`` runs with the tenant bound (the job binds it like a request does). It takes a transaction-level
advisory lock on (tenant, month), so two runs at once serialise, and does nothing when a version of the
month is already in force: a second run, or a run again after a crash half-way (the transaction rolled
back, nothing was left), leaves exactly one statement per tenant per month. The partial unique index
``uq_statements_current`` holds the same rule in the database.

``run_month`` is the run over every active tenant (the scheduler's daily job per tenant does one tenant);
each tenant's outcome goes to the run report (``StatementRun``), a failure with its reason, and never
stops the others.
"""

from __future__ import annotations

import calendar
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from portal.billing import meters, pricing, sections, stripe_gateway
from portal.billing.models import PlanTaxRate, Statement, StatementLine, StatementRun, TenantPlan
from portal.extensions import db
from portal.work.kpi import Month
from tenants import audit
from tenants.context import for_tenant
from tenants.models import Membership, Tenant, User, utcnow
from tenants.policy import APPROVER_ROLES
from tenants.zones import tenant_zone, today_in
from workers import enqueue

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone, typed in a bank app


class NoPlan(ValueError):
    """The tenant has no plan for the month: nothing to bill (the run report says so)."""


@dataclass(frozen=True)
class Outcome:
    tenant_id: uuid.UUID
    state: str  # issued | exists | skipped | failed
    statement_id: uuid.UUID | None = None
    error: str | None = None


def _terms(tp: TenantPlan) -> pricing.Terms:
    plan = tp.plan
    return pricing.Terms(plan.name, plan.currency, plan.monthly_fee,
                         tuple(pricing.Price(p.meter, p.included, p.unit_price) for p in plan.prices))


def plan_periods(month: Month) -> tuple[list[pricing.Period], TenantPlan]:
    """The bound tenant's plans over ``month``, each with its days, and the plan in force on its last day."""
    rows = list(db.session.scalars(select(TenantPlan).where(TenantPlan.starts_on < month.end)
                                   .order_by(TenantPlan.starts_on)))
    month_days = calendar.monthrange(month.year, month.month)[1]
    # The plan in force on the first, then every plan starting inside the month.
    current = [r for r in rows if r.starts_on <= month.start][-1:]
    inside = [r for r in rows if r.starts_on > month.start]
    spans = current + inside
    if not spans:
        raise NoPlan(month.key)
    periods = []
    for i, row in enumerate(spans):
        begins = max(row.starts_on, month.start)
        ends = spans[i + 1].starts_on if i + 1 < len(spans) else month.end
        periods.append(pricing.Period(_terms(row), (ends - begins).days, month_days))
    return periods, spans[-1]


def tax_rate_bp(plan_id: uuid.UUID, on: date) -> int:
    """The plan's tax rate in force on ``on`` (the latest that started on or before it), or the default."""
    rate = db.session.scalar(select(PlanTaxRate.rate_bp).where(PlanTaxRate.plan_id == plan_id,
                                                               PlanTaxRate.effective_from <= on)
                             .order_by(PlanTaxRate.effective_from.desc()).limit(1))
    return rate if rate is not None else current_app.config["BILLING_DEFAULT_TAX_BP"]


def _reference(month: Month) -> str:
    return f"PT{month.year % 100:02d}{month.month:02d}" + "".join(secrets.choice(REFERENCE_ALPHABET)
                                                                  for _ in range(6))


def _lock(tenant_id: uuid.UUID, month: Month) -> None:
    db.session.execute(text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                       {"k": f"statement:{tenant_id}:{month.key}"})


def current(month: Month) -> Statement | None:
    """The bound tenant's statement of ``month`` in force (its latest version), if one was issued."""
    return db.session.scalar(select(Statement).where(Statement.month == month.start,
                                                     Statement.superseded_at.is_(None)))


def _build(tenant: Tenant, month: Month, version: int, reason: str | None) -> Statement:
    periods, last = plan_periods(month)
    last_day = month.end - timedelta(days=1)
    window = meters.Window.of(tenant, month)
    priced = pricing.price_month(periods, window.usage,
                                 tax_rate_bp=tax_rate_bp(last.plan_id, last_day), discount_bp=last.discount_bp)
    issued = utcnow()
    statement = Statement(
        tenant_id=tenant.id, month=month.start, version=version, reference=_reference(month),
        currency=priced.currency, locale=tenant.locale, plan_name=last.plan.name, subtotal=priced.subtotal,
        discount=priced.discount, tax_rate_bp=priced.tax_rate_bp, tax=priced.tax, total=priced.total, paid=0,
        issued_at=issued, due_on=today_in(tenant_zone(tenant.id), issued) + timedelta(days=last.plan.payment_days),
        reason=reason, sections=sections.build_all(window))
    statement.lines = [StatementLine(tenant_id=tenant.id, position=i, kind=line.kind, meter=line.meter,
                                     label=line.label, quantity=line.quantity.quantize(pricing.Decimal("0.01")),
                                     included=line.included, unit_price=line.unit_price, amount=line.amount)
                       for i, line in enumerate(priced.lines)]
    db.session.add(statement)
    db.session.flush()
    return statement


def issue(tenant_id: uuid.UUID, month: Month, *, actor: User | None = None) -> Outcome:
    """Issue the bound tenant's statement of ``month`` unless one is in force; commits."""
    tenant = db.session.get(Tenant, tenant_id)
    _lock(tenant_id, month)
    existing = current(month)
    if existing is not None:
        db.session.rollback()
        return Outcome(tenant_id, "exists", existing.id)
    try:
        statement = _build(tenant, month, 1, None)
    except (NoPlan, pricing.PricingError) as exc:
        db.session.rollback()
        reason = "no plan" if isinstance(exc, NoPlan) else str(exc)
        _report(tenant_id, month, "skipped", reason)
        db.session.commit()
        return Outcome(tenant_id, "skipped", error=reason)
    audit.record("statement.issued", audit.Actor.of(actor) if actor else audit.SYSTEM, tenant_id=tenant_id,
                 object_type="statement", object_id=statement.id,
                 data={"month": month.key, "version": 1, "total": statement.total, "currency": statement.currency})
    _report(tenant_id, month, "issued", None)
    enqueue("billing.statement_pdf", statement.id, tenant_id=tenant_id)
    if stripe_gateway.enabled():
        enqueue("billing.stripe_invoice", statement.id, tenant_id=tenant_id)
    _tell_the_client(tenant_id, "statement_issued")
    db.session.commit()
    return Outcome(tenant_id, "issued", statement.id)


def reissue(actor: User, tenant: Tenant, month: Month, *, reason: str, ip: str | None = None) -> Statement:
    """Correct the month's statement: a new version from today's data, with ``reason``, beside the old one."""
    _lock(tenant.id, month)
    old = current(month)
    if old is None:
        raise NoPlan(month.key)
    old.superseded_at = utcnow()
    db.session.flush()
    statement = _build(tenant, month, old.version + 1, reason)
    audit.record("statement.reissued", audit.Actor.of(actor), tenant_id=tenant.id, object_type="statement",
                 object_id=statement.id, ip=ip,
                 data={"month": month.key, "version": statement.version, "replaces": str(old.id),
                       "total": statement.total, "reason": reason})
    enqueue("billing.statement_pdf", statement.id, tenant_id=tenant.id)
    if stripe_gateway.enabled():
        enqueue("billing.stripe_invoice", statement.id, tenant_id=tenant.id)
    _tell_the_client(tenant.id, "statement_corrected")
    db.session.commit()
    return statement


def _tell_the_client(tenant_id: uuid.UUID, kind: str) -> None:
    """The client's admins and approvers: in the portal, and by e-mail with a link (never the amounts)."""
    from portal.work.notify import notify_people

    people = db.session.scalars(select(Membership.user_id).where(
        Membership.tenant_id == tenant_id, Membership.role.in_([r.value for r in APPROVER_ROLES])))
    notify_people(tenant_id, kind, people)


def _report(tenant_id: uuid.UUID, month: Month, state: str, error: str | None) -> None:
    now = utcnow()
    db.session.execute(
        insert(StatementRun).values(tenant_id=tenant_id, month=month.start, state=state, error=error, updated_at=now)
        .on_conflict_do_update(index_elements=[StatementRun.month, StatementRun.tenant_id],
                               set_={"state": state, "error": error, "updated_at": now,
                                     "attempts": StatementRun.attempts + 1}))


def last_month(tenant: Tenant) -> Month:
    """The month that ended last on the tenant's own clock."""
    return Month.of(today_in(tenant_zone(tenant.id))).previous()


def run_for_tenant(tenant_id: uuid.UUID, month: Month | None = None) -> Outcome:
    """One tenant's run (the scheduler's daily job, the CLI): issue, or record why it could not."""
    with for_tenant(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        month = month or last_month(tenant)
        try:
            return issue(tenant_id, month)
        except Exception as exc:  # noqa: BLE001 - one tenant's failure is reported, the run goes on
            db.session.rollback()
            current_app.logger.exception("statement of %s for %s failed", tenant_id, month.key)
            error = f"{type(exc).__name__}: {exc}"[:500]
            _report(tenant_id, month, "failed", error)
            db.session.commit()
            return Outcome(tenant_id, "failed", error=error)


def run_month(month: Month, tenant_slug: str | None = None) -> list[Outcome]:
    """Issue ``month``'s statements for every active tenant (or one), each in its own transaction."""
    query = select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.slug)
    if tenant_slug:
        query = query.where(Tenant.slug == tenant_slug)
    ids = list(db.session.scalars(query))
    db.session.rollback()
    return [run_for_tenant(tenant_id, month) for tenant_id in ids]

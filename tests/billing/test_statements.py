"""Statements: pricing worked out by hand, usage counted from real rows, issued exactly once.

Every expected amount below is computed by hand from the rules in ``portal/billing/pricing.py``
(half up to the minor unit, once per line, once for the discount, once for the tax), not by the code.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from portal.billing import pricing, sections, statements
from portal.billing.models import Plan, PlanPrice, PlanTaxRate, Statement, StatementRun, TenantPlan
from portal.documents import services as documents
from portal.extensions import db
from portal.work import services as work
from portal.work.kpi import Month
from portal.work.models import Task, TimeEntry
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import make_person, make_tenant, unique

VND_PLAN = pricing.Terms("Standard", "VND", 2_000_000, (
    pricing.Price("documents_received", Decimal(50), 5_000),
    pricing.Price("tasks_done:bookkeeping", Decimal(10), 100_000),
    pricing.Price("hours:payroll", Decimal(0), 300_000),
))


# --- pricing, by hand ------------------------------------------------------------------------------------

def test_a_vnd_month_priced_by_hand():
    usage = {"documents_received": Decimal(73), "tasks_done:bookkeeping": Decimal(12),
             "hours:payroll": Decimal(150) / 60, "tasks_done:payroll": Decimal(4)}  # payroll tasks: not priced
    priced = pricing.price_month([pricing.Period(VND_PLAN, 30, 30)], usage, tax_rate_bp=1000)
    assert [(line.kind, line.meter, line.amount) for line in priced.lines] == [
        ("fee", None, 2_000_000),
        ("usage", "documents_received", 115_000),  # (73 - 50) × 5,000
        ("usage", "tasks_done:bookkeeping", 200_000),  # (12 - 10) × 100,000
        ("usage", "hours:payroll", 750_000),  # 2.5 h × 300,000
    ]
    assert (priced.subtotal, priced.discount, priced.tax, priced.total) == (3_065_000, 0, 306_500, 3_371_500)


def test_pro_rata_by_days_rounds_each_period_half_up():
    cheaper = pricing.Terms("Start", "VND", 2_000_000)
    bigger = pricing.Terms("Growth", "VND", 3_000_000)
    # November has 30 days: 20 on Start (from the 1st), 10 on Growth (from the 21st).
    priced = pricing.price_month([pricing.Period(cheaper, 20, 30), pricing.Period(bigger, 10, 30)], {},
                                 tax_rate_bp=1000)
    assert [line.amount for line in priced.lines] == [1_333_333, 1_000_000]  # 1,333,333.33 → 1,333,333
    assert priced.tax == 233_333  # 10 % of 2,333,333 = 233,333.3 → 233,333
    assert priced.total == 2_566_666


def test_a_usd_month_in_cents_with_a_discount():
    plan = pricing.Terms("Hours", "USD", 19_900, (pricing.Price("hours:bookkeeping", Decimal(2), 4_550),))
    usage = {"hours:bookkeeping": Decimal(200) / 60}  # 3 h 20 min: 1 h 20 min above the 2 h included
    priced = pricing.price_month([pricing.Period(plan, 31, 31)], usage, tax_rate_bp=1000, discount_bp=500)
    assert [line.amount for line in priced.lines] == [19_900, 6_067]  # 4/3 h × $45.50 = $60.6666… → $60.67
    assert priced.subtotal == 25_967
    assert priced.discount == 1_298  # 5 % of $259.67 = $12.9835 → $12.98
    assert priced.tax == 2_467  # 10 % of $246.69 = $24.669 → $24.67
    assert priced.total == 27_136  # $271.36


def test_half_a_dong_goes_up_and_plans_of_two_currencies_are_refused():
    odd = pricing.Terms("Odd", "VND", 15)
    assert pricing.price_month([pricing.Period(odd, 1, 2)], {}, tax_rate_bp=0).subtotal == 8  # 7.5 → 8
    with pytest.raises(pricing.PricingError, match="one currency"):
        pricing.price_month([pricing.Period(odd, 1, 2), pricing.Period(pricing.Terms("U", "USD", 1), 1, 2)], {},
                            tax_rate_bp=0)


# --- issuing from real rows ---------------------------------------------------------------------------------

def _plan(**kw) -> Plan:
    plan = Plan(key=unique("plan"), name=kw.pop("name", "Standard"), currency=kw.pop("currency", "VND"),
                monthly_fee=kw.pop("fee", 2_000_000), payment_days=15)
    plan.prices = [PlanPrice(meter=m, included=Decimal(i), unit_price=p) for m, i, p in kw.pop("prices", ())]
    db.session.add(plan)
    db.session.flush()
    return plan


@pytest.fixture
def billed(app):
    """A tenant on the Standard plan since last year, with a manager and a member; this month on its clock."""
    with app.app_context():
        tenant = make_tenant()
        manager, member = make_person(Role.MANAGER), make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, tenant, db.session.get(User, manager.id))
        plan = _plan(prices=[("documents_received", 1, 5_000), ("tasks_done:bookkeeping", 0, 100_000),
                             ("hours:bookkeeping", 1, 300_000)])
        db.session.add(PlanTaxRate(plan_id=plan.id, rate_bp=800, effective_from=date(2025, 1, 1)))
        with for_tenant(tenant.id):
            db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=plan.id, starts_on=date(2025, 1, 1)))
            db.session.commit()
        month = statements.last_month(tenant).next()  # this month, on the tenant's clock
        return tenant.id, manager, member, month


def _usage(app, tenant_id, manager, member) -> None:
    """3 documents received, 2 bookkeeping tasks done, 90 billable minutes (and 30 not billable): now."""
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        with bound(Scope(user_id=member.id, tenant_ids=frozenset({tenant_id}), role=Role.CLIENT_MEMBER)):
            user = db.session.get(User, member.id)
            for seed in (1, 2, 3):
                documents.upload(user, tenant, [samples.pdf(seed + 700)], filename=f"invoice-{seed}.pdf",
                                 target=documents.upload_target(user, category="invoice"))
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant_id}), role=Role.MANAGER)):
            boss = db.session.get(User, manager.id)
            ids = [work.create_task(boss, tenant, title=f"Post invoices {n}", service_line_key="bookkeeping").id
                   for n in (1, 2, 3)]
            now = datetime.now(UTC)
            db.session.execute(update(Task).where(Task.id.in_(ids[:2])).values(state="done", done_at=now))
            for minutes, billable in ((90, True), (30, False)):
                db.session.add(TimeEntry(tenant_id=tenant_id, task_id=ids[0], user_id=manager.id, billable=billable,
                                         started_at=now - timedelta(minutes=minutes), ended_at=now, minutes=minutes))
            db.session.commit()


def test_the_month_is_billed_from_what_happened(app, billed):
    tenant_id, manager, member, month = billed
    _usage(app, tenant_id, manager, member)
    outcome = _in_context(app, tenant_id, month)
    assert outcome.state == "issued"
    with app.app_context(), for_tenant(tenant_id):
        statement = db.session.get(Statement, outcome.statement_id)
        assert [(line.meter, line.quantity, line.amount) for line in statement.lines] == [
            (None, Decimal(1), 2_000_000),
            ("documents_received", Decimal(3), 10_000),  # (3 - 1) × 5,000
            ("hours:bookkeeping", Decimal("1.50"), 150_000),  # (1.5 - 1) × 300,000; the 30 minutes not billable
            ("tasks_done:bookkeeping", Decimal(2), 200_000),
        ]
        assert (statement.subtotal, statement.tax_rate_bp, statement.tax, statement.total) == (
            2_360_000, 800, 188_800, 2_548_800)
        assert statement.currency == "VND" and statement.due == 2_548_800 and statement.version == 1
        work_section = next(s["data"] for s in statement.sections if s["key"] == "work")
        assert work_section["documents_received"] == 3 and work_section["lines"]["bookkeeping"]["tasks_done"] == "2.00"
        waiting = next(s["data"] for s in statement.sections if s["key"] == "waiting")
        assert waiting == {"questions": 0, "documents": 0, "approvals": 0}
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "statement.issued", AuditEvent.object_id == str(statement.id))) == 1


def test_a_second_run_and_two_runs_at_once_leave_one_statement(app, billed):
    tenant_id, _, _, month = billed
    outcomes: list = []
    threads = [threading.Thread(target=lambda: outcomes.append(_in_context(app, tenant_id, month))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.state for o in outcomes) == ["exists", "exists", "issued"]
    assert _in_context(app, tenant_id, month).state == "exists"
    with app.app_context(), for_tenant(tenant_id):
        assert db.session.scalar(select(func.count()).select_from(Statement)) == 1


def _in_context(app, tenant_id: uuid.UUID, month: Month):
    with app.app_context():
        return statements.run_for_tenant(tenant_id, month)


def test_a_run_that_crashes_half_way_leaves_nothing_and_the_next_run_issues_once(app, billed):
    tenant_id, _, _, month = billed

    def crash(window):  # a section whose builder dies after the lines were priced: stands for a crash
        raise RuntimeError("the worker died here")

    sections.register("crash", 99, crash)
    try:
        with app.app_context():
            outcome = statements.run_for_tenant(tenant_id, month)
    finally:
        del sections.SECTIONS["crash"]
    assert outcome.state == "failed" and "the worker died here" in outcome.error
    with app.app_context(), for_tenant(tenant_id):
        assert db.session.scalar(select(func.count()).select_from(Statement)) == 0
        run = db.session.scalar(select(StatementRun))
        assert (run.state, run.attempts) == ("failed", 1)
    with app.app_context():
        assert statements.run_for_tenant(tenant_id, month).state == "issued"
    with app.app_context(), for_tenant(tenant_id):
        assert db.session.scalar(select(func.count()).select_from(Statement)) == 1
        assert db.session.scalar(select(StatementRun.state)) == "issued"


def test_a_tenant_without_a_plan_is_skipped_and_said_so(app):
    with app.app_context():
        tenant = make_tenant()
        month = statements.last_month(tenant)
        outcome = statements.run_for_tenant(tenant.id, month)
    assert (outcome.state, outcome.error) == ("skipped", "no plan")


def test_a_correction_is_a_new_version_beside_the_old_one(app, billed):
    tenant_id, manager, member, month = billed
    with app.app_context():
        first = statements.run_for_tenant(tenant_id, month).statement_id
    _usage(app, tenant_id, manager, member)  # work that came in after the statement was issued
    with app.app_context(), bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant_id}), role=Role.MANAGER)):
        second = statements.reissue(db.session.get(User, manager.id), db.session.get(Tenant, tenant_id), month,
                                    reason="Two invoices were posted late")
        old = db.session.get(Statement, first)
        assert old.superseded_at is not None and old.total == 2_160_000  # the fee, 8 % tax: unchanged
        assert (second.version, second.reason) == (2, "Two invoices were posted late")
        assert second.total > old.total and statements.current(month).id == second.id


def test_a_plan_change_never_rewrites_an_issued_statement(app, billed):
    tenant_id, _, _, month = billed
    with app.app_context():
        statement_id = statements.run_for_tenant(tenant_id, month).statement_id
        with for_tenant(tenant_id):
            plan_id = db.session.scalar(select(TenantPlan.plan_id))
        db.session.execute(update(Plan).where(Plan.id == plan_id).values(monthly_fee=9_000_000))
        db.session.execute(update(PlanPrice).where(PlanPrice.plan_id == plan_id).values(unit_price=1))
        db.session.commit()
    with app.app_context(), for_tenant(tenant_id):
        statement = db.session.get(Statement, statement_id)
        assert statement.total == 2_160_000 and statement.lines[0].amount == 2_000_000


def test_the_command_runs_a_month_for_one_tenant(app, billed):
    tenant_id, _, _, month = billed
    with app.app_context():
        slug = db.session.get(Tenant, tenant_id).slug
    runner = app.test_cli_runner()
    result = runner.invoke(args=["statements", "run", "--month", month.key, "--tenant", slug])
    assert result.exit_code == 0 and f"issued   {tenant_id}" in result.output
    again = runner.invoke(args=["statements", "run", "--month", month.key, "--tenant", slug])
    assert again.exit_code == 0 and f"exists   {tenant_id}" in again.output
    bad = runner.invoke(args=["statements", "run", "--month", "November"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output

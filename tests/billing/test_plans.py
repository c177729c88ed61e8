"""Plans and a client's plan: money as people type it, when a change applies, what is refused, who may.

Expected amounts are worked out by hand from the rules in ``portal/billing/pricing.py`` (docs/billing.md):
half up to the minor unit, once per fee period, once for the discount, once for the tax.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select

from portal.billing import plans, statements
from portal.billing.models import Plan, Statement, TenantPlan
from portal.extensions import db
from portal.work.kpi import Month
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person, make_tenant, unique

# 2026-11-30 20:00 UTC is already 1 December 03:00 in Ho Chi Minh City.
EVE_OF_DECEMBER_UTC = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def _admin() -> User:
    return db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)


def _plan(admin: User, *, fee: str = "2.000.000", currency: str = "VND", name: str = "Standard",
          locale: str = "vi") -> Plan:
    return plans.create_plan(admin, key=unique("plan"), name=name, currency=currency, monthly_fee=fee,
                             payment_days="15", locale=locale)


def _as_admin(admin: User, tenant: Tenant):  # noqa: ANN202
    return bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN))


# --- money as people type it ---------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "currency", "locale", "minor"), [
    ("2.000.000", "VND", "vi", 2_000_000),
    ("2,000,000", "VND", "en", 2_000_000),
    ("2000000", "VND", "vi", 2_000_000),
    ("2000000", "VND", "en", 2_000_000),
    ("5.000", "VND", "vi", 5_000),  # in Vietnamese the dot groups thousands
    ("199.50", "USD", "en", 19_950),
    ("199,50", "USD", "vi", 19_950),
    ("1,234.5", "USD", "en", 123_450),
    ("1.234,05", "USD", "vi", 123_405),
    ("0", "USD", "en", 0),
    (" 45 ", "USD", "en", 4_500),
])
def test_money_typed_in_either_language_is_stored_exactly_in_the_minor_unit(ctx, typed, currency, locale, minor):
    assert plans.parse_money(typed, currency, locale) == minor


@pytest.mark.parametrize(("typed", "currency", "locale"), [
    ("199.505", "USD", "en"),  # three decimals: the dollar has two
    ("199,505", "USD", "vi"),
    ("2.000", "VND", "en"),  # two đồng and three zero decimals, or two thousand? The đồng has no decimals.
    ("2,5", "VND", "vi"),
    ("199.50", "USD", "vi"),  # an English amount typed in Vietnamese: misplaced separators, never guessed
    ("2.000.000", "VND", "en"),
    ("-5", "VND", "en"),
    ("1e5", "USD", "en"),
    ("NaN", "USD", "en"),
    ("", "VND", "vi"),
    ("two million", "VND", "en"),
    ("١٢", "VND", "en"),  # digits a person does not type here
])
def test_bad_money_is_refused_with_what_to_type(ctx, typed, currency, locale):
    with pytest.raises(plans.PlanError) as refused:
        plans.parse_money(typed, currency, locale, field="monthly_fee")
    assert set(refused.value.errors) == {"monthly_fee"}
    example = "2.000.000" if (currency, locale) == ("VND", "vi") else "2,000,000" if currency == "VND" else \
        "199,50" if locale == "vi" else "199.50"
    assert example in refused.value.errors["monthly_fee"]


def test_percentages_to_basis_points(ctx):
    assert plans.parse_percent_bp("10", "en") == 1_000
    assert plans.parse_percent_bp("8,5", "vi") == 850
    assert plans.parse_percent_bp("8.25 %", "en") == 825
    assert plans.parse_percent_bp("", "en", empty=0) == 0
    for bad in ("8.255", "101", "-1", "ten"):
        with pytest.raises(plans.PlanError):
            plans.parse_percent_bp(bad, "en")


def test_amounts_shown_back_in_a_form_read_back_the_same(ctx):
    assert plans.money_text(2_000_000, "VND", "vi") == "2.000.000"
    assert plans.money_text(19_950, "USD", "en") == "199.50"
    assert plans.money_text(19_950, "USD", "vi") == "199,50"
    for amount, currency in ((2_000_000, "VND"), (19_950, "USD"), (5, "USD")):
        for locale in ("en", "vi"):
            assert plans.parse_money(plans.money_text(amount, currency, locale), currency, locale) == amount


# --- when a change applies --------------------------------------------------------------------------------

def test_a_change_applies_from_the_first_of_next_month_on_the_tenants_clock(ctx):
    admin = _admin()
    plan = _plan(admin)
    saigon = make_tenant()  # Asia/Ho_Chi_Minh: already 1 December
    london = make_tenant(timezone="UTC")  # still 30 November
    with time_machine.travel(EVE_OF_DECEMBER_UTC, tick=False):
        for tenant, expected in ((saigon, date(2027, 1, 1)), (london, date(2026, 12, 1))):
            with _as_admin(admin, tenant):
                row = plans.set_tenant_plan(admin, tenant, plan.key, locale="en")
                assert (row.starts_on, row.pro_rata) == (expected, False)
                state = plans.plan_state(tenant)
                assert state.current is None and state.next_change.starts_on == expected


def test_pro_rata_from_a_day_splits_the_month_and_the_statement_says_so(ctx):
    """November 2026 has 30 days: Start (2,000,000 đ) for the 1st to the 20th, Growth (3,100,000 đ, 5 % off,
    8 % tax) from the 21st. Worked out by hand:

    Start  2,000,000 × 20/30 = 1,333,333.33 → 1,333,333
    Growth 3,100,000 × 10/30 = 1,033,333.33 → 1,033,333
    subtotal 2,366,666; discount 5 % = 118,333.3 → 118,333; tax 8 % of 2,248,333 = 179,866.64 → 179,867;
    total 2,366,666 − 118,333 + 179,867 = 2,428,200.
    """
    admin = _admin()
    start = _plan(admin, fee="2.000.000", name="Start")
    growth = _plan(admin, fee="3,100,000", name="Growth", locale="en")
    tenant = make_tenant()
    with for_tenant(tenant.id):
        db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=start.id, starts_on=date(2025, 1, 1)))
        db.session.commit()
    with time_machine.travel(datetime(2026, 11, 10, 3, 0, tzinfo=UTC), tick=False):
        plans.add_tax_rate(admin, growth.key, percent="8", effective_from=date(2026, 11, 10), locale="en")
        with _as_admin(admin, tenant):
            row = plans.set_tenant_plan(admin, tenant, growth.key, starts=date(2026, 11, 21), pro_rata=True,
                                        discount_percent="5", locale="en")
            assert (row.starts_on, row.pro_rata, row.discount_bp) == (date(2026, 11, 21), True, 500)
    with time_machine.travel(datetime(2026, 12, 2, 3, 0, tzinfo=UTC), tick=False):
        outcome = statements.run_for_tenant(tenant.id, Month(2026, 11))
    assert outcome.state == "issued", outcome.error
    with for_tenant(tenant.id):
        statement = db.session.get(Statement, outcome.statement_id)
        assert [(line.kind, line.label.get("plan"), line.amount) for line in statement.lines] == [
            ("fee", "Start", 1_333_333), ("fee", "Growth", 1_033_333)]
        assert (statement.subtotal, statement.discount, statement.tax_rate_bp, statement.tax, statement.total) == (
            2_366_666, 118_333, 800, 179_867, 2_428_200)
        assert statement.plan_name == "Growth" and statement.currency == "VND"


def test_one_plan_per_start_day_and_a_new_choice_replaces_what_was_scheduled(ctx):
    admin = _admin()
    first, second, third = _plan(admin, name="First"), _plan(admin, name="Second"), _plan(admin, name="Third")
    tenant = make_tenant(timezone="UTC")
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False), _as_admin(admin, tenant):
        plans.set_tenant_plan(admin, tenant, first.key, locale="en")  # from 1 December
        plans.set_tenant_plan(admin, tenant, second.key, locale="en")  # the same day: replaces it
        rows = list(db.session.scalars(select(TenantPlan).order_by(TenantPlan.starts_on)))
        assert [(r.starts_on, r.plan.name) for r in rows] == [(date(2026, 12, 1), "Second")]
        plans.set_tenant_plan(admin, tenant, third.key, starts=date(2026, 11, 25), pro_rata=True, locale="en")
        rows = list(db.session.scalars(select(TenantPlan).order_by(TenantPlan.starts_on)))
        assert [(r.starts_on, r.plan.name) for r in rows] == [(date(2026, 11, 25), "Third")]


# --- refused ---------------------------------------------------------------------------------------------

def _refused(fn, *args, **kwargs) -> dict[str, str]:  # noqa: ANN001
    with pytest.raises(plans.PlanError) as refused:
        fn(*args, **kwargs)
    db.session.rollback()
    return refused.value.errors


def test_a_past_day_a_billed_month_and_other_refusals_change_nothing(ctx):
    admin = _admin()
    plan, other = _plan(admin), _plan(admin, name="Other")
    dollars = _plan(admin, currency="USD", fee="199.50", name="Dollars", locale="en")
    tenant = make_tenant(timezone="UTC")
    with for_tenant(tenant.id):
        db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=plan.id, starts_on=date(2025, 1, 1)))
        db.session.commit()
    with time_machine.travel(datetime(2026, 12, 2, 12, 0, tzinfo=UTC), tick=False):
        assert statements.run_for_tenant(tenant.id, Month(2026, 12)).state == "issued"  # December billed early
        with _as_admin(admin, tenant):
            past = _refused(plans.set_tenant_plan, admin, tenant, other.key, starts=date(2026, 12, 1),
                            pro_rata=True, locale="en")
            assert list(past) == ["starts_on"] and "past" in past["starts_on"]
            billed = _refused(plans.set_tenant_plan, admin, tenant, other.key, starts=date(2026, 12, 20),
                              pro_rata=True, locale="en")
            assert list(billed) == ["starts_on"] and "2026-12 is already billed" in billed["starts_on"]
            assert "2027-01-01" in billed["starts_on"]
            mid = _refused(plans.set_tenant_plan, admin, tenant, other.key, starts=date(2027, 1, 15), locale="en")
            assert "pro rata" in mid["starts_on"]
            several = _refused(plans.set_tenant_plan, admin, tenant, "no-such-plan", discount_percent="120",
                               locale="en")
            assert set(several) == {"plan", "discount_percent"}
            currency = _refused(plans.set_tenant_plan, admin, tenant, dollars.key, locale="en")
            assert "billed in VND" in currency["plan"]
            rows = list(db.session.scalars(select(TenantPlan)))
            assert [(r.plan_id, r.starts_on) for r in rows] == [(plan.id, date(2025, 1, 1))]
            # The first of next month is fine.
            assert plans.set_tenant_plan(admin, tenant, other.key, locale="en").starts_on == date(2027, 1, 1)


def test_the_currency_is_fixed_once_a_client_used_the_plan(ctx):
    admin = _admin()
    used, priced, fresh = _plan(admin, name="Used"), _plan(admin, name="Priced"), _plan(admin, name="Fresh")
    plans.set_price(admin, priced.key, meter="documents_received", included="50", unit_price="5.000", locale="vi")
    tenant = make_tenant()
    with _as_admin(admin, tenant):
        plans.set_tenant_plan(admin, tenant, used.key, locale="en")
    fields = {"name": "Renamed", "currency": "USD", "monthly_fee": "199.50", "payment_days": "30", "active": True,
              "locale": "en"}
    errors = _refused(plans.update_plan, admin, used.key, **fields)
    assert list(errors) == ["currency"] and "create a new plan in USD" in errors["currency"]
    errors = _refused(plans.update_plan, admin, priced.key, **fields)
    assert list(errors) == ["currency"] and "remove them first" in errors["currency"]
    changed = plans.update_plan(admin, fresh.key, **fields)
    assert (changed.currency, changed.monthly_fee, changed.payment_days, changed.name) == ("USD", 19_950, 30,
                                                                                           "Renamed")
    db.session.expire_all()
    assert db.session.get(Plan, used.id).currency == "VND" and db.session.get(Plan, used.id).name == "Used"


def test_every_bad_field_of_a_plan_is_named_at_once(ctx):
    admin = _admin()
    taken = _plan(admin)
    errors = _refused(plans.create_plan, admin, key=taken.key, name="", currency="VND", monthly_fee="2.000.000,5",
                      payment_days="365", locale="vi")
    assert set(errors) == {"key", "name", "monthly_fee", "payment_days"}
    errors = _refused(plans.set_price, admin, taken.key, meter="tasks_done:", included="1.5.5",
                      unit_price="100.000,5", locale="vi")
    assert set(errors) == {"meter", "included", "unit_price"}
    errors = _refused(plans.add_tax_rate, admin, taken.key, percent="8.5", effective_from="2020-01-01", locale="vi")
    assert set(errors) == {"percent", "effective_from"}  # "8.5" in Vietnamese is not eight and a half


# --- the pages --------------------------------------------------------------------------------------------

def _value_of(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page) or \
        re.search(rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', page)
    return html.unescape(match.group(1)) if match else ""


def _error_of(page: str, field: str) -> str:
    match = re.search(rf'<small class="error" id="{field}-error-1">([^<]*)</small>', page)
    return html.unescape(match.group(1)) if match else ""


def test_the_admin_adds_a_plan_prices_it_and_puts_a_client_on_it(app):
    with app.app_context():
        admin = make_person(Role.PROVIDER_ADMIN)
        tenant = make_tenant()
        slug, tenant_id = tenant.slug, tenant.id
    client = app.test_client()
    login(client, admin)
    token = csrf_token(client, "/provider/plans")
    empty = client.get("/provider/plans").get_data(as_text=True)
    assert 'data-testid="no-plans"' in empty or 'data-testid="plans"' in empty
    key = unique("std")
    # Refused: each error next to its field, what was typed kept (the admin reads English: "2.000.000,5" is bad).
    r = client.post("/provider/plans", data={"csrf_token": token, "key": key, "name": "Standard",
                                             "currency": "VND", "monthly_fee": "2.000.000,5", "payment_days": "abc"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "2,000,000" in _error_of(page, "monthly_fee") and _error_of(page, "payment_days")
    assert _error_of(page, "name") == "" and _error_of(page, "key") == ""
    assert _value_of(page, "monthly_fee") == "2.000.000,5" and _value_of(page, "key") == key
    r = client.post("/provider/plans", data={"csrf_token": token, "key": key, "name": "Standard",
                                             "currency": "VND", "monthly_fee": "2,000,000", "payment_days": "15",
                                             "active": "y"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/provider/plans/{key}")
    for meter, included, price in (("documents_received", "50", "5,000"), ("hours:bookkeeping", "1.5", "300,000")):
        r = client.post(f"/provider/plans/{key}/prices", data={"csrf_token": token, "meter": meter,
                                                               "included": included, "unit_price": price})
        assert r.status_code == 302
    r = client.post(f"/provider/plans/{key}/prices", data={"csrf_token": token, "meter": "storage_gb",
                                                           "included": "x", "unit_price": "1.5"})
    assert r.status_code == 422 and _error_of(r.get_data(as_text=True), "included")
    assert _value_of(r.get_data(as_text=True), "unit_price") == "1.5"
    page = client.get(f"/provider/plans/{key}").get_data(as_text=True)
    assert "₫2,000,000" in page.replace("\xa0", "") or "2,000,000" in page
    assert "Documents received" in page and "Billable hours: Bookkeeping" in page
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.key == key))
        assert plan.monthly_fee == 2_000_000
        assert sorted((p.meter, str(p.included), p.unit_price) for p in plan.prices) == [
            ("documents_received", "50.00", 5_000), ("hours:bookkeeping", "1.50", 300_000)]

    tenant_page = client.get(f"/provider/tenants/{slug}").get_data(as_text=True)
    assert 'data-testid="plan-card"' in tenant_page and "No plan yet" in tenant_page
    r = client.post(f"/t/{slug}/plan", data={"csrf_token": token, "plan": key, "starts": "day",
                                             "starts_on": "2020-01-01", "discount_percent": "5"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "past" in _error_of(page, "starts_on") and _value_of(page, "starts_on") == "2020-01-01"
    assert _value_of(page, "discount_percent") == "5"
    r = client.post(f"/t/{slug}/plan", data={"csrf_token": token, "plan": key, "starts": "next_month",
                                             "discount_percent": "5"})
    assert r.status_code == 302
    page = client.get(f"/provider/tenants/{slug}").get_data(as_text=True)
    with app.app_context(), for_tenant(tenant_id):
        row = db.session.scalars(select(TenantPlan)).one()
        assert row.plan.key == key and row.discount_bp == 500 and row.starts_on.day == 1
    assert f"From {row.starts_on.isoformat()}: “Standard”" in html.unescape(page)


# --- who may ----------------------------------------------------------------------------------------------

@pytest.fixture
def plan_world(app, world):
    with app.app_context():
        admin = db.session.get(User, world["provider_admin"].id)
        plan = _plan(admin, name="Beta secret plan 7777777")
        b = db.session.get(Tenant, world.b.id)
        with _as_admin(admin, b):
            plans.set_tenant_plan(admin, b, plan.key, locale="en")
        own = _plan(admin, name="Alpha plan", fee="1.500.000")
        plans.set_price(admin, own.key, meter="documents_received", included="10", unit_price="2.000", locale="vi")
        a = db.session.get(Tenant, world.a.id)
        with for_tenant(a.id):
            db.session.add(TenantPlan(tenant_id=a.id, plan_id=own.id, starts_on=date(2025, 1, 1)))
            db.session.commit()
        return world, plan.key, own.key


@pytest.mark.parametrize("who", ["manager", "staff", "a_client_admin", "a_client_approver", "a_client_member"])
def test_only_a_provider_admin_manages_plans(app, plan_world, who):
    world, b_plan, a_plan = plan_world
    client = app.test_client()
    login(client, world[who])
    token = csrf_token(client, "/account/")
    provider_side = 403 if who in ("manager", "staff") else 404  # clients: the provider area does not exist
    for method, url in (("GET", "/provider/plans"), ("GET", f"/provider/plans/{a_plan}"),
                        ("POST", "/provider/plans"), ("POST", f"/provider/plans/{a_plan}/prices"),
                        ("POST", f"/provider/plans/{a_plan}/tax-rates")):
        r = client.open(url, method=method, data={"csrf_token": token, "key": unique("x"), "name": "x",
                                                  "currency": "VND", "monthly_fee": "1", "payment_days": "1"})
        assert r.status_code == provider_side, f"{who} {method} {url}"
    # Their own client (A; the manager and staff are assigned to it): not allowed. B: not there at all.
    r = client.post(f"/t/{world.a.slug}/plan", data={"csrf_token": token, "plan": a_plan, "starts": "next_month"})
    assert r.status_code == 403
    r = client.post(f"/t/{world.b.slug}/plan", data={"csrf_token": token, "plan": a_plan, "starts": "next_month"})
    assert r.status_code == 404 and world.b.name not in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Plan).where(Plan.name == "x")) is None


def test_changes_are_audited_on_the_right_chains(app, plan_world):
    world, b_plan, a_plan = plan_world
    with app.app_context():
        admin = db.session.get(User, world["provider_admin"].id)
        plans.update_plan(admin, a_plan, name="Alpha plan", currency="VND", monthly_fee="1.600.000",
                          payment_days="15", active=True, locale="vi")
        plans.add_tax_rate(admin, a_plan, percent="8", effective_from=date.today().replace(year=date.today().year + 1),
                           locale="en")
        plan = plans.get_plan(a_plan)
        platform = list(db.session.scalars(select(PlatformAuditEvent).where(
            PlatformAuditEvent.object_id == str(plan.id)).order_by(PlatformAuditEvent.seq)))
        assert [e.action for e in platform] == ["plan.created", "plan.changed", "plan.changed", "plan.tax_rate_set"]
        assert {e.actor_id for e in platform} == {admin.id}
        assert platform[2].data["changes"] == {"monthly_fee": [1_500_000, 1_600_000]}
        assert platform[3].data["rate_bp"] == 800
        b = db.session.get(Tenant, world.b.id)
        with for_tenant(b.id):
            events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.plan_set")))
            assert len(events) == 1 and not events[0].internal and events[0].actor_id == admin.id
    # The client reads it in its access log, in words; A's log shows nothing of B's plan.
    client = app.test_client()
    login(client, world["b_client_admin"])
    log = client.get(f"/t/{world.b.slug}/access-log").get_data(as_text=True)
    assert "set which plan this workspace is billed on" in log
    other = app.test_client()
    login(other, world["a_client_admin"])
    log = other.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    assert "Beta secret plan 7777777" not in log


def test_the_api_shows_a_client_its_own_plan_and_nothing_of_anothers(app, plan_world):
    from portal.api.tokens import create_token

    world, b_plan, a_plan = plan_world
    with app.app_context():
        a = db.session.get(Tenant, world.a.id)
        raw = {}
        for key in ("a_client_admin", "a_client_member"):
            user = db.session.get(User, world[key].id)
            with bound(Scope(user_id=user.id, tenant_ids=frozenset({a.id}))):
                raw[key] = create_token(user, a, "plan reader", "read")
    client = app.test_client()
    r = client.get(f"/api/v1/tenants/{world.a.slug}/plan", headers={"Authorization": f"Bearer {raw['a_client_admin']}"})
    assert r.status_code == 200, r.data
    body = r.get_json()
    current = body["current"]
    assert current["plan"]["name"] == "Alpha plan" and current["plan"]["currency"] == "VND"
    assert current["plan"]["monthly_fee"] == 1_500_000 and current["plan"]["minor_units"] == 0
    assert current["plan"]["prices"] == [{"meter": "documents_received", "label": "Documents received",
                                          "unit": "documents", "included": "10.00", "unit_price": 2_000}]
    assert current["plan"]["tax_rate_bp"] == 1_000 and current["plan"]["tax_rate_from"] is None  # the default
    assert body["next_change"] is None
    r = client.get(f"/api/v1/tenants/{world.b.slug}/plan", headers={"Authorization": f"Bearer {raw['a_client_admin']}"})
    assert r.status_code == 404 and "Beta secret plan" not in r.get_data(as_text=True)
    r = client.get(f"/api/v1/tenants/{world.a.slug}/plan",
                   headers={"Authorization": f"Bearer {raw['a_client_member']}"})
    assert r.status_code == 403  # members see no money

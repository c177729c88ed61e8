"""The annual income tax finalisation against real PostgreSQL: a tax year of pay runs (March 2026 withheld on the
old seven brackets, August on the five), a paid month corrected through arrears, a non-resident and an employee
without a payslip listed apart, a run not approved that keeps the year provisional; the page, the XLSX summary the
client files, the API, and another tenant's people.

Every expected figure is worked out here by hand from the rules (Vietnam, tax period 2026: family deductions
15,500,000 and 6,200,000 per dependant; employee insurance 8 / 1.5 / 1 %, BHXH and BHYT capped at 20 x the base
salary: 46,800,000 until June, 50,600,000 from July; BHTN at 20 x 5,310,000 = 106,200,000 in region I; withholding
January-June on the seven brackets 5 / 10 / 15 / 20 / 25 / 30 / 35 % at 5 / 10 / 18 / 32 / 52 / 80 million, from
July on the five brackets 5 / 10 / 20 / 30 / 35 % at 10 / 30 / 60 / 100 million; the year on the five brackets
times twelve with twelve months of the taxpayer's own deduction), never read back from the engine.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.extensions import db
from portal.payroll import finalisation, runs
from tenants.audit import AuditEvent
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import login, make_person
from tests.ledger.test_ledger import as_person
from tests.payroll.test_runs import add_employee, approve, attend, calculate, make_member, payroll_world

MARCH, AUGUST, NOVEMBER = date(2026, 3, 1), date(2026, 8, 1), date(2026, 11, 1)
# B02's name starts like a formula: the XLSX must keep it as text.
B02_NAME = "=HYPERLINK(\"https://evil.example\",\"B02\")"

# --- A01: 150,000,000 a month, no dependant, resident; March and August --------------------------------------------
# March (paid 31 March; caps 46,800,000 / BHTN 106,200,000):
#   insurance 3,744,000 + 702,000 + 1,062,000 = 5,508,000
#   taxable 150,000,000 - 5,508,000 - 15,500,000 = 128,992,000, withheld on the seven brackets:
#   250,000 + 500,000 + 1,200,000 + 2,800,000 + 5,000,000 + 8,400,000 + 48,992,000 x 35 % (17,147,200) = 35,297,200
# August (paid 31 August; caps 50,600,000):
#   insurance 4,048,000 + 759,000 + 1,062,000 = 5,869,000
#   taxable 150,000,000 - 5,869,000 - 15,500,000 = 128,631,000, on the five brackets:
#   500,000 + 2,000,000 + 6,000,000 + 12,000,000 + 28,631,000 x 35 % (10,020,850) = 30,520,850
# The year: 300,000,000 - (5,508,000 + 5,869,000 = 11,377,000) - 12 x 15,500,000 (186,000,000) = 102,623,000,
#   within the first annual band (120,000,000): 5 % = 5,131,150 due; withheld 35,297,200 + 30,520,850 = 65,818,050;
#   balance 5,131,150 - 65,818,050 = -60,686,900 (refundable).
A01 = {"taxable_employment_income": 300_000_000, "insurance_deduction": 11_377_000,
       "taxpayer_deduction": 186_000_000, "dependant_deduction": 0, "other_deductions": 0,
       "taxable_income": 102_623_000, "tax_due": 5_131_150, "tax_withheld": 65_818_050, "balance": -60_686_900}
# --- B02: 30,000,000 a month, one dependant; March paid for 20 of 22 days, corrected afterwards ------------------
# March as paid: salary 30,000,000 x 20 / 22 = 27,272,727.27 -> 27,272,727; insurance on 30,000,000:
#   2,400,000 + 450,000 + 300,000 = 3,150,000; taxable 27,272,727 - 3,150,000 - 15,500,000 - 6,200,000 = 2,422,727;
#   5 % = 121,136.35 -> 121,136 withheld.
# March corrected to the whole month (arrears in August, under March's rules): taxable 30,000,000 - 3,150,000 -
#   21,700,000 = 5,150,000 -> 250,000 + 15,000 = 265,000; the August run withholds the difference 143,864.
# August: taxable 5,150,000 on the five brackets: 5 % = 257,500.
# The year: 60,000,000 (March as corrected) - 6,300,000 - 186,000,000 - 2 x 6,200,000 < 0: nothing taxable, 0 due;
#   withheld 121,136 + 143,864 + 257,500 = 522,500, all refundable.
B02 = {"taxable_employment_income": 60_000_000, "insurance_deduction": 6_300_000,
       "taxpayer_deduction": 186_000_000, "dependant_deduction": 12_400_000, "other_deductions": 0,
       "taxable_income": 0, "tax_due": 0, "tax_withheld": 522_500, "balance": -522_500}
# --- N03: 50,000,000 a month, not resident: 20 % of 50,000,000 = 10,000,000 withheld in March and in August, final.
# --- D04: employed all year, no attendance, no payslip.
TOTALS = {"tax_due": 5_131_150, "tax_withheld": 65_818_050 + 522_500, "to_pay": 0,
          "to_refund": 60_686_900 + 522_500, "balance": -(60_686_900 + 522_500), "employees": 2}


def _world(app) -> SimpleNamespace:  # noqa: ANN001
    """The tenant's 2026: March paid, August approved (correcting March of B02), November calculated only."""
    world = payroll_world(app)
    with app.app_context():
        add_employee(world, "A01", 150_000_000, tax_code="8001234567")
        add_employee(world, "B02", 30_000_000, dependants=1, name=B02_NAME)
        add_employee(world, "N03", 50_000_000, resident=False, name="John Smith")
        add_employee(world, "D04", 30_000_000)
        attend(world, "A01", MARCH, 22, 22)
        attend(world, "B02", MARCH, 22, 20, unpaid=2)
        attend(world, "N03", MARCH, 22, 22)
        calculate(world, MARCH)
        assert approve(world, MARCH) == "approved"
        with as_person(world, world.staff) as (staff, tenant):
            runs.mark_paid(staff, tenant, MARCH)
            pit = {p.employee_code: p.content["figures"]["pit"] for p in runs.get_run(MARCH).payslips}
            assert pit == {"A01": 35_297_200, "B02": 121_136, "N03": 10_000_000}  # as worked out above
        attend(world, "B02", MARCH, 22, 22)  # the paid month corrected: paid as arrears in August
        for code in ("A01", "B02", "N03"):
            attend(world, code, AUGUST, 21, 21)
        calculate(world, AUGUST)
        assert approve(world, AUGUST) == "approved"
        with as_person(world, world.staff):
            slips = {p.employee_code: p.content for p in runs.get_run(AUGUST).payslips}
            assert [(a["month"], a["difference"]["pit"]) for a in slips["B02"]["arrears"]] == [("2026-03", 143_864)]
            assert {c: s["figures"]["pit"] for c, s in slips.items()} == {"A01": 30_520_850, "B02": 257_500,
                                                                           "N03": 10_000_000}
        attend(world, "A01", NOVEMBER, 21, 21)
        calculate(world, NOVEMBER)  # not approved: left out, the year is provisional
    return world


@pytest.fixture(scope="module")
def year_world(app) -> SimpleNamespace:  # noqa: ANN001
    return _world(app)


def _figures(e: finalisation.EmployeeYear) -> dict[str, int]:
    return {k: v for k, v in e.figures().items() if k in A01}


def test_the_year_is_settled_on_the_five_brackets_against_what_was_withheld(app, year_world):
    world = year_world
    with app.app_context(), as_person(world, world.staff):
        year = finalisation.finalise(2026)
        assert year.provisional and [(p.key, p.state, p.corrects) for p in year.pending] == [
            ("2026-11", "calculated", False)]
        assert [e.code for e in year.employees] == ["A01", "B02"]
        a01, b02 = year.employees
        assert (a01.months, a01.corrected, a01.result.schedule) == (("2026-03", "2026-08"), (), "VN-PIT-5")
        assert _figures(a01) == A01
        assert [(b.lower, b.upper, str(b.rate), b.income, b.tax) for b in a01.result.brackets] == [
            (0, 120_000_000, "0.05", 102_623_000, 5_131_150)]
        assert (b02.months, b02.corrected) == (("2026-03", "2026-08"), ("2026-03",))
        assert _figures(b02) == B02 and b02.result.brackets == ()
        assert {k: year.totals[k] for k in TOTALS} == TOTALS
        apart = {a.code: a for a in year.apart}
        assert set(apart) == {"N03", "D04"}
        n03 = apart["N03"]
        assert (n03.reason, n03.resident, n03.months) == (finalisation.NON_RESIDENT, False, ("2026-03", "2026-08"))
        assert (n03.taxable_employment_income, n03.tax_withheld) == (100_000_000, 20_000_000)
        assert (apart["D04"].reason, apart["D04"].months, apart["D04"].tax_withheld) == (finalisation.NO_PAYSLIP,
                                                                                         (), 0)
        # The year before: nothing paid, nothing waiting.
        before = finalisation.finalise(2025)
        assert (before.employees, before.pending, before.paid_anything) == ([], [], False)


def test_a_correction_waiting_in_next_years_run_keeps_the_year_provisional_until_approved(app):
    """C05 earns 40,000,000, no dependant (rules from July 2026: caps 50,600,000, five brackets).
    October, paid 31 October for 20 of 22 days: salary 40,000,000 x 20 / 22 = 36,363,636.36 -> 36,363,636;
      insurance on 40,000,000: 3,200,000 + 600,000 + 400,000 = 4,200,000;
      taxable 36,363,636 - 4,200,000 - 15,500,000 = 16,663,636 -> 500,000 + 666,363.6 (666,364) = 1,166,364.
    October corrected to the whole month: taxable 40,000,000 - 4,200,000 - 15,500,000 = 20,300,000 ->
      500,000 + 1,030,000 = 1,530,000; the difference 363,636 is withheld by December's run, paid on 5 January 2027.
    December's own salary, paid in 2027, is income of 2027 (1,530,000 withheld); the correction stays October's,
      so 2026's: withheld 1,166,364 + 363,636 = 1,530,000 on 40,000,000 - 4,200,000 - 186,000,000 < 0: 0 due."""
    world = payroll_world(app)
    october, december = date(2026, 10, 1), date(2026, 12, 1)
    with app.app_context():
        add_employee(world, "C05", 40_000_000)
        attend(world, "C05", october, 22, 20, unpaid=2)
        calculate(world, october)
        with as_person(world, world.staff):
            waiting = finalisation.finalise(2026)
            assert waiting.provisional and waiting.employees == [] and not waiting.paid_anything
            assert [(p.key, p.state, p.corrects) for p in waiting.pending] == [("2026-10", "calculated", False)]
            assert [(a.code, a.reason) for a in waiting.apart] == [("C05", finalisation.ONLY_PENDING)]
        approve(world, october)
        with as_person(world, world.staff) as (staff, tenant):
            runs.mark_paid(staff, tenant, october)
            year = finalisation.finalise(2026)
            assert not year.provisional
            assert [(e.code, e.tax_due, e.tax_withheld, e.balance) for e in year.employees] == [
                ("C05", 0, 1_166_364, -1_166_364)]
        attend(world, "C05", october, 22, 22)
        attend(world, "C05", december, 22, 22)
        calculate(world, december, pay_date=date(2027, 1, 5))
        with as_person(world, world.staff):
            year = finalisation.finalise(2026)
            assert [(p.key, p.state, p.corrects) for p in year.pending] == [("2026-12", "calculated", True)]
            c05 = year.employees[0]
            assert (c05.months, c05.corrected, c05.tax_withheld) == (("2026-10",), (), 1_166_364)  # not yet
        approve(world, december)
        with as_person(world, world.staff):
            year = finalisation.finalise(2026)
            assert not year.provisional
            c05 = year.employees[0]
            assert (c05.months, c05.corrected) == (("2026-10",), ("2026-10",))
            assert (c05.result.taxable_employment_income, c05.tax_due, c05.tax_withheld, c05.balance) == (
                40_000_000, 0, 1_530_000, -1_530_000)
            next_year = finalisation.finalise(2027)
            c05 = next_year.employees[0]
            assert (c05.months, c05.tax_withheld, c05.result.taxable_employment_income) == (
                ("2026-12",), 1_530_000, 40_000_000)


def test_the_page_shows_totals_first_and_each_employees_working(app, client, year_world):
    world = year_world
    login(client, world.client)  # the client reads the same page, read-only
    page = client.get(f"/t/{world.slug}/payroll/finalisation/2026")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    html = page.get_data(as_text=True)
    assert re.search(r'data-testid="total-tax-due">[^<]*5,131,150<', html)
    assert re.search(r'data-testid="total-withheld">[^<]*66,340,550<', html)
    assert re.search(r'data-testid="total-to-refund">[^<]*61,209,400<', html)
    assert html.index('data-testid="fin-totals"') < html.index('data-testid="finalisation"')  # totals first
    assert 'data-testid="provisional"' in html and "11/2026" in html
    assert re.search(r'data-testid="balance-A01" data-balance="-60686900">[^<]*<span class="refund">to refund '
                     r"[^<]*60,686,900</span>", html)
    assert "<details" in html and "102,623,000" in html and "8001234567" not in html  # the tax code is masked
    assert "•••• 4567" in html
    assert "=HYPERLINK(&#34;https://evil.example&#34;" in html or "=HYPERLINK(&quot;" in html
    assert 'data-reason="non_resident"' in html and 'data-reason="no_payslip"' in html
    assert client.get(f"/t/{world.slug}/payroll/finalisation/26").status_code == 404
    assert client.get(f"/t/{world.slug}/payroll/finalisation/abcd").status_code == 404
    # The pay runs list links it; the default address shows the last completed year (2026 in December).
    runs_page = client.get(f"/t/{world.slug}/payroll/runs").get_data(as_text=True)
    assert f"/t/{world.slug}/payroll/finalisation" in runs_page
    default = client.get(f"/t/{world.slug}/payroll/finalisation")
    assert default.status_code == 200
    # The reader's today (their time zone: UTC to UTC+7 here, which differ only around midnight).
    now = datetime.now(UTC)
    expected = {d.year if d.month == 12 else d.year - 1 for d in (now.date(), (now + timedelta(hours=7)).date())}
    assert re.search(r"<h1>Income tax finalisation (\d{4})</h1>", default.get_data(as_text=True)).group(1) in {
        str(y) for y in expected}
    member = make_member(app, world)
    other = app.test_client()
    login(other, member)
    assert other.get(f"/t/{world.slug}/payroll/finalisation/2026").status_code == 403  # no salaries for members


def test_the_xlsx_summary_has_a_row_per_employee_and_the_totals_and_is_audited(app, client, year_world):
    world = year_world
    login(client, world.staff)
    got = client.get(f"/t/{world.slug}/payroll/finalisation/2026.xlsx")
    assert got.status_code == 200 and got.headers["Cache-Control"] == "private, no-store"
    assert "pit-finalisation-2026.xlsx" in got.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(got.data))
    main, apart = book.worksheets
    rows = [list(r) for r in main.iter_rows(values_only=True)]
    assert rows[0][:5] == ["Code", "Employee", "Tax code", "Resident", "Months"] and len(rows[0]) == 14
    keys = ("taxable_employment_income", "insurance_deduction", "taxpayer_deduction", "dependant_deduction",
            "other_deductions", "taxable_income", "tax_due", "tax_withheld", "balance")
    assert rows[1] == ["A01", "Nguyễn Văn A01", "8001234567", "yes", 2, *(A01[k] for k in keys)]
    assert rows[2] == ["B02", "'" + B02_NAME, None, "yes", 2, *(B02[k] for k in keys)]  # quoted: plain text
    assert rows[3] == ["Total", None, None, None, None, *(A01[k] + B02[k] for k in keys)]
    assert rows[3][12:] == [66_340_550, -61_209_400]
    assert "11/2026" in rows[5][0]  # the provisional sentence under the totals
    assert [(r[0], r[6]) for r in apart.iter_rows(min_row=2, values_only=True)] == [("N03", 20_000_000),
                                                                                    ("D04", 0)]
    with app.app_context(), as_person(world, world.staff):
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.id,
                                                            AuditEvent.action == "payroll.finalisation_exported")
                                   .order_by(AuditEvent.seq.desc())).first()
        assert event is not None and event.actor_id == world.staff.id
    # The client's access log tells what happened in words.
    admin = app.test_client()
    login(admin, world.client)
    log = admin.get(f"/t/{world.slug}/access-log")
    assert log.status_code == 200
    assert "downloaded the income tax finalisation summary of a year" in log.get_data(as_text=True)


def test_the_api_gives_the_same_figures(app, client, year_world):
    from portal.api.tokens import create_token
    from tenants.context import Scope, bound

    world = year_world
    with app.app_context():
        user = db.session.get(User, world.staff.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({world.id}), role=Role.STAFF)):
            raw = create_token(user, db.session.get(Tenant, world.id), "finalisation", "read")
    api = {"Authorization": f"Bearer {raw}"}
    got = client.get(f"/api/v1/tenants/{world.slug}/payroll/finalisation/2026", headers=api)
    assert got.status_code == 200, got.json
    body = got.json
    assert (body["year"], body["provisional"]) == (2026, True)
    assert body["pending_runs"] == [{"month": "2026-11", "state": "calculated", "corrects_the_year": False}]
    assert {k: body["totals"][k] for k in TOTALS} == TOTALS
    employees = {e["code"]: e for e in body["employees"]}
    assert {k: employees["A01"][k] for k in A01} == A01 and {k: employees["B02"][k] for k in B02} == B02
    assert employees["A01"]["tax_code"] == "•••• 4567" and employees["B02"]["corrected_months"] == ["2026-03"]
    assert employees["A01"]["brackets"] == [{"lower": 0, "upper": 120_000_000, "rate": "0.05",
                                             "income": 102_623_000, "tax": 5_131_150}]
    assert {a["code"]: (a["reason"], a["tax_withheld"]) for a in body["apart"]} == {
        "N03": ("non_resident", 20_000_000), "D04": ("no_payslip", 0)}
    bad = client.get(f"/api/v1/tenants/{world.slug}/payroll/finalisation/20x6", headers=api)
    assert bad.status_code == 404 and bad.mimetype == "application/problem+json"


def test_another_tenants_people_cannot_read_the_year(app, client, year_world):
    from portal.api.tokens import create_token
    from tenants.context import Scope, bound

    world, stranger = year_world, payroll_world(app)
    with app.app_context():
        user = db.session.get(User, stranger.client.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({stranger.id}))):
            raw = create_token(user, db.session.get(Tenant, stranger.id), "payroll", "read")
        unassigned = make_person(Role.STAFF)
    paths = ("/payroll/finalisation", "/payroll/finalisation/2026", "/payroll/finalisation/2026.xlsx")
    for person in (stranger.client, stranger.staff, unassigned):
        browser = app.test_client()
        login(browser, person)
        for path in paths:
            assert browser.get(f"/t/{world.slug}{path}").status_code in (403, 404), (person, path)
    api = {"Authorization": f"Bearer {raw}"}
    assert client.get(f"/api/v1/tenants/{world.slug}/payroll/finalisation/2026",
                      headers=api).status_code in (403, 404)
    # Under its own address the stranger sees its own (empty) year: nothing of the other tenant.
    own = client.get(f"/api/v1/tenants/{stranger.slug}/payroll/finalisation/2026", headers=api)
    assert own.status_code == 200 and own.json["employees"] == [] and own.json["apart"] == []
    login(client, stranger.client)
    page = client.get(f"/t/{stranger.slug}/payroll/finalisation/2026")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="finalisation-empty"' in html and "Run payroll first" in html
    assert "A01" not in html and "John Smith" not in html
    with app.app_context(), as_person(stranger, stranger.staff):
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.action == "payroll.finalisation_exported", AuditEvent.tenant_id == stranger.id)) is None

"""Pay runs against real PostgreSQL and rq: the figures of a run, its state machine with a second person's review and
the client's approval bound to the summary's SHA-256, a change that voids the approval, the rules of a period that
spans 2026-07-01, arrears of a corrected paid month, the journal, the bank file, and another tenant's run.

Every expected figure is worked out here by hand from the rules (Vietnam from 2026-07-01: base salary 2,530,000, so
BHXH and BHYT are capped at 50,600,000; BHTN at 20 x 5,310,000 = 106,200,000 in region I; employee 8 / 1.5 / 1 %,
employer 17 + 0.5 / 3 / 1 %, union fee 2 % of the BHXH base; family deductions 15,500,000 and 6,200,000 per
dependant; five brackets 5 / 10 / 20 / 30 / 35 % at 10 / 30 / 60 / 100 million; overtime within the limits wholly
exempt), never read back from the engine or the tables under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal.documents.models import Document
from portal.extensions import db
from portal.ledger import reports
from portal.ledger.models import Entry
from portal.payroll import bank_file, runs
from portal.payroll.models import Attendance, Dependant, Employee
from portal.payroll.run_models import PayRun
from portal.work.models import Task
from tenants.audit import AuditEvent
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person
from tests.ledger.test_ledger import as_person, books

NOVEMBER = date(2026, 11, 1)
OCTOBER = date(2026, 10, 1)
JUNE, JULY = date(2026, 6, 1), date(2026, 7, 1)
HIRED = date(2025, 1, 1)


def payroll_world(app) -> SimpleNamespace:  # noqa: ANN001
    """A tenant with its books on, a staff member and a manager assigned to it (the second person), its client
    admin (who approves), and a second tenant."""
    world = books(app)
    with app.app_context():
        manager = make_person(Role.MANAGER)
        assign(db.session.get(User, world.admin.id), db.session.get(Tenant, world.id),
               db.session.get(User, manager.id))
        db.session.commit()
        world.manager = manager
    return world


def add_employee(world, code: str, base: int, *, dependants: int = 0, name: str | None = None,  # noqa: ANN001
                 account: str | None = "0071000123456", **fields) -> None:
    with as_person(world, world.staff) as (_user, tenant):
        employee = Employee(tenant_id=tenant.id, code=code, full_name=name or f"Nguyễn Văn {code}",
                            contract_type=fields.pop("contract_type", "indefinite"), contract_start=HIRED,
                            region=fields.pop("region", "I"), bank_name="Vietcombank", bank_account=account,
                            **fields)
        employee.base_salary = base
        db.session.add(employee)
        db.session.flush()
        for n in range(dependants):
            db.session.add(Dependant(tenant_id=tenant.id, employee_id=employee.id, name=f"Con {n + 1}",
                                     relation="child", from_month=HIRED))
        db.session.commit()


def attend(world, code: str, month: date, working: int, worked: int, *, unpaid: int = 0,  # noqa: ANN001
           overtime: dict | None = None, bonuses: list | None = None, deductions: list | None = None) -> None:
    """Key (or correct) an employee's month, as the attendance page saves it."""
    with as_person(world, world.staff) as (_user, tenant):
        employee = db.session.scalar(select(Employee).where(Employee.code == code))
        row = db.session.scalar(select(Attendance).where(Attendance.employee_id == employee.id,
                                                         Attendance.month == month))
        if row is None:
            row = Attendance(tenant_id=tenant.id, employee_id=employee.id, month=month)
            db.session.add(row)
        row.working_days, row.days_worked = Decimal(working), Decimal(worked)
        row.paid_leave, row.unpaid_leave = Decimal(0), Decimal(unpaid)
        row.overtime = overtime or {}
        row.bonuses, row.deductions = bonuses or [], deductions or []
        db.session.commit()


def three_employees(world) -> None:  # noqa: ANN001
    add_employee(world, "E01", 30_000_000, dependants=1)
    add_employee(world, "E02", 60_000_000, dependants=2)
    add_employee(world, "E03", 20_000_000)
    attend(world, "E01", NOVEMBER, 22, 22)
    attend(world, "E02", NOVEMBER, 22, 22)
    attend(world, "E03", NOVEMBER, 22, 20, unpaid=2, overtime={"weekday": "10"},
           bonuses=[{"name": "Thưởng doanh số", "amount": 1_000_000}],
           deductions=[{"name": "Tạm ứng", "amount": 500_000}])


# --- the three payslips, by hand ---------------------------------------------------------------------------------
# E01: 30,000,000, one dependant, the whole month.
#   insurance 8 % 2,400,000 + 1.5 % 450,000 + 1 % 300,000 = 3,150,000
#   taxable 30,000,000 - 3,150,000 - 15,500,000 - 6,200,000 = 5,150,000; PIT 5 % = 257,500
#   net 30,000,000 - 3,150,000 - 257,500 = 26,592,500
#   employer 17 % 5,100,000 + 0.5 % 150,000 + 3 % 900,000 + 1 % 300,000 = 6,450,000; union fee 600,000
E01 = {"gross": 30_000_000, "employee_contributions": 3_150_000, "pit": 257_500, "net": 26_592_500,
       "take_home": 26_592_500, "employer_contributions": 6_450_000, "union_fee": 600_000,
       "employer_cost": 30_000_000 + 6_450_000 + 600_000}
# E02: 60,000,000, two dependants: BHXH and BHYT capped at 50,600,000, BHTN not (106,200,000).
#   insurance 4,048,000 + 759,000 + 600,000 = 5,407,000
#   taxable 60,000,000 - 5,407,000 - 15,500,000 - 12,400,000 = 26,693,000
#   PIT 10,000,000 x 5 % = 500,000 + 16,693,000 x 10 % = 1,669,300 -> 2,169,300; net 52,423,700
#   employer 8,602,000 + 253,000 + 1,518,000 + 600,000 = 10,973,000; union fee 2 % x 50,600,000 = 1,012,000
E02 = {"gross": 60_000_000, "employee_contributions": 5_407_000, "pit": 2_169_300, "net": 52_423_700,
       "take_home": 52_423_700, "employer_contributions": 10_973_000, "union_fee": 1_012_000,
       "employer_cost": 60_000_000 + 10_973_000 + 1_012_000}
# E03: 20,000,000, 20 of 22 days (2 unpaid), 10 weekday overtime hours, a bonus of 1,000,000, an advance of 500,000.
#   salary 20,000,000 x 20 / 22 = 18,181,818.18 -> 18,181,818
#   overtime 20,000,000 / (22 x 8) x 1.5 x 10 = 1,704,545.45 -> 1,704,545, all exempt (within the limits)
#   gross 18,181,818 + 1,704,545 + 1,000,000 = 20,886,363
#   insurance on the contract's 20,000,000 (2 unpaid days do not stop it): 1,600,000 + 300,000 + 200,000 = 2,100,000
#   taxable 20,886,363 - 1,704,545 - 2,100,000 - 15,500,000 = 1,581,818; PIT 5 % = 79,090.9 -> 79,091
#   net 20,886,363 - 2,100,000 - 79,091 = 18,707,272; paid 18,707,272 - 500,000 = 18,207,272
#   employer 3,400,000 + 100,000 + 600,000 + 200,000 = 4,300,000; union fee 400,000
E03 = {"gross": 20_886_363, "employee_contributions": 2_100_000, "pit": 79_091, "net": 18_707_272,
       "take_home": 18_207_272, "employer_contributions": 4_300_000, "union_fee": 400_000,
       "employer_cost": 20_886_363 + 4_300_000 + 400_000}
KEYS = tuple(E01)


def totals_of(*slips: dict) -> dict:
    return {k: sum(s[k] for s in slips) for k in KEYS}


def figures(run: PayRun) -> dict[str, dict]:
    return {p.employee_code: {k: p.content["totals"][k] for k in KEYS} for p in run.payslips}


def calculate(world, month: date, person=None, **kw):  # noqa: ANN001, ANN201
    with as_person(world, person or world.staff) as (user, tenant):
        run, _changed = runs.calculate(user, tenant, month, **kw)
        return run


def test_a_run_of_three_employees_gives_the_figures_worked_out_by_hand(app, run_jobs):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        run = calculate(world, NOVEMBER)
        with as_person(world, world.staff):
            run = runs.get_run(NOVEMBER)
            assert (run.state, run.headcount, run.version) == ("calculated", 3, 1)
            assert figures(run) == {"E01": E01, "E02": E02, "E03": E03}
            assert {k: run.totals[k] for k in KEYS} == totals_of(E01, E02, E03)
            e03 = next(p for p in run.payslips if p.employee_code == "E03").content
            assert e03["lines"]["salary"] == 18_181_818 and e03["lines"]["exempt_overtime"] == 1_704_545
            assert e03["lines"]["overtime"] == [{"kind": "weekday", "hours": "10", "pay": 1_704_545,
                                                 "exempt": 1_704_545}]
            # The summary in the vault is what the run holds: its figures' hash and every employee's line.
            summary = db.session.get(Document, run.summary_id)
            assert (summary.category, summary.tags) == ("other", ["payroll-run"])
            text = _summary_text(run)
            assert run.figures_sha256 in text and "E02,Nguyễn Văn E02,60000000,5407000,2169300,52423700" in text
    run_jobs()  # the payslips' PDFs
    with app.app_context(), as_person(world, world.staff):
        run = runs.get_run(NOVEMBER)
        assert runs.pdfs_ready(run) == 3
        slip = next(p for p in run.payslips if p.employee_code == "E03")
        document = db.session.get(Document, slip.document_id)
        assert (document.category, document.period, document.tags) == ("payslip", NOVEMBER, ["payslip"])
        # Both languages on one page (the default), the amount paid (18,207,272) also in words in each.
        import pypdfium2

        from portal.documents import services as vault

        pdf = pypdfium2.PdfDocument(b"".join(vault.download(None, db.session.get(Tenant, world.id),
                                                            str(slip.document_id)).chunks))
        text = " ".join(pdf[0].get_textpage().get_text_range().split())
        assert len(pdf) == 1
        assert "Mười tám triệu hai trăm linh bảy nghìn hai trăm bảy mươi hai đồng" in text
        assert "Eighteen million two hundred seven thousand two hundred seventy-two Vietnamese dong" in text
        assert not db.session.scalar(select(Task.id).where(Task.title.is_not(None), Task.source == "upload"))


def _summary_text(run: PayRun) -> str:
    from portal.documents import services as vault

    data = b"".join(vault.download(None, db.session.get(Tenant, run.tenant_id), str(run.summary_id)).chunks)
    return data.decode()


def test_calculating_refuses_every_employee_it_cannot_pay_at_once_and_writes_nothing(app):
    world = payroll_world(app)
    with app.app_context():
        add_employee(world, "E01", 30_000_000)
        add_employee(world, "E02", 30_000_000)
        add_employee(world, "E03", 30_000_000, contract_type="fixed")  # no end date
        attend(world, "E01", NOVEMBER, 22, 20)  # 20 days of 22, nothing else: they do not add up
        attend(world, "E02", NOVEMBER, 22, 22)
        attend(world, "E03", NOVEMBER, 22, 22)
        with as_person(world, world.staff) as (user, tenant):
            with pytest.raises(runs.RunError) as refused:
                runs.calculate(user, tenant, NOVEMBER)
            assert set(refused.value.errors) == {"E01", "E03"}
            assert "end date" in refused.value.errors["E03"] and "22" in refused.value.errors["E01"]
            db.session.rollback()
            assert runs.get_run(NOVEMBER).state == "draft" and runs.get_run(NOVEMBER).payslips == []


# --- the state machine ------------------------------------------------------------------------------------------

def approve(world, month: date) -> str:  # noqa: ANN001
    """Send the calculated run to the manager's review, review it, and have the client approve what it sees;
    the run's state after."""
    with as_person(world, world.staff) as (staff, tenant):
        runs.submit(staff, tenant, month, str(world.manager.id))
    with as_person(world, world.manager) as (manager, tenant):
        runs.review(manager, tenant, month, approve=True)
    with as_person(world, world.client) as (client, tenant):
        run = runs.get_run(month)
        return runs.decide(client, tenant, month, approve=True, seen_sha256=runs.summary_sha256(run)).state


def test_a_run_is_reviewed_by_a_second_person_then_approved_by_the_client_bound_to_its_hash(app, run_jobs):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        with as_person(world, world.staff) as (staff, tenant):
            with pytest.raises(runs.RunError, match="someone else"):
                runs.submit(staff, tenant, NOVEMBER, str(staff.id))
            db.session.rollback()
            with pytest.raises(runs.RunConflict):  # not approved yet: nothing to pay
                runs.mark_paid(staff, tenant, NOVEMBER)
            db.session.rollback()
            assert runs.submit(staff, tenant, NOVEMBER, str(world.manager.id)).state == "in_review"
            assert runs.submit(staff, tenant, NOVEMBER, str(world.manager.id)).state == "in_review"  # a double click
            with pytest.raises(runs.RunError) as not_the_reviewer:  # who calculated it does not review it
                runs.review(staff, tenant, NOVEMBER, approve=True)
            assert not_the_reviewer.value.status == 403
            db.session.rollback()
        with as_person(world, world.client) as (client, tenant):
            with pytest.raises(runs.RunConflict, match="in review"):  # not before the second person's review
                runs.decide(client, tenant, NOVEMBER, approve=True, seen_sha256=runs.summary_sha256(
                    runs.get_run(NOVEMBER)))
            db.session.rollback()
        with as_person(world, world.manager) as (manager, tenant):
            assert runs.review(manager, tenant, NOVEMBER, approve=True).state == "awaiting_approval"
            assert runs.review(manager, tenant, NOVEMBER, approve=True).state == "awaiting_approval"  # harmless
            first = runs.get_run(NOVEMBER)
            first_sha, task_id = runs.summary_sha256(first), first.task_id
            assert first_sha == hashlib.sha256(runs.summary_csv(first, {p.employee_code: p.content
                                                                         for p in first.payslips})).hexdigest()
        # A change after calculation: E01 took a day of unpaid leave. The run is calculated again by itself.
        attend(world, "E01", NOVEMBER, 22, 21, unpaid=1)
    run_jobs()
    with app.app_context():
        with as_person(world, world.staff):
            run = runs.get_run(NOVEMBER)
            assert (run.state, run.version, run.approved_sha256) == ("calculated", 2, None)
            task = db.session.get(Task, task_id)
            assert task.state == "in_progress" and task.approved_sha256 is None  # the review is void
            second_sha = runs.summary_sha256(run)
            assert second_sha != first_sha
            # E01 now: salary 30,000,000 x 21 / 22 = 28,636,363.6 -> 28,636,364; insurance unchanged 3,150,000;
            # taxable 28,636,364 - 3,150,000 - 21,700,000 = 3,786,364; PIT 5 % = 189,318.2 -> 189,318
            assert figures(run)["E01"]["net"] == 28_636_364 - 3_150_000 - 189_318
        with as_person(world, world.client) as (client, tenant):
            with pytest.raises(runs.RunConflict):  # what the client was about to approve is gone
                runs.decide(client, tenant, NOVEMBER, approve=True, seen_sha256=first_sha)
            db.session.rollback()
        with as_person(world, world.staff) as (staff, tenant):
            runs.submit(staff, tenant, NOVEMBER, str(world.manager.id))
        with as_person(world, world.manager) as (manager, tenant):
            runs.review(manager, tenant, NOVEMBER, approve=True)
        with as_person(world, world.client) as (client, tenant):
            with pytest.raises(runs.RunError) as old:  # approving the summary as it was before the change
                runs.decide(client, tenant, NOVEMBER, approve=True, seen_sha256=first_sha)
            assert old.value.status == 409
            db.session.rollback()
            run = runs.decide(client, tenant, NOVEMBER, approve=True, seen_sha256=second_sha)
            assert (run.state, run.approved_sha256) == ("approved", second_sha)
            assert runs.decide(client, tenant, NOVEMBER, approve=True, seen_sha256=second_sha).state == "approved"
    run_jobs()  # task.done reaches payroll: already approved, nothing more happens
    with app.app_context(), as_person(world, world.staff) as (staff, tenant):
        run = runs.get_run(NOVEMBER)
        assert run.state == "approved" and db.session.get(Task, task_id).state == "done"
        assert runs.mark_paid(staff, tenant, NOVEMBER).state == "paid"
        assert runs.mark_paid(staff, tenant, NOVEMBER).state == "paid"  # a double click
        with pytest.raises(runs.RunConflict, match="paid"):
            runs.calculate(staff, tenant, NOVEMBER)
        db.session.rollback()
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == world.id)))
        assert {"payroll.run_opened", "payroll.run_calculated", "payroll.run_submitted", "payroll.run_reviewed",
                "payroll.run_review_voided", "payroll.run_approved", "payroll.run_paid",
                "payroll.journal_posted"} <= actions


def test_a_change_after_approval_voids_it_and_reverses_the_journal(app, run_jobs):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        assert approve(world, NOVEMBER) == "approved"
        with as_person(world, world.staff):
            entry_id = runs.get_run(NOVEMBER).entry_id
            assert entry_id is not None
        attend(world, "E02", NOVEMBER, 22, 22, bonuses=[{"name": "Thưởng", "amount": 2_000_000}])
    run_jobs()
    with app.app_context(), as_person(world, world.staff):
        run = runs.get_run(NOVEMBER)
        assert (run.state, run.entry_id, run.approved_at) == ("calculated", None, None)
        assert db.session.get(Entry, entry_id).reversed_by_id is not None  # the books no longer hold it
        assert figures(run)["E02"]["gross"] == 62_000_000


# --- the rules of the period -----------------------------------------------------------------------------------

def test_june_pay_has_junes_insurance_and_the_pay_dates_tax_rules(app):
    """Insurance follows the salary month; income tax the day it is paid. E02 earns 60,000,000 with two dependants.

    June paid on 30 June: caps 20 x 2,340,000 = 46,800,000 -> 3,744,000 + 702,000 + 600,000 = 5,046,000; taxable
    60,000,000 - 5,046,000 - 15,500,000 - 12,400,000 = 27,054,000, withheld on the seven brackets of January-June
    2026: 250,000 + 500,000 + 1,200,000 + 9,054,000 x 20 % = 3,760,800.
    June paid on 5 July: the same insurance, the five brackets: 500,000 + 17,054,000 x 10 % = 2,205,400.
    July: caps 50,600,000 -> 4,048,000 + 759,000 + 600,000; PIT 2,169,300 (as in November).
    """
    world = payroll_world(app)
    with app.app_context():
        add_employee(world, "E02", 60_000_000, dependants=2)
        attend(world, "E02", JUNE, 22, 22)
        attend(world, "E02", JULY, 23, 23)
        june = calculate(world, JUNE, pay_date=date(2026, 6, 30))
        with as_person(world, world.staff):
            slip = runs.get_run(JUNE).payslips[0].content
            assert (slip["totals"]["employee.BHXH"], slip["totals"]["pit"]) == (3_744_000, 3_760_800)
            assert slip["totals"]["net"] == 60_000_000 - 5_046_000 - 3_760_800
            assert slip["rules"]["schedule"] == "VN-PIT-7"
        june = calculate(world, JUNE, pay_date=date(2026, 7, 5))
        with as_person(world, world.staff):
            run = runs.get_run(JUNE)
            slip = run.payslips[0].content
            assert (run.pay_date, run.version) == (date(2026, 7, 5), 2)
            assert (slip["totals"]["employee.BHXH"], slip["totals"]["pit"]) == (3_744_000, 2_205_400)
            assert slip["rules"] == {**slip["rules"], "insurance_from": "2026-01-01", "pit_from": "2026-07-01",
                                     "schedule": "VN-PIT-5"}
        calculate(world, JULY)
        with as_person(world, world.staff):
            slip = runs.get_run(JULY).payslips[0].content
            assert (slip["totals"]["employee.BHXH"], slip["totals"]["employee.BHYT"]) == (4_048_000, 759_000)
            assert slip["totals"]["pit"] == 2_169_300
        assert june is not None


# --- arrears -----------------------------------------------------------------------------------------------------

def test_a_corrected_paid_month_is_paid_as_arrears_once_under_that_months_rules(app, run_jobs):
    """E04 earns 22,000,000, no dependant. October was paid for 20 of 22 days (2 unpaid):
    salary 20,000,000; insurance on 22,000,000: 1,760,000 + 330,000 + 220,000 = 2,310,000;
    taxable 20,000,000 - 2,310,000 - 15,500,000 = 2,190,000, PIT 109,500; net 17,580,500.
    Corrected to the whole month: salary 22,000,000, taxable 4,190,000, PIT 209,500, net 19,480,500.
    The difference: gross 2,000,000, PIT 100,000, net 1,900,000, the employer's contributions unchanged.
    November (whole month) nets 19,480,500 and pays the 1,900,000 besides: 21,380,500."""
    world = payroll_world(app)
    with app.app_context():
        add_employee(world, "E04", 22_000_000)
        attend(world, "E04", OCTOBER, 22, 20, unpaid=2)
        calculate(world, OCTOBER)
        approve(world, OCTOBER)
        with as_person(world, world.staff) as (staff, tenant):
            runs.mark_paid(staff, tenant, OCTOBER)
            assert figures(runs.get_run(OCTOBER))["E04"]["net"] == 17_580_500
        attend(world, "E04", NOVEMBER, 21, 21)
        calculate(world, NOVEMBER)
        with as_person(world, world.staff):
            assert runs.get_run(NOVEMBER).payslips[0].content["arrears"] == []
        attend(world, "E04", OCTOBER, 22, 22)  # the correction of the paid month
    run_jobs()  # November is calculated again with the arrears
    with app.app_context():
        with as_person(world, world.staff):
            october, november = runs.get_run(OCTOBER), runs.get_run(NOVEMBER)
            assert (october.state, october.version) == ("paid", 1)  # a paid run never changes
            slip = november.payslips[0].content
            assert november.version == 2
            assert [(a["month"], a["difference"]) for a in slip["arrears"]] == [
                ("2026-10", {"gross": 2_000_000, "salary": 2_000_000, "taxable_employment_income": 2_000_000,
                             "taxable_income": 2_000_000, "pit": 100_000, "net": 1_900_000,
                             "take_home": 1_900_000, "employer_cost": 2_000_000})]
            assert (slip["figures"]["net"], slip["totals"]["net"]) == (19_480_500, 21_380_500)
            assert (slip["totals"]["gross"], slip["totals"]["pit"]) == (24_000_000, 309_500)
        approve(world, NOVEMBER)
        with as_person(world, world.staff) as (staff, tenant):
            runs.mark_paid(staff, tenant, NOVEMBER)
        attend(world, "E04", date(2026, 12, 1), 22, 22)
        december = calculate(world, date(2026, 12, 1))
        with as_person(world, world.staff):
            december = runs.get_run(date(2026, 12, 1))
            assert december.payslips[0].content["arrears"] == []  # paid once, in November
            assert figures(december)["E04"]["net"] == 19_480_500


# --- after approval: the books and the bank ------------------------------------------------------------------

def test_the_journal_balances_and_equals_the_runs_totals_and_the_bank_file_pays_the_net(app, client):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        approve(world, NOVEMBER)
        all_ = totals_of(E01, E02, E03)
        with as_person(world, world.staff):
            run = runs.get_run(NOVEMBER)
            entry = db.session.get(Entry, run.entry_id)
            assert (entry.state, entry.source, entry.document_id, entry.entry_date) == (
                "posted", "payroll", run.summary_id, date(2026, 11, 30))
            assert sum(line.debit for line in entry.lines) == sum(line.credit for line in entry.lines)
            balances = {r.code: (r.debit, r.credit) for r in reports.trial_balance(date(2026, 11, 30),
                                                                                    since=NOVEMBER)}
            employer = all_["employer_contributions"] + all_["union_fee"]
            assert balances["6422"] == (all_["gross"] + employer, 0)
            assert balances["334"] == (all_["employee_contributions"] + all_["pit"], all_["gross"])
            assert balances["334"][1] - balances["334"][0] == all_["net"]  # 334 holds the net pay
            assert balances["3335"] == (0, all_["pit"])
            # 3383: BHXH 8 % of 30,000,000 + 50,600,000 + 20,000,000, and 17.5 % of the same for the employer
            assert balances["3383"] == (0, (2_400_000 + 4_048_000 + 1_600_000)
                                        + (5_100_000 + 150_000 + 8_602_000 + 253_000 + 3_400_000 + 100_000))
            assert balances["3384"] == (0, (450_000 + 759_000 + 300_000) + (900_000 + 1_518_000 + 600_000))
            assert balances["3385"] == (0, (300_000 + 600_000 + 200_000) * 2)
            assert balances["3382"] == (0, 600_000 + 1_012_000 + 400_000)
            for layout in bank_file.LAYOUTS:
                rows = list(csv.reader(io.StringIO(bank_file.bank_csv(run, layout).decode("utf-8-sig"))))
                amounts = [int(r[2 if layout == "generic" else 4]) for r in rows[1:]]
                assert sorted(amounts) == sorted([E01["take_home"], E02["take_home"], E03["take_home"]])
                assert sum(amounts) == all_["take_home"] == all_["net"] - 500_000
            vn = bank_file.bank_csv(run, "vn_salary").decode("utf-8-sig")
            assert vn.splitlines()[1].split(",")[2:] == ["NGUYEN VAN E01", "VIETCOMBANK", str(E01["take_home"]),
                                                        "SALARY 11/2026"]
            insurance = load_workbook(io.BytesIO(bank_file.summaries_xlsx(run, "insurance"))).active
            assert insurance.max_row == 5  # header, three employees, total
    login(client, world.client)
    page = client.get(f"/t/{world.slug}/payroll/runs/2026-11/bank-file.csv?layout=generic")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    assert sum(int(r[2]) for r in list(csv.reader(io.StringIO(page.data.decode())))[1:]) == all_["take_home"]
    with app.app_context(), as_person(world, world.staff):
        assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "payroll.exported",
                                                             AuditEvent.tenant_id == world.id))


def test_the_bank_file_and_summaries_wait_for_the_approval(app, client):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
    login(client, world.staff)
    assert client.get(f"/t/{world.slug}/payroll/runs/2026-11/bank-file.csv").status_code == 409
    assert client.get(f"/t/{world.slug}/payroll/runs/2026-11/pit.xlsx").status_code == 409


# --- the pages and the API -------------------------------------------------------------------------------------

def test_the_pages_refuse_illegal_moves_with_a_sentence_and_take_double_clicks(app, client):
    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
    login(client, world.staff)
    base = f"/t/{world.slug}/payroll/runs"
    token = csrf_token(client, base)
    assert client.post(base, data={"csrf_token": token, "month": "11/2026"}).status_code == 422
    assert client.post(base, data={"csrf_token": token, "month": "2026-11"}).status_code == 303
    assert client.post(base, data={"csrf_token": token, "month": "2026-11"}).status_code == 303  # the same run
    refused = client.post(f"{base}/2026-11/submit", data={"csrf_token": token, "reviewer": str(world.manager.id)})
    assert refused.status_code == 409 and b"Calculate the run" in refused.data
    typed = client.post(f"{base}/2026-11/calculate", data={"csrf_token": token, "pay_date": "2027-05-01"})
    assert typed.status_code == 422 and b'value="2027-05-01"' in typed.data  # kept as typed
    for _click in range(2):
        assert client.post(f"{base}/2026-11/calculate", data={"csrf_token": token}).status_code == 303
    page = client.get(f"{base}/2026-11")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    assert re.search(rb'data-testid="headcount">3<', page.data)
    with app.app_context(), as_person(world, world.staff):
        run = runs.get_run(NOVEMBER)
        assert run.version == 1  # the second click found the same figures
        slip_id = next(p.id for p in run.payslips if p.employee_code == "E03")
    slip = client.get(f"{base}/2026-11/payslips/{slip_id}")
    assert slip.status_code == 200 and b"18,207,272" in slip.data  # paid to E03, in its sentence and in words
    assert b"Eighteen million two hundred seven thousand two hundred seventy-two Vietnamese dong" in slip.data
    member = make_member(app, world)
    other = app.test_client()
    login(other, member)
    assert other.get(f"{base}/2026-11").status_code == 403  # a client member sees no salaries


def make_member(app, world):  # noqa: ANN001, ANN201
    with app.app_context():
        return make_person(Role.CLIENT_MEMBER, db.session.get(Tenant, world.id))


def test_another_tenants_run_is_not_found_on_the_pages_or_the_api(app, client):
    from portal.api.tokens import create_token
    from tenants.context import Scope, bound

    world, stranger = payroll_world(app), payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        with as_person(world, world.staff):
            slip_id = runs.get_run(NOVEMBER).payslips[0].id
        user = db.session.get(User, stranger.client.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({stranger.id}))):
            raw = create_token(user, db.session.get(Tenant, stranger.id), "payroll", "write")
    login(client, stranger.client)
    for path in ("", "/2026-11", f"/2026-11/payslips/{slip_id}", "/2026-11/bank-file.csv"):
        assert client.get(f"/t/{world.slug}/payroll/runs{path}").status_code == 404
    # Its own tenant's address with the other's month and payslip: not found either.
    assert client.get(f"/t/{stranger.slug}/payroll/runs/2026-11").status_code == 404
    assert client.get(f"/t/{stranger.slug}/payroll/runs/2026-11/payslips/{slip_id}").status_code == 404
    api = {"Authorization": f"Bearer {raw}"}
    assert client.get(f"/api/v1/tenants/{world.slug}/payroll/runs/2026-11", headers=api).status_code == 404
    assert client.get(f"/api/v1/tenants/{stranger.slug}/payroll/runs/2026-11", headers=api).status_code == 404


def test_the_api_lists_calculates_and_reads_a_run(app, client):
    from portal.api.tokens import create_token
    from tenants.context import Scope, bound

    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        user = db.session.get(User, world.staff.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({world.id}), role=Role.STAFF)):
            raw = create_token(user, db.session.get(Tenant, world.id), "payroll", "write")
    api = {"Authorization": f"Bearer {raw}"}
    base = f"/api/v1/tenants/{world.slug}/payroll/runs"
    assert client.get(base, headers=api).json == {"items": []}
    done = client.post(f"{base}/2026-11/calculate", json={"pay_date": "2026-12-05"}, headers=api)
    assert done.status_code == 200, done.json
    assert {k: done.json["totals"][k] for k in KEYS} == totals_of(E01, E02, E03)
    assert {p["code"]: p["net"] for p in done.json["payslips"]} == {"E01": E01["net"], "E02": E02["net"],
                                                                   "E03": E03["net"]}
    read = client.get(f"{base}/2026-11", headers=api).json
    assert (read["state"], read["pay_date"], read["headcount"]) == ("calculated", "2026-12-05", 3)
    assert [r["month"] for r in client.get(base, headers=api).json["items"]] == ["2026-11"]
    bad = client.post(f"{base}/2026-13/calculate", json={}, headers=api)
    assert bad.status_code == 404 and bad.mimetype == "application/problem+json"


# --- the statement --------------------------------------------------------------------------------------------

def test_the_statement_section_and_the_payslips_meter_count_the_approved_run(app):
    from portal.billing.meters import Window
    from portal.work.kpi import Month

    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        with as_person(world, world.staff) as (_user, tenant):
            window = Window.of(tenant, Month(2026, 11))
            assert runs.statement_section(window) is None  # not approved: no section
        approve(world, NOVEMBER)
        with as_person(world, world.staff) as (_user, tenant):
            window = Window.of(tenant, Month(2026, 12))  # approved today, in December
            section = runs.statement_section(Window.of(tenant, Month(2026, 11)))
            all_ = totals_of(E01, E02, E03)
            assert runs.statement_section(window) == section  # approved in December: December's statement too
            assert section == {"month": "2026-11", "label": "11/2026", "state": "approved", "headcount": 3,
                               "gross": all_["gross"],
                               "net": all_["net"], "take_home": all_["take_home"],
                               "employer_cost": all_["employer_cost"], "currency": "VND"}
            assert window.usage["payslips"] == 3
            assert window.usage["documents_received"] == 0  # the payslips and the summary are the portal's own
    with app.test_request_context():
        from flask import render_template

        from portal.billing.render import format_money

        html = render_template("billing/sections/payroll.html", section={"key": "payroll", "data": section},
                               money_in=lambda amount, currency: format_money(int(amount), currency, "en"))
        assert "Your payroll of 11/2026" in html and "₫134,621,363" in html


def test_the_client_admin_sets_the_bank_layout_and_the_payslips_language(app, client):
    world = payroll_world(app)
    login(client, world.client)
    url = f"/t/{world.slug}/payroll/run-settings"
    token = csrf_token(client, url)
    wrong = client.post(url, data={"csrf_token": token, "bank_layout": "nowhere", "payslip_language": "fr"})
    assert wrong.status_code == 422
    assert b"Choose one of the layouts listed" in wrong.data and b"Choose one of the languages listed" in wrong.data
    saved = client.post(url, data={"csrf_token": token, "bank_layout": "vn_salary", "payslip_language": "employee",
                                   "email_payslips": "1"})
    assert saved.status_code == 303
    with app.app_context(), as_person(world, world.client) as (_user, tenant):
        settings = runs.settings_of(tenant)
        assert (settings.bank_layout, settings.payslip_language, settings.email_payslips) == (
            "vn_salary", "employee", True)
        assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "payroll.settings_changed"))
    staff = app.test_client()
    login(staff, world.staff)
    assert staff.post(url, data={"csrf_token": csrf_token(staff, url), "bank_layout": "generic",
                                 "payslip_language": "vi"}).status_code == 403


def test_moves_made_on_the_task_page_are_followed_by_the_run(app):
    from portal.work import services as work

    world = payroll_world(app)
    with app.app_context():
        three_employees(world)
        calculate(world, NOVEMBER)
        with as_person(world, world.staff) as (staff, tenant):
            task_id = str(runs.submit(staff, tenant, NOVEMBER, str(world.manager.id)).task_id)
        with as_person(world, world.manager) as (manager, tenant):
            work.move(manager, tenant, task_id, "request_changes", reason="E03 worked 12 hours of overtime")
            assert runs.access_run(NOVEMBER).state == "calculated"
        with as_person(world, world.staff) as (staff, tenant):
            assert runs.submit(staff, tenant, NOVEMBER, str(world.manager.id)).state == "in_review"
        with as_person(world, world.manager) as (manager, tenant):
            work.move(manager, tenant, task_id, "approve")
            assert runs.access_run(NOVEMBER).state == "awaiting_approval"
        with as_person(world, world.client) as (client, tenant):
            work.move(client, tenant, task_id, "client_reject", reason="The bonus of E03 is wrong")
            assert runs.access_run(NOVEMBER).state == "calculated"
            actions = list(db.session.scalars(select(AuditEvent.action).where(
                AuditEvent.tenant_id == world.id, AuditEvent.action.like("payroll.run_%"))))
            assert {"payroll.run_changes_requested", "payroll.run_reviewed", "payroll.run_rejected"} <= set(actions)


def test_opening_the_first_run_puts_the_payroll_deadlines_on_the_filing_calendar(app):
    from portal.ledger import filing_services
    from portal.ledger.models import Book

    world = payroll_world(app)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        assert not db.session.scalar(select(Book.payroll))
        before = filing_services.calendar(tenant, date(2026, 11, 25))
        assert not [r for r in before.rows if r.deadline.rule.line == "payroll"]
        runs.open_run(user, tenant, NOVEMBER)
        runs.open_run(user, tenant, OCTOBER)  # a second run changes nothing more
        assert db.session.scalar(select(Book.payroll)) is True
        after = filing_services.calendar(tenant, date(2026, 11, 25))
        # Insurance is paid by the last day of the month after (Law on Social Insurance 2024): November's by 31/12.
        assert any(r.deadline.rule.line == "payroll" and r.deadline.due == date(2026, 12, 31) for r in after.rows)
        changes = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "ledger.filing_settings_changed")).all()
        assert [e.details["changes"] for e in changes] == [{"payroll": [False, True]}]

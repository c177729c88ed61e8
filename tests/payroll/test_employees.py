"""Payroll's people through the services, the pages and the API, against real PostgreSQL: employees sealed at rest
and masked everywhere, a reveal audited in the client's access log, forms that show every error at once, imports
through a preview that writes nothing until a valid file is confirmed (once, and only that file), the month's
attendance grid, and who may do what, with another tenant's employee not found.

Expected values are worked out here from what was typed and from the rules (the calendar, the masks), never read
back from the tables under test.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import create_engine, func, select, text

from portal.extensions import db
from portal.payroll import employees as services
from portal.payroll.models import Attendance, Employee, PayrollImport
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.fields import MAGIC
from tests.dataentry.test_fields import mst, wrong_digit
from tests.factories import as_person, csrf_token, login, make_world

NATIONAL_ID = "079123456789"
TAX_CODE = mst("031234567")
BANK = "0071000123456"
SALARY = 12_345_000
TRAP = '=HYPERLINK("https://evil.example/x", "Payslip")'


def _employee(tenant_id: uuid.UUID, person, code: str, **over) -> None:  # noqa: ANN001
    raw = {"code": code, "full_name": over.pop("full_name", f"Nguyễn Văn {code}"), "national_id": NATIONAL_ID,
           "tax_code": TAX_CODE, "bank_name": "Vietcombank", "bank_account": BANK, "contract_type": "indefinite",
           "contract_start": "2025-01-01", "region": "I", "base_salary": SALARY} | over
    with as_person(tenant_id, person) as (user, tenant):
        services.save_employee(user, tenant, raw, allowances=[
            {"name": "Meal", "amount": "730,000", "taxable": "0", "kind": "meal"},
            {"name": "Phone", "amount": "500000", "taxable": "1", "insurance_bearing": "0"}],
            dependants=[{"name": "Nguyễn Thị Con", "relation": "child", "from": "2026-03"}])


@pytest.fixture
def pw(app) -> SimpleNamespace:
    """Tenant A with employee NV001, tenant B with employee BETA-1 (a code A does not have)."""
    with app.app_context():
        world = make_world()
        _employee(world.a.id, world["staff"], "NV001")
        _employee(world.b.id, world["provider_admin"], "BETA-1", full_name="Beta Person", national_id="001099000111")
        return SimpleNamespace(world=world, a=world.a, b=world.b)


def _client(app, person):  # noqa: ANN001, ANN202
    client = app.test_client()
    login(client, person)
    return client


def _token(app, tenant_id: uuid.UUID, person) -> dict:  # noqa: ANN001
    from portal.api.tokens import create_token

    with app.app_context(), as_person(tenant_id, person) as (user, tenant):
        raw = create_token(user, tenant, "payroll", "write")
    return {"Authorization": f"Bearer {raw}"}


def _raw(db_urls, tenant_id, sql: str, **params):  # noqa: ANN001, ANN202
    """Rows as the database's owner reads them: the bytes at rest, nothing unsealed."""
    engine = create_engine(db_urls.owner)
    with engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant_id)})
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return rows


def _count(app, tenant_id, model) -> int:  # noqa: ANN001
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}))):
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.rollback()
        return n


def _events(app, tenant_id, action: str) -> list[dict]:  # noqa: ANN001
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}))):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        out = [dict(e.details) for e in rows]
        db.session.rollback()
        return out


def _hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


# --- at rest, in lists, in the API ------------------------------------------------------------------------------

def test_ids_accounts_and_salaries_are_ciphertext_at_rest(app, pw, db_urls):
    [(name, national, tax, account, salary, allowances)] = _raw(
        db_urls, pw.a.id, "select full_name, national_id, tax_code, bank_account, base_salary, allowances "
                          "from payroll_employees where code = 'NV001'")
    for value, clear in ((name, b"NV001"), (national, NATIONAL_ID.encode()), (tax, TAX_CODE.encode()),
                         (account, BANK.encode()), (salary, str(SALARY).encode()), (allowances, b"730000")):
        assert bytes(value).startswith(MAGIC) and clear not in bytes(value)
    [(dependant,)] = _raw(db_urls, pw.a.id, "select name from payroll_dependants")
    assert bytes(dependant).startswith(MAGIC) and "Nguyễn Thị Con".encode() not in bytes(dependant)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):  # and the portal reads them back
        employee = db.session.scalar(select(Employee).where(Employee.code == "NV001"))
        assert (employee.national_id, employee.base_salary, employee.dependants_in(date(2026, 3, 1))) == (
            NATIONAL_ID, SALARY, 1)
        db.session.rollback()


def test_the_list_the_page_and_the_api_show_them_masked(app, pw):
    staff = _client(app, pw.world["staff"])
    for url in (f"/t/{pw.a.slug}/payroll/employees", f"/t/{pw.a.slug}/payroll/employees/NV001"):
        page = html.unescape(staff.get(url).get_data(as_text=True))
        assert "•••• 6789" in page and "•••• 3456" in page  # the national id's and the account's last four
        assert "12,•••,000" in page  # 12,345,000: the first and last groups only
        for clear in (NATIONAL_ID, BANK, TAX_CODE, "12,345,000", "12345000"):
            assert clear not in page, clear
    assert "private, no-store" in staff.get(f"/t/{pw.a.slug}/payroll/employees").headers["Cache-Control"]

    api = app.test_client()
    headers = _token(app, pw.a.id, pw.world["a_client_admin"])
    listed = api.get(f"/api/v1/tenants/{pw.a.slug}/payroll/employees", headers=headers)
    assert listed.status_code == 200
    [item] = listed.json["items"]
    assert (item["code"], item["national_id"], item["bank_account"], item["base_salary"]) == (
        "NV001", "•••• 6789", "•••• 3456", "12,•••,000")
    assert [a["amount"] for a in item["allowances"]] == ["•••,000", "•••,000"]
    assert item["dependants"] == [{"name": "Nguyễn Thị Con", "relation": "child", "from": "2026-03", "to": None}]
    one = api.get(f"/api/v1/tenants/{pw.a.slug}/payroll/employees/NV001", headers=headers)
    assert one.json == item
    body = listed.get_data(as_text=True) + one.get_data(as_text=True)
    assert NATIONAL_ID not in body and BANK not in body and "12345000" not in body and TAX_CODE not in body


def test_masks_by_locale():
    assert services.masked_amount(12_345_000, "en") == "12,•••,000"
    assert services.masked_amount(12_345_000, "vi") == "12.•••.000"
    assert services.masked_amount(1_234_567_890, "en") == "1,•••,•••,890"
    assert services.masked_amount(730_000, "en") == "•••,000"
    assert services.masked_amount(900, "en") == "•••"
    assert services.masked_id("0071000123456") == "•••• 3456" and services.masked_id(None) == ""


# --- reveal ----------------------------------------------------------------------------------------------------

def test_a_reveal_shows_the_value_once_is_audited_and_the_client_reads_it_in_its_access_log(app, pw):
    staff = _client(app, pw.world["staff"])
    url = f"/t/{pw.a.slug}/payroll/employees/NV001"
    token = csrf_token(staff, url)
    shown = staff.post(f"{url}/reveal", data={"field": "national_id", "csrf_token": token})
    assert shown.status_code == 200 and "no-store" in shown.headers["Cache-Control"]
    assert NATIONAL_ID in shown.get_data(as_text=True)
    assert NATIONAL_ID not in staff.get(url).get_data(as_text=True)  # once: the next visit is masked again
    salary = html.unescape(staff.post(f"{url}/reveal", data={"field": "salary", "csrf_token": token})
                           .get_data(as_text=True))
    assert "12,345,000" in salary and "730,000" in salary

    events = _events(app, pw.a.id, "payroll.field_revealed")
    assert [(e["field"], e["code"]) for e in events] == [("national_id", "NV001"), ("salary", "NV001")]
    assert all(NATIONAL_ID not in str(e) and "12345000" not in str(e) for e in events)

    log = html.unescape(_client(app, pw.world["a_client_admin"]).get(f"/t/{pw.a.slug}/access-log?kind=payroll")
                        .get_data(as_text=True))
    assert "looked at an employee's masked payroll detail in full “NV001” (National id (CCCD))" in log
    assert "(Salary)" in log and NATIONAL_ID not in log

    approver = _client(app, pw.world["a_client_approver"])
    assert approver.get(url).status_code == 200  # reads the employee, masked
    assert approver.post(f"{url}/reveal", data={"field": "national_id",
                                               "csrf_token": csrf_token(approver, url)}).status_code == 403


# --- the forms -------------------------------------------------------------------------------------------------

def test_the_form_shows_every_error_at_once_keeps_what_was_typed_and_saves_nothing(app, pw):
    staff = _client(app, pw.world["staff"])
    new = f"/t/{pw.a.slug}/payroll/employees/new"
    typed = {"csrf_token": csrf_token(staff, new), "code": "NV002", "full_name": "Trần Thị B",
             "national_id": "07912345678", "tax_code": wrong_digit(TAX_CODE), "bank_account": "VCB-12AB",
             "contract_type": "fixed", "contract_start": "2026-06-01", "contract_end": "2026-05-31",
             "probation_end": "2026-09-01", "region": "II", "base_salary": "12,5", "resident": "1",
             "allowance_count": "1", "allowance-1-name": "Fuel", "allowance-1-amount": "abc",
             "dependant_count": "1", "dependant-1-name": "Con", "dependant-1-from": "2026-05",
             "dependant-1-to": "2026-04", "then": "save"}
    r = staff.post(f"/t/{pw.a.slug}/payroll/employees", data=typed)
    assert r.status_code == 422
    page = html.unescape(r.get_data(as_text=True))
    wrong = set(re.findall(r'data-testid="error-([a-z0-9_-]+)"', page))
    assert wrong == {"national_id", "tax_code", "bank_account", "contract_end", "base_salary", "allowance-1-amount",
                     "dependant-1-to"}
    assert "A national id (CCCD) is 12 digits" in page and "last digit does not check" in page
    assert "The contract ends after it starts" in page and "whole đồng" in page
    assert "7 things need correcting" in page
    for value in ("07912345678", "VCB-12AB", "Trần Thị B", "12,5", "abc", "2026-05-31"):
        assert f'value="{value}"' in page, value
    assert _count(app, pw.a.id, Employee) == 1

    # The probation must fall within the contract, a fixed term has an end within 36 months.
    with app.app_context(), as_person(pw.a.id, pw.world["staff"]) as (user, tenant):
        with pytest.raises(services.PayrollError) as refused:
            services.save_employee(user, tenant, {**{k: v for k, v in typed.items() if k in services.FIELDS},
                                                  "national_id": NATIONAL_ID, "tax_code": TAX_CODE,
                                                  "bank_account": BANK, "base_salary": "12,000,000",
                                                  "contract_end": "2029-06-01", "probation_end": "2026-05-01"})
        assert set(refused.value.errors) == {"contract_end", "probation_end"}
        assert "36 months" in refused.value.errors["contract_end"]


def test_adding_then_editing_keeps_the_masked_fields_left_empty_and_audits_field_names_only(app, pw):
    staff = _client(app, pw.world["staff"])
    new = f"/t/{pw.a.slug}/payroll/employees/new"
    r = staff.post(f"/t/{pw.a.slug}/payroll/employees", data={
        "csrf_token": csrf_token(staff, new), "code": "NV002", "full_name": "Trần Thị B",
        "national_id": "001 099 012 345", "tax_code": "001099012345", "bank_account": "1903 5555 0000 12",
        "contract_type": "probation",
        "contract_start": "01/06/2026", "probation_end": "2026-07-31", "region": "III", "base_salary": "9.000.000",
        "active": "1", "allowance_count": "1", "allowance-1-name": "Ăn trưa", "allowance-1-amount": "730000",
        "allowance-1-kind": "meal", "dependant_count": "1", "then": "save"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/payroll/employees/NV002")
    edit = f"/t/{pw.a.slug}/payroll/employees/NV002/edit"
    form = staff.get(edit).get_data(as_text=True)
    assert "001099012345" not in form and "9.000.000" not in form and "9,000,000" not in form  # never in a form
    fields = _hidden(form)
    fields.update({"full_name": "Trần Thị Bình", "contract_type": "probation", "contract_start": "2026-06-01",
                   "probation_end": "2026-07-31", "region": "III", "active": "1", "allowance-1-name": "Ăn trưa",
                   "allowance-1-kind": "meal", "then": "save"})
    assert fields["allowance-1-keep"] == "0"
    r = staff.post(edit, data=fields)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):
        e = db.session.scalar(select(Employee).where(Employee.code == "NV002"))
        assert (e.full_name, e.national_id, e.tax_code, e.bank_account, e.base_salary, e.contract_start) == (
            "Trần Thị Bình", "001099012345", "001099012345", "19035555000012", 9_000_000, date(2026, 6, 1))
        assert e.allowances == [{"name": "Ăn trưa", "amount": 730_000, "taxable": False, "insurance_bearing": False,
                                 "kind": "meal"}]
        db.session.rollback()
    saved = [e for e in _events(app, pw.a.id, "payroll.employee_saved") if e["code"] == "NV002"]
    assert [(e["created"], e["fields"]) for e in saved][1] == (False, ["full_name"])
    assert "Trần" not in str(saved[1]) and "001099012345" not in str(saved)


# --- imports ---------------------------------------------------------------------------------------------------

def _csv(rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


HEADER = ["code", "full_name", "national_id", "tax_code", "bank_account", "contract_type", "contract_start",
          "contract_end", "base_salary"]


def _upload(client, url: str, content: bytes, name: str = "people.csv"):  # noqa: ANN001, ANN202
    return client.post(url, data={"csrf_token": csrf_token(client, url), "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_an_import_preview_names_every_error_by_row_and_column_and_writes_nothing(app, pw):
    staff = _client(app, pw.world["staff"])
    url = f"/t/{pw.a.slug}/payroll/import/employees"
    bad = _csv([HEADER + ["shoe_size"],
                ["NV003", "Lê Văn C", "079123456780", TAX_CODE, "123456789", "indefinite", "2026-01-05", "", "8000000",
                 "42"],
                ["NV004", "Phạm D", "12345", "", "12-AB", "fixed", "31/02/2026", "", "7,000,000", ""],
                ["NV003", "Lê Văn C again", "", "", "", "indefinite", "2026-01-05", "", "8000000", ""],
                ["NV001", "", "", "", "", "", "", "2024-01-01", "", ""]])
    r = _upload(staff, url, bad)
    assert r.status_code == 422
    page = html.unescape(r.get_data(as_text=True))
    found = sorted((int(row) if row else 0, column) for row, column in
                   re.findall(r'data-testid="import-error" data-row="([0-9]*)" data-column="([a-z_]*)"', page))
    assert found == [(1, "shoe_size"), (3, "bank_account"), (3, "contract_end"), (3, "contract_start"),
                     (3, "national_id"), (4, "code"), (5, "contract_end")]
    assert "J · <code>shoe_size</code>" in page and "C · <code>national_id</code>" in page  # column letters
    assert "NV003 is on row 2 already" in page
    assert 'data-status="new" data-code="NV003"' in page  # the good row says what it would do
    assert _count(app, pw.a.id, Employee) == 1 and _count(app, pw.a.id, PayrollImport) == 0  # nothing written


def test_a_fixed_file_imports_exactly_once_and_only_that_file(app, pw, db_urls):
    staff = _client(app, pw.world["staff"])
    url = f"/t/{pw.a.slug}/payroll/import/employees"
    good = _csv([HEADER + ["region"],
                 ["NV003", "Lê Văn C", "079123456780", TAX_CODE, "123456789", "indefinite", "2026-01-05", "", "8000000",
                  "II"],
                 ["NV001", "", "", "", "", "", "", "", "13,000,000", ""]])
    r = _upload(staff, url, good)
    assert r.status_code == 303
    preview_url = r.headers["Location"]
    page = html.unescape(staff.get(preview_url).get_data(as_text=True))
    assert 'data-status="new" data-code="NV003"' in page and 'data-status="changed" data-code="NV001"' in page
    assert "Changes: Base salary" in page and "1 new, 1 changed, 0 the same, 0 with errors" in page
    import hashlib

    digest = hashlib.sha256(good).hexdigest()
    assert digest in page
    [(content, name)] = _raw(db_urls, pw.a.id, "select content, filename from payroll_imports")
    assert bytes(content).startswith(MAGIC) and b"079123456780" not in bytes(content)  # kept sealed
    assert b"people.csv" not in bytes(name)
    form = _hidden(page)
    assert form["sha256"] == digest and _count(app, pw.a.id, Employee) == 1  # nothing written before confirming

    apply_url = preview_url + "/apply"
    other = dict(form, sha256=hashlib.sha256(good + b"\n").hexdigest())  # another file's digest
    refused = staff.post(apply_url, data=other)
    assert refused.status_code == 303 and _count(app, pw.a.id, Employee) == 1
    assert "This is not the file whose preview was shown" in html.unescape(
        staff.get(refused.headers["Location"]).get_data(as_text=True))
    assert staff.post(apply_url, data=dict(form, plan="0" * 64)).status_code == 303  # a plan it did not show
    assert _count(app, pw.a.id, Employee) == 1

    done = staff.post(apply_url, data=form)
    assert done.status_code == 303 and done.headers["Location"].endswith("/payroll/employees")
    again = staff.post(apply_url, data=form)  # a double click
    assert again.status_code == 303
    assert "imported already" in html.unescape(staff.get(again.headers["Location"]).get_data(as_text=True))
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):
        people = {e.code: e for e in db.session.scalars(select(Employee))}
        assert sorted(people) == ["NV001", "NV003"]
        assert (people["NV001"].base_salary, people["NV001"].national_id) == (13_000_000, NATIONAL_ID)  # kept
        assert (people["NV003"].region, people["NV003"].base_salary, people["NV003"].bank_account) == (
            "II", 8_000_000, "123456789")
        assert db.session.scalar(select(PayrollImport)).content is None  # dropped once applied
        db.session.rollback()
    [event] = _events(app, pw.a.id, "payroll.import_applied")
    assert (event["new"], event["changed"], event["rows"]) == (1, 1, {"NV003": "new", "NV001": ["base_salary"]})
    assert "13000000" not in str(event)


def test_an_xlsx_file_imports_too_and_the_templates_never_hold_a_formula(app, pw):
    with app.app_context(), as_person(pw.a.id, pw.world["staff"]) as (user, tenant):
        services.save_employee(user, tenant, {"full_name": TRAP}, code="NV001")
    staff = _client(app, pw.world["staff"])
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["NV005", "Đỗ E", 79123456781, None, 12345678, "Indefinite term", date(2026, 2, 1), None, 9500000.0])
    out = io.BytesIO()
    book.save(out)
    r = _upload(staff, f"/t/{pw.a.slug}/payroll/import/employees", out.getvalue(), "people.xlsx")
    assert r.status_code == 422  # the id lost its leading zero in a number cell: 11 digits
    assert 'data-row="2" data-column="national_id"' in r.get_data(as_text=True)

    templates = f"/t/{pw.a.slug}/payroll/import/attendance/2026-01/template"
    sheet = load_workbook(io.BytesIO(staff.get(templates + ".xlsx").data)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("code", "name", "working_days", "days_worked", "paid_leave", "unpaid_leave")
    assert rows[1][:3] == ("NV001", "'" + TRAP, 21)  # text, never a formula; January 2026's working days
    assert sheet.cell(row=2, column=2).data_type == "s"
    listed = list(csv.reader(io.StringIO(staff.get(templates + ".csv").data.decode("utf-8-sig"))))
    assert listed[1][:3] == ["NV001", "'" + TRAP, "21"]
    assert staff.get(f"/t/{pw.a.slug}/payroll/import/employees/template.csv").data.decode("utf-8-sig").startswith(
        "code,full_name,email,national_id")


# --- attendance ------------------------------------------------------------------------------------------------

def test_working_days_come_from_vietnams_calendar():
    # January 2026: 22 weekdays (Thursday 1st to Saturday 31st), less New Year's Day -> 21.
    assert services.working_days(date(2026, 1, 1)).count == 21
    # February 2026: 20 weekdays, less Tết (16-20 February, Monday to Friday) -> 15.
    assert services.working_days(date(2026, 2, 1)).count == 15
    # A year without a holiday table: Monday to Friday (March 2040 has 22 weekdays).
    assert services.working_days(date(2040, 3, 1)) == services.WorkingDays(22, (), False)


def test_the_grid_saves_the_whole_month_or_nothing_with_every_error(app, pw):
    with app.app_context(), as_person(pw.a.id, pw.world["staff"]) as (user, tenant):
        services.save_employee(user, tenant, {"code": "NV002", "full_name": "Trần B", "contract_type": "indefinite",
                                              "contract_start": "2025-06-01", "base_salary": "9000000"})
    staff = _client(app, pw.world["staff"])
    url = f"/t/{pw.a.slug}/payroll/attendance/2026-01"
    page = staff.get(url).get_data(as_text=True)
    typed = _hidden(page)
    assert typed.get("code") in ("NV001", "NV002")
    assert 'name="r-NV001-working_days" value="21"' in page  # the calendar's count by default
    codes = ["NV001", "NV002"]
    wrong = {"csrf_token": typed["csrf_token"], "code": codes,
             "r-NV001-working_days": "21", "r-NV001-days_worked": "20", "r-NV001-paid_leave": "2",
             "r-NV001-ot_weekday": "ten", "r-NV002-working_days": "21", "r-NV002-unpaid_leave": "1,5",
             "r-NV002-bonus": "1.500.000", "r-NV002-deduction": "-5"}
    r = staff.post(url, data=wrong)
    assert r.status_code == 422
    body = html.unescape(r.get_data(as_text=True))
    assert set(re.findall(r'data-testid="error-(r-[A-Z0-9]+-[a-z_]+)"', body)) == {
        "r-NV001-days_worked", "r-NV001-ot_weekday", "r-NV002-deduction"}
    assert "Days worked 20 + paid leave 2 + unpaid leave 0 make 22, but there are 21 working days" in body
    assert 'value="ten"' in body and 'value="1,5"' in body  # what was typed stays
    assert _count(app, pw.a.id, Attendance) == 0

    right = {**wrong, "r-NV001-days_worked": "19", "r-NV001-ot_weekday": "12.5", "r-NV002-deduction": "500,000"}
    assert staff.post(url, data=right).status_code == 303
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):
        rows = {a.employee.code: a for a in db.session.scalars(select(Attendance))}
        one, two = rows["NV001"], rows["NV002"]
        assert (one.days_worked, one.paid_leave, one.overtime, one.source) == (
            Decimal(19), Decimal(2), {"weekday": "12.5"}, "keyed")
        assert (two.days_worked, two.unpaid_leave, two.bonuses, two.deductions) == (
            Decimal("19.5"), Decimal("1.5"), [{"name": "Bonus", "amount": 1_500_000}],
            [{"name": "Deduction", "amount": 500_000}])
        db.session.rollback()
    [event] = _events(app, pw.a.id, "payroll.attendance_saved")
    assert (event["month"], sorted(event["created"]), event["changed"]) == ("2026-01", codes, [])
    assert staff.post(url, data=right).status_code == 303  # the same again: nothing changes, nothing audited
    assert len(_events(app, pw.a.id, "payroll.attendance_saved")) == 1


def test_a_timesheet_imports_through_its_preview(app, pw):
    staff = _client(app, pw.world["staff"])
    url = f"/t/{pw.a.slug}/payroll/import/attendance/2026-01"
    header = ["code", "name", "working_days", "days_worked", "paid_leave", "unpaid_leave", "ot_weekday", "bonus"]
    bad = _csv([header, ["NV001", "x", "", "22", "", "", "4", ""], ["NV999", "", "", "", "", "", "", ""]])
    r = _upload(staff, url, bad, "sheet.csv")
    assert r.status_code == 422
    found = re.findall(r'data-row="([0-9]+)" data-column="([a-z_]+)"', r.get_data(as_text=True))
    assert found == [("2", "days_worked"), ("3", "code")]
    assert _count(app, pw.a.id, Attendance) == 0
    good = _csv([header, ["NV001", "x", "", "20", "1", "", "4", "2,000,000"]])
    r = _upload(staff, url, good, "sheet.csv")
    assert r.status_code == 303
    form = _hidden(staff.get(r.headers["Location"]).get_data(as_text=True))
    assert staff.post(r.headers["Location"] + "/apply", data=form).status_code == 303
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):
        [row] = db.session.scalars(select(Attendance)).all()
        assert (row.month, row.working_days, row.days_worked, row.paid_leave, row.overtime, row.bonuses,
                row.source) == (date(2026, 1, 1), Decimal(21), Decimal(20), Decimal(1), {"weekday": "4"},
                                [{"name": "Bonus", "amount": 2_000_000}], "import")
        db.session.rollback()


# --- who may ---------------------------------------------------------------------------------------------------

def test_another_tenants_employee_is_not_found(app, pw):
    staff = _client(app, pw.world["staff"])
    for url in (f"/t/{pw.a.slug}/payroll/employees/BETA-1", f"/t/{pw.a.slug}/payroll/employees/BETA-1/edit"):
        r = staff.get(url)
        assert r.status_code == 404 and "Beta Person" not in r.get_data(as_text=True)
    token = csrf_token(staff, f"/t/{pw.a.slug}/payroll/employees")
    assert staff.post(f"/t/{pw.a.slug}/payroll/employees/BETA-1/reveal",
                      data={"field": "national_id", "csrf_token": token}).status_code == 404
    assert staff.get(f"/t/{pw.b.slug}/payroll/employees/BETA-1").status_code == 404  # not assigned to B
    api = app.test_client()
    headers = _token(app, pw.a.id, pw.world["a_client_admin"])
    assert api.get(f"/api/v1/tenants/{pw.a.slug}/payroll/employees/BETA-1", headers=headers).status_code == 404
    assert api.get(f"/api/v1/tenants/{pw.b.slug}/payroll/employees/BETA-1", headers=headers).status_code == 404
    assert _events(app, pw.a.id, "payroll.field_revealed") == []


def test_client_roles_read_but_never_keep(app, pw):
    admin = _client(app, pw.world["a_client_admin"])
    base = f"/t/{pw.a.slug}/payroll"
    assert admin.get(f"{base}/employees").status_code == 200
    assert admin.get(f"{base}/attendance/2026-01").status_code == 200
    token = csrf_token(admin, f"{base}/employees")
    for url in (f"{base}/employees/new", f"{base}/employees/NV001/edit", f"{base}/import/employees"):
        assert admin.get(url).status_code == 403, url
    assert admin.post(f"{base}/employees", data={"csrf_token": token, "code": "X1"}).status_code == 403
    assert admin.post(f"{base}/attendance/2026-01", data={"csrf_token": token, "code": "NV001"}).status_code == 403
    grid = admin.get(f"{base}/attendance/2026-01").get_data(as_text=True)
    assert 'name="r-NV001-working_days"' not in grid  # read only
    member = _client(app, pw.world["a_client_member"])
    assert member.get(f"{base}/employees").status_code == 403
    assert "/payroll/employees" not in member.get(f"/t/{pw.a.slug}/").get_data(as_text=True)  # no link either
    api = app.test_client()
    headers = _token(app, pw.a.id, pw.world["a_client_admin"])
    assert api.put(f"/api/v1/tenants/{pw.a.slug}/payroll/attendance/2026-01", headers=headers,
                   json={"rows": [{"code": "NV001"}]}).status_code == 403
    assert api.post(f"/api/v1/tenants/{pw.a.slug}/payroll/employees", headers=headers, json={}).status_code == 403
    assert _count(app, pw.a.id, Attendance) == 0


# --- the API ---------------------------------------------------------------------------------------------------

def test_the_api_adds_employees_and_keys_a_month_with_every_error_at_once(app, pw):
    api = app.test_client()
    headers = _token(app, pw.a.id, pw.world["staff"])
    base = f"/api/v1/tenants/{pw.a.slug}/payroll"
    body = {"code": "API-7", "full_name": "Võ G", "national_id": "079123456782", "contract_type": "fixed",
            "contract_start": "2026-01-01", "contract_end": "2026-12-31", "base_salary": 15_000_000,
            "allowances": [{"name": "Meal", "amount": 730_000, "taxable": False, "kind": "meal"}],
            "dependants": [{"name": "Võ H", "relation": "child", "from": "2026-01", "to": "2026-06"}]}
    wrong = api.post(f"{base}/employees", headers=headers, json={**body, "national_id": "123", "contract_end":
                                                                 "2025-12-31", "allowances": [{"name": "Meal",
                                                                                               "amount": 1,
                                                                                               "kind": "lunch"}]})
    assert wrong.status_code == 422
    assert set(wrong.json["errors"]) == {"national_id", "contract_end", "allowance-1-kind"}
    made = api.post(f"{base}/employees", headers=headers, json=body)
    assert made.status_code == 201, made.json
    assert (made.json["national_id"], made.json["base_salary"]) == ("•••• 6782", "15,•••,000")
    assert api.post(f"{base}/employees", headers=headers, json=body).status_code == 409

    rows = {"rows": [{"code": "API-7", "days_worked": 20, "paid_leave": "1", "overtime": {"weekday": 8, "night": "2.5"},
                      "bonuses": [{"name": "Sales", "amount": 1_000_000}, {"name": "Tết", "amount": 500_000}]},
                     {"code": "NV001", "working_days": 21, "days_worked": 22},
                     {"code": "NOPE"}]}
    refused = api.put(f"{base}/attendance/2026-01", headers=headers, json=rows)
    assert refused.status_code == 422
    assert set(refused.json["errors"]) == {"rows[1].days_worked", "rows[2].code"}
    assert _count(app, pw.a.id, Attendance) == 0
    rows["rows"] = rows["rows"][:1]
    saved = api.put(f"{base}/attendance/2026-01", headers=headers, json=rows)
    assert saved.status_code == 200
    assert saved.json == {"month": "2026-01", "created": ["API-7"], "changed": [], "unchanged": 0}
    assert api.put(f"{base}/attendance/2026-13", headers=headers, json=rows).status_code == 404
    with app.app_context(), bound(Scope(tenant_ids=frozenset({pw.a.id}))):
        [row] = db.session.scalars(select(Attendance)).all()
        assert (row.working_days, row.overtime, [b["amount"] for b in row.bonuses]) == (
            Decimal(21), {"weekday": "8", "night": "2.5"}, [1_000_000, 500_000])
        db.session.rollback()
    # The grid shows their sum, read-only: one amount cannot stand for two items.
    page = _client(app, pw.world["staff"]).get(f"/t/{pw.a.slug}/payroll/attendance/2026-01").get_data(as_text=True)
    assert re.search(r'name="r-API-7-bonus" value="1,500,000"[^>]*readonly', page)
    read = html.unescape(_client(app, pw.world["a_client_approver"]).get(f"/t/{pw.a.slug}/payroll/attendance/2026-01")
                         .get_data(as_text=True))
    assert "1,•••,000" in read and "1,500,000" not in read  # the client's readers see it masked

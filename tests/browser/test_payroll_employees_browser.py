"""Payroll's people in a real browser: staff read the employees masked and show one value in full, check a file
of employees whose preview names every error (nothing imported), and key a month's attendance with the keyboard
(Enter down a column, Ctrl+Enter saves; a refusal keeps what was typed and puts the focus on the first error).
Each page at 1280 and 390 px, in English and Vietnamese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.payroll import employees as services
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.steps import look_at, sign_in, switch_language
from tests.browser.test_intake_browser import _tenant_with_staff
from tests.dataentry.test_fields import mst

pytestmark = pytest.mark.browser

TAX_CODE = mst("031234567")
BAD_FILE = ("code,full_name,national_id,bank_account,contract_type,contract_start,base_salary,shoe_size\n"
            "NV003,Lê Văn C,079123456780,123456789,indefinite,2026-01-05,8000000,42\n"
            "NV004,Phạm D,12345,12-AB,fixed,31/02/2026,\"7,000,000\",\n").encode()


def _setup(app: Flask):  # noqa: ANN202 - (slug, client admin, staff)
    tenant_id, slug, client, staff = _tenant_with_staff(app)
    with app.app_context():
        user = db.session.get(User, staff.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=Role.STAFF)):
            tenant = db.session.get(Tenant, tenant_id)
            for code, name, national_id, salary in (("NV001", "Nguyễn Văn An", "079123456789", 12_345_000),
                                                    ("NV002", "Trần Thị Bình", "001099012345", 9_000_000)):
                services.save_employee(user, tenant, {
                    "code": code, "full_name": name, "national_id": national_id, "tax_code": TAX_CODE,
                    "bank_name": "Vietcombank", "bank_account": "0071000123456", "contract_type": "indefinite",
                    "contract_start": "2025-01-01", "base_salary": salary},
                    allowances=[{"name": "Ăn trưa", "amount": "730000", "taxable": "0", "kind": "meal"}],
                    dependants=[{"name": "Nguyễn Thị Con", "relation": "child", "from": "2026-03"}])
        db.session.rollback()
    return slug, client, staff


def _both_widths(page: Page, screenshot_dir: Path, name: str) -> None:
    """A page that a language switch would leave (a posted form's answer): both widths, as it is."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= size["width"], f"{name} at {label}"
        page.screenshot(path=str(screenshot_dir / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_staff_read_employees_masked_check_an_import_and_key_a_month(app: Flask, page: Page,
                                                                      screenshot_dir: Path) -> None:
    slug, client, staff = _setup(app)
    sign_in(page, staff)
    page.goto(f"/t/{slug}/")
    page.get_by_role("link", name="Payroll").click()
    employees = page.get_by_test_id("employees")
    expect(employees.locator("tr[data-code='NV001'] td[data-field='base_salary']")).to_have_text("12,•••,000")
    expect(employees.locator("tr[data-code='NV001'] td[data-field='national_id']")).to_have_text("•••• 6789")
    expect(employees).not_to_contain_text("079123456789")
    look_at(page, screenshot_dir, "payroll-employees", lambda: expect(employees).to_be_visible())

    page.get_by_role("link", name="NV001").click()
    expect(page.get_by_test_id("dependants")).to_contain_text("03/2026")
    look_at(page, screenshot_dir, "payroll-employee", lambda: expect(page.get_by_test_id("pay")).to_be_visible())
    page.get_by_test_id("reveal-national_id").click()
    expect(page.get_by_test_id("revealed-national_id")).to_have_text("079123456789")
    expect(page.get_by_test_id("reveal-note")).to_contain_text("access log")
    _both_widths(page, screenshot_dir, "payroll-employee-revealed")
    page.goto(f"/t/{slug}/payroll/employees/NV001")  # shown once: opened again, it is masked
    expect(page.locator("[data-field='national_id']")).to_have_text("•••• 6789")
    page.get_by_test_id("edit-employee").click()
    expect(page.locator("#national_id")).to_have_value("")  # never in a form: empty keeps it
    expect(page.locator("#national_id")).to_have_attribute("placeholder", "•••• 6789")
    look_at(page, screenshot_dir, "payroll-employee-form",
            lambda: expect(page.get_by_test_id("employee-form")).to_be_visible())

    # A file with errors: every one by row and column, nothing imported; in English, then in Vietnamese.
    for lang in ("en", "vi"):
        page.goto(f"/t/{slug}/payroll/import/employees")
        if lang == "vi":
            switch_language(page, "vi")
        page.locator("#import-file").set_input_files(files=[{"name": "nhan-vien.csv", "mimeType": "text/csv",
                                                             "buffer": BAD_FILE}])
        page.get_by_test_id("upload").click()
        errors = page.get_by_test_id("import-error")
        expect(errors).to_have_count(5)  # shoe_size; row 3: national id, bank account, start, end (fixed term)
        expect(page.locator("[data-testid='import-error'][data-row='3'][data-column='national_id']")).to_be_visible()
        expect(page.locator("tr[data-status='new'][data-code='NV003']")).to_be_visible()
        expect(page.get_by_test_id("apply")).to_have_count(0)
        _both_widths(page, screenshot_dir, f"payroll-import-errors-{lang}")
    switch_language(page, "en")
    page.goto(f"/t/{slug}/payroll/employees")
    expect(page.get_by_test_id("employees").locator("tbody tr")).to_have_count(2)

    # The month's grid, keyed with the keyboard only.
    page.goto(f"/t/{slug}/payroll/attendance/2026-01")
    expect(page.get_by_test_id("working-days")).to_contain_text("21 working days")
    look_at(page, screenshot_dir, "payroll-attendance",
            lambda: expect(page.get_by_test_id("attendance-grid")).to_be_visible())
    first = page.locator("#r-NV001-paid_leave")
    first.focus()
    page.keyboard.type("2")
    page.keyboard.press("Enter")  # down the column: NV002's paid leave
    expect(page.locator("#r-NV002-paid_leave")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("25")  # NV002's days worked: 25 + 0 are not 21
    page.keyboard.press("ArrowUp")
    expect(page.locator("#r-NV001-days_worked")).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("grid-errors")).to_contain_text("1 thing needs correcting")
    expect(page.locator("#r-NV002-days_worked")).to_be_focused()  # the first error has the focus
    expect(page.locator("#r-NV001-paid_leave")).to_have_value("2")  # what was typed stays
    _both_widths(page, screenshot_dir, "payroll-attendance-refused")
    page.keyboard.press("Control+A")
    page.keyboard.type("21")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".flash")).to_contain_text("2 employees' months changed")
    expect(page.locator("#r-NV001-days_worked")).to_have_value("19")  # 21 less 2 days of paid leave
    expect(page.locator("#r-NV002-days_worked")).to_have_value("21")
    assert re.search(r"/payroll/attendance/2026-01$", page.url)

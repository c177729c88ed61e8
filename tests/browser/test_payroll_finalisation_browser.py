"""The income tax finalisation in a real browser: the staff member and the client open the year's page, totals
first, an employee's working opened without script, the summary downloaded; the empty year says what to do. Each
page at both widths and in both languages, never wider than the window."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.browser.steps import look_at, sign_in
from tests.payroll.test_finalisation import A01, TOTALS, _world

pytestmark = pytest.mark.browser


def _vnd(amount: int) -> re.Pattern:
    """An amount as English (5,131,150) or Vietnamese (5.131.150) pages write it."""
    return re.compile(f"{amount:,}".replace(",", "[.,]"))


def test_the_year_is_read_by_staff_and_client_at_both_widths(app: Flask, page: Page, screenshot_dir: Path) -> None:
    world = _world(app)
    url = f"/t/{world.slug}/payroll/finalisation/2026"

    sign_in(page, world.staff)
    page.goto(f"/t/{world.slug}/payroll/runs")
    page.get_by_test_id("finalisation-link").get_by_role("link").click()  # the pay runs list links it
    expect(page.locator("main h1")).to_contain_text("Income tax finalisation")
    page.goto(url)
    expect(page.get_by_test_id("total-tax-due")).to_contain_text(_vnd(TOTALS["tax_due"]))
    expect(page.get_by_test_id("provisional")).to_contain_text("11/2026")

    def totals_and_rows() -> None:
        expect(page.get_by_test_id("total-withheld")).to_contain_text(_vnd(TOTALS["tax_withheld"]))
        expect(page.get_by_test_id("total-to-refund")).to_contain_text(_vnd(TOTALS["to_refund"]))
        expect(page.get_by_test_id("due-A01")).to_contain_text(_vnd(A01["tax_due"]))
        expect(page.get_by_test_id("apart")).to_be_visible()

    look_at(page, screenshot_dir, "payroll-finalisation", totals_and_rows)
    # An employee's working, opened with its summary (details: no script needed; a language switch reloads the
    # page closed, so each look opens it again).
    expect(page.get_by_test_id("brackets-A01")).not_to_be_visible()

    def working() -> None:
        if not page.get_by_test_id("brackets-A01").is_visible():
            page.get_by_test_id("detail-A01").locator("summary").click()
        expect(page.get_by_test_id("brackets-A01")).to_be_visible()
        expect(page.get_by_test_id("brackets-A01")).to_contain_text(_vnd(A01["taxable_income"]))

    look_at(page, screenshot_dir, "payroll-finalisation-working", working)
    with page.expect_download() as download:
        page.get_by_test_id("finalisation-xlsx").click()
    sheet = load_workbook(BytesIO(Path(download.value.path()).read_bytes())).worksheets[0]
    assert [c.value for c in sheet[4]][11:] == [TOTALS["tax_due"], TOTALS["tax_withheld"], TOTALS["balance"]]

    page.context.clear_cookies()
    sign_in(page, world.client)
    page.goto(url)
    look_at(page, screenshot_dir, "payroll-finalisation-client", totals_and_rows)
    page.goto(f"/t/{world.slug}/payroll/finalisation/2025")
    look_at(page, screenshot_dir, "payroll-finalisation-empty",
            lambda: expect(page.get_by_test_id("finalisation-empty")).to_be_visible())

"""Bank statements in a real browser: staff open an OFX statement's document and read its summary and its
transactions; a CSV filed as a bank statement shows its first rows and the mapping form, staff choose the
columns, and the transactions appear on the page once the file is read again."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.steps import look_at, sign_in
from tests.browser.test_intake_browser import _store, _tenant_with_staff
from tests.intake.bank_samples import CSV_HEADER, Tx, csv_statement, ofx_v1
from tests.intake.test_bank import ACCOUNT, CSV_ROWS, OCTOBER

pytestmark = pytest.mark.browser


def _vnd(amount: Decimal) -> str:
    """An amount of đồng as the English pages write it ("-₫2,500,000"), from the truth, not from the page."""
    return f"{'-' if amount < 0 else ''}₫{abs(amount):,.0f}"


def _day(day: date) -> str:
    """A date as the English pages write it ("Oct 2, 2024")."""
    return f"{day:%b} {day.day}, {day.year}"


def _expect_rows(page: Page, truth: list[Tx], balances: list[Decimal] | None = None) -> None:
    """The transactions table holds exactly ``truth``, in order: date, counterparty, description, amount."""
    rows = page.get_by_test_id("bank-transactions").locator("tbody tr")
    expect(rows).to_have_count(len(truth))
    for i, tx in enumerate(truth):
        cells = rows.nth(i).locator("td")
        expect(cells.nth(0)).to_have_text(_day(tx.day))
        expect(cells.nth(1)).to_contain_text(tx.name or "")
        if tx.account:
            expect(cells.nth(1)).to_contain_text(tx.account)
        expect(cells.nth(2)).to_have_text(tx.memo or "")
        expect(cells.nth(3)).to_have_text(_vnd(tx.amount))
        if balances is not None:
            expect(cells.nth(4)).to_have_text(_vnd(balances[i]))


def test_staff_read_an_ofx_statement_summary_and_its_transactions(app: Flask, page: Page, run_jobs,
                                                                 screenshot_dir: Path) -> None:
    tenant_id, slug, admin, staff = _tenant_with_staff(app)
    opening = Decimal("15000000")
    closing = opening + sum((t.amount for t in OCTOBER), Decimal(0))
    body = ofx_v1(ACCOUNT, "VND", date(2024, 10, 1), date(2024, 10, 31), OCTOBER, closing)
    doc_id = _store(app, tenant_id, admin, body, "vcb-2024-10.ofx", "bank_statement")
    run_jobs()
    sign_in(page, staff)
    page.goto(f"/t/{slug}/documents/{doc_id}")
    expect(page.get_by_test_id("intake-done")).to_contain_text("A bank statement, read transaction by transaction.")
    panel = page.get_by_test_id("bank")
    expect(panel.locator("h3")).to_have_text(f"Vietcombank · •••• {ACCOUNT[-4:]}")  # the account, masked
    expect(panel).not_to_contain_text(ACCOUNT)
    summary = page.get_by_test_id("bank-statement")
    expect(summary.locator("dd").nth(0)).to_have_text(f"{_day(date(2024, 10, 1))} – {_day(date(2024, 10, 31))}")
    # OFX gives the closing balance only: the opening is worked out, and the page says so.
    expect(summary.locator("dd").nth(1)).to_have_text(f"{_vnd(opening)} (closing balance less the transactions)")
    expect(summary.locator("dd").nth(2)).to_have_text(_vnd(closing))
    expect(summary.locator("dd").nth(3)).to_have_text(str(len(OCTOBER)))
    expect(page.get_by_test_id("bank-continuity")).to_contain_text("The first statement of this account here")
    _expect_rows(page, OCTOBER)
    rows = page.get_by_test_id("bank-transactions").locator("tbody tr")
    look_at(page, screenshot_dir, "bank-statement",  # in either language: the same lines, names and descriptions
            lambda: expect(rows.locator("td:nth-child(3)")).to_have_text([t.memo for t in OCTOBER]))


def test_staff_map_a_csvs_columns_and_its_transactions_appear(app: Flask, page: Page, run_jobs,
                                                              screenshot_dir: Path) -> None:
    tenant_id, slug, admin, staff = _tenant_with_staff(app)
    opening = Decimal("10000000")
    doc_id = _store(app, tenant_id, admin, csv_statement(CSV_ROWS, opening), "vcb-2024-10.csv", "bank_statement")
    run_jobs()
    sign_in(page, staff)
    page.goto(f"/t/{slug}/documents/{doc_id}")
    preview = page.get_by_test_id("bank-preview")
    expect(preview.locator("thead th")).to_have_text([f"{i}. {name}" for i, name in enumerate(CSV_HEADER, start=1)])
    expect(preview).to_contain_text(CSV_ROWS[0].memo)  # the file's first rows, newest first as the bank wrote them
    form = page.get_by_test_id("bank-mapping")
    look_at(page, screenshot_dir, "bank-mapping", lambda: expect(form).to_be_visible())
    form.get_by_label("Bank", exact=True).fill("Vietcombank")
    expect(form.get_by_label("Dates are written as")).to_have_value("%d/%m/%Y")
    for label, column in (("Date of the transaction", 0), ("Description or reference", 1),
                          ("Counterparty's name", 2), ("Counterparty's account", 3), ("Debit (money out)", 4),
                          ("Credit (money in)", 5), ("Balance after the transaction", 6)):
        form.get_by_label(label).select_option(label=f"{column + 1}. {CSV_HEADER[column]}")
    page.get_by_test_id("bank-mapping-save").click()
    expect(page.locator(".flash")).to_contain_text("Reading “vcb-2024-10.csv” again with them")
    expect(page.get_by_test_id("bank-mapping")).to_have_count(0)
    expect(page.get_by_test_id("bank-reading")).to_contain_text("this part updates by itself.")
    run_jobs()
    # Oldest first here (the file is newest first); each balance is the one before plus the amount.
    balances = [opening + sum((t.amount for t in CSV_ROWS[:i + 1]), Decimal(0)) for i in range(len(CSV_ROWS))]
    expect(page.get_by_test_id("bank-transactions")).to_be_visible(timeout=15_000)  # the page refreshed itself
    _expect_rows(page, CSV_ROWS, balances)
    summary = page.get_by_test_id("bank-statement")
    expect(summary.locator("dd").nth(1)).to_have_text(_vnd(opening))
    expect(summary.locator("dd").nth(2)).to_have_text(_vnd(balances[-1]))
    expect(page.get_by_test_id("bank-reading")).to_have_count(0)
    rows = page.get_by_test_id("bank-transactions").locator("tbody tr")
    look_at(page, screenshot_dir, "bank-csv-statement",
            lambda: expect(rows.locator("td:nth-child(3)")).to_have_text([t.memo for t in CSV_ROWS]))

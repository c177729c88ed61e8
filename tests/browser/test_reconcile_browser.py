"""Bank reconciliation in a real browser: staff see the month's unmatched transactions with their best
suggestion, accept one in a click (the progress moves, the row goes), open a transaction nothing fits, save a
rule, and read the report whose difference is zero; each page at 1280 and 390 px, in both languages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.ledger import reconcile
from portal.ledger.services import LineInput
from tests.browser.steps import look_at, sign_in
from tests.intake.bank_samples import Tx
from tests.ledger.test_ledger import as_person, books
from tests.ledger.test_reconcile import HOA_SEN, OPENING, _post, _statement

pytestmark = pytest.mark.browser

MONTH = [Tx(date(2026, 11, 20), D("19800000"), "CONG TY TNHH HOA SEN", "0071000101", "TT HD 101 102 103", "B3"),
         Tx(date(2026, 11, 25), D("3000000"), "NGUYEN VAN A", None, "chuyen tien", "B4"),
         Tx(date(2026, 11, 30), D("-22000"), None, None, "Phí dịch vụ SMS Banking T11", "B6")]


def test_staff_accept_a_suggestion_and_read_the_report(app: Flask, page: Page, run_jobs, screenshot_dir: Path) -> None:
    world = books(app)
    with app.app_context():
        _post(world, date(2026, 10, 31), [LineInput("1121", OPENING, 0), LineInput("4111", 0, OPENING)], "Số dư")
        for day, number, total in ((date(2026, 11, 2), 101, 11_000_000), (date(2026, 11, 5), 102, 5_500_000),
                                   (date(2026, 11, 10), 103, 3_300_000)):
            _post(world, day, [LineInput("131", total, 0, counterparty=HOA_SEN), LineInput("5111", 0, total)],
                  f"Bán hàng: 1C26THS {number:07d} · Hoa Sen", date(2026, 12, 10))
    _statement(app, world, run_jobs, MONTH)
    with app.app_context(), as_person(world, world.staff) as (user, tenant):
        [seen] = reconcile.seen_accounts()
        link_id = reconcile.link_account(user, tenant, seen.ref, "1121").id
        db.session.commit()

    sign_in(page, world.staff)
    page.goto(f"/t/{world.slug}/books/bank")
    expect(page.get_by_test_id("progress")).to_have_text("0 of 3 transactions reconciled")
    page.get_by_test_id("workspace").click()
    unmatched = page.get_by_test_id("unmatched")
    expect(unmatched.locator("tbody tr")).to_have_count(3)
    payment = unmatched.locator("tbody tr").nth(0)
    expect(payment).to_contain_text("The invoices of entries 2, 3, 4")
    expect(unmatched.locator("tbody tr").nth(1).get_by_test_id("no-match")).to_be_visible()
    look_at(page, screenshot_dir, "reconcile-workspace",
            lambda: expect(payment.get_by_test_id("accept")).to_be_visible())
    payment.get_by_test_id("accept").click()
    expect(page.locator(".flash")).to_contain_text("Reconciled: entry 5.")
    expect(page.get_by_test_id("progress")).to_have_text("1 of 3 transactions reconciled")
    expect(unmatched.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("recent-matches")).to_contain_text("Entry 5")

    # The fee: a rule saved, previewed and applied.
    page.goto(f"/t/{world.slug}/books/bank/rules")
    page.locator("input[name=direction][value=out]").check()
    page.locator("input[name=reference]").fill("phí dịch vụ")
    page.locator("input[name=account]").fill("6422")
    page.locator("input[name=description]").fill("Phí ngân hàng")
    page.get_by_test_id("save-rule").click()
    expect(page.locator(".flash")).to_contain_text("Rule saved")
    look_at(page, screenshot_dir, "reconcile-rules", lambda: expect(page.get_by_test_id("rules")).to_be_visible())
    page.get_by_test_id("preview-link").first.click()
    expect(page.get_by_test_id("preview").locator("tbody tr")).to_have_count(1)
    look_at(page, screenshot_dir, "reconcile-preview",
            lambda: expect(page.get_by_test_id("apply-rules")).to_be_visible())
    page.get_by_test_id("apply-rules").click()
    expect(page.locator(".flash").first).to_contain_text("1 entry posted by a rule")

    # The transaction nothing fits, and the report: its 3,000,000 is the one item between bank and books.
    page.goto(f"/t/{world.slug}/books/bank/{link_id}")
    page.get_by_test_id("by-hand").first.click()
    look_at(page, screenshot_dir, "reconcile-transaction",
            lambda: expect(page.get_by_test_id("no-candidates")).to_be_visible())
    page.goto(f"/t/{world.slug}/books/bank/{link_id}/report?on=2026-11-30")
    expect(page.get_by_test_id("difference")).to_have_text("₫0")
    expect(page.get_by_test_id("unbooked")).to_contain_text("NGUYEN VAN A")
    expect(page.get_by_test_id("statement-balance")).to_have_text("₫122,778,000")  # 100,000,000 + 22,778,000
    look_at(page, screenshot_dir, "reconcile-report", lambda: expect(page.get_by_test_id("difference")).to_be_visible())

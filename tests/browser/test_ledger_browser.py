"""The books in a real browser: staff switch bookkeeping on, key an entry (an error first, then balanced), and
the client reads the journal and the trial balance; each page at both widths and in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.browser.test_intake_browser import _tenant_with_staff
from tests.factories import make_person

pytestmark = pytest.mark.browser


def test_staff_keep_the_books_and_the_client_reads_them(app: Flask, page: Page, screenshot_dir: Path) -> None:
    _tenant_id, slug, client, _staff = _tenant_with_staff(app)
    with app.app_context():
        manager = make_person(Role.MANAGER)  # bookkeeping is switched on by the provider's manager or admin
        provider = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(provider, db.session.get(Tenant, _tenant_id), db.session.get(User, manager.id))
        db.session.commit()
    sign_in(page, manager)
    page.goto(f"/t/{slug}/books")
    look_at(page, screenshot_dir, "ledger-start", lambda: expect(page.get_by_test_id("ledger-start")).to_be_visible())
    page.locator("input[name=chart][value=vn_tt133]").check()
    page.get_by_test_id("ledger-start-submit").click()
    expect(page.locator(".flash")).to_contain_text("Bookkeeping is on")

    page.goto(f"/t/{slug}/books/entries/new")
    form = page.get_by_test_id("entry-form")
    look_at(page, screenshot_dir, "ledger-entry-form", lambda: expect(form).to_be_visible())
    page.locator("input[name=memo]").fill("Bán hàng tháng 11")
    page.locator("input[name='line-1-account']").fill("131")
    page.locator("input[name='line-1-debit']").fill("11000000")
    page.locator("input[name='line-2-account']").fill("5111")
    page.locator("input[name='line-2-credit']").fill("10000000")
    page.locator("input[name='line-3-account']").fill("33311")
    page.locator("input[name='line-3-credit']").fill("900000")  # a typo: it does not balance
    page.get_by_test_id("post").click()
    expect(page.locator(".flash")).to_contain_text("does not balance")
    expect(page.locator("input[name='line-3-credit']")).to_have_value("900000")  # what was typed stays
    page.screenshot(path=str(screenshot_dir / "ledger-entry-refused.png"), full_page=True)
    page.locator("input[name='line-3-credit']").fill("1000000")
    page.get_by_test_id("post").click()
    expect(page.locator(".flash")).to_contain_text("Entry 1 posted")
    expect(page.get_by_test_id("entry-lines")).to_contain_text("131")
    look_at(page, screenshot_dir, "ledger-entry", lambda: expect(page.get_by_test_id("entry-lines")).to_be_visible())

    page.context.clear_cookies()  # the client signs in on the same browser
    sign_in(page, client)
    page.goto(f"/t/{slug}/books/trial-balance?since=2026-01-01&until=2026-12-31")
    table = page.get_by_test_id("trial-balance")
    expect(table.locator("tr[data-account='131']")).to_contain_text("11")
    expect(page.get_by_test_id("tb-debits")).to_have_text(page.get_by_test_id("tb-credits").inner_text())
    look_at(page, screenshot_dir, "ledger-trial-balance", lambda: expect(table).to_be_visible())
    table.locator("tr[data-account='131'] a").first.click()  # each figure opens the account's lines
    expect(page.get_by_test_id("closing")).to_contain_text("11")
    ledger = page.get_by_test_id("account-ledger")
    look_at(page, screenshot_dir, "ledger-account", lambda: expect(ledger).to_be_visible())
    page.goto(f"/t/{slug}/books/vat?since=2026-01-01&until=2026-12-31")
    look_at(page, screenshot_dir, "ledger-vat", lambda: expect(page.locator("main h1")).to_be_visible())
    page.goto(f"/t/{slug}/books/profit-and-loss?since=2026-01-01&until=2026-12-31")
    expect(page.get_by_test_id("result")).to_contain_text("10")  # revenue 10,000,000, no expenses yet
    look_at(page, screenshot_dir, "ledger-profit-and-loss",
            lambda: expect(page.get_by_test_id("result")).to_be_visible())
    page.goto(f"/t/{slug}/books/balance-sheet?on=2026-12-31")
    expect(page.get_by_test_id("total-claims")).to_have_text(page.get_by_test_id("total-asset").inner_text())
    look_at(page, screenshot_dir, "ledger-balance-sheet",
            lambda: expect(page.get_by_test_id("balance-sheet")).to_be_visible())
    page.goto(f"/t/{slug}/books")
    expect(page.get_by_test_id("new-entry")).to_have_count(0)  # the client reads, never keeps
    look_at(page, screenshot_dir, "ledger-overview", lambda: expect(page.get_by_test_id("recent")).to_be_visible())
    page.goto(f"/t/{slug}/books/accounts")
    look_at(page, screenshot_dir, "ledger-chart", lambda: expect(page.get_by_test_id("chart")).to_be_visible())

"""The books dashboard in a real browser: the client's Books link opens it; its tiles, three charts and their
tables at 1280 and 390 px, in English and in Vietnamese, never wider than the window; a tile opens its report;
and the empty state of books with nothing posted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.steps import look_at, sign_in, switch_language
from tests.ledger.test_dashboard import scenario
from tests.ledger.test_ledger import books

pytestmark = pytest.mark.browser


def _digits(text: str) -> str:
    return re.sub(r"[^\d-]", "", text)


def test_the_client_looks_at_the_books_dashboard(app: Flask, page: Page, screenshot_dir: Path) -> None:
    world = scenario(app)  # entries up to 1 December 2026: the year's figures are the same any day after it
    sign_in(page, world.client)
    page.goto(f"/t/{world.slug}/")
    page.get_by_role("link", name="Books", exact=True).first.click()
    expect(page).to_have_url(re.compile(rf"/t/{world.slug}/books/dashboard$"))

    page.goto(f"/t/{world.slug}/books/dashboard?year=2026")
    tiles = page.get_by_test_id("dashboard-tiles")
    charts = page.locator("svg[role=img]")

    def whole() -> None:
        expect(tiles.locator("li")).to_have_count(7)
        expect(charts).to_have_count(3)
        for i in range(3):  # each chart fits its card, at either width
            chart, card = charts.nth(i).bounding_box(), charts.nth(i).locator("xpath=ancestor::section").bounding_box()
            assert chart and card and chart["width"] > 0 and chart["x"] + chart["width"] <= card["x"] + card["width"]
        expect(page.get_by_test_id("months-table")).to_be_visible()
        expect(page.get_by_test_id("cash-table")).to_be_visible()
        expect(page.get_by_test_id("ageing-table")).to_be_visible()

    look_at(page, screenshot_dir, "books-dashboard", whole)
    # The year 2026 to its end: 10m + 2.3m + 5m + 1m of revenue; cash and bank 75.1m after December's sale.
    assert _digits(page.get_by_test_id("tile-revenue-figure").inner_text()) == "18300000"
    assert _digits(page.get_by_test_id("tile-cash-figure").inner_text()) == "75100000"
    assert _digits(page.get_by_test_id("tile-receivable-figure").inner_text()) == "16500000"
    expect(page.get_by_test_id("receivable-overdue")).to_contain_text("16,500,000")  # both invoices past due by now
    expect(page.get_by_test_id("change-revenue")).to_contain_text("2025")

    switch_language(page, "vi")
    expect(page.get_by_test_id("dashboard-months").locator("svg text.chart-label").first).to_have_text("T1")
    switch_language(page, "en")

    page.get_by_test_id("tile-cash").get_by_role("link").click()  # the tile opens the balance sheet behind it
    expect(page).to_have_url(re.compile(r"/books/balance-sheet\?on=2026-12-\d\d$"))
    expect(page.get_by_test_id("balance-sheet")).to_be_visible()

    page.goto(f"/t/{world.slug}/books/dashboard?year=2025")  # last year: nothing to compare with before it
    look_at(page, screenshot_dir, "books-dashboard-2025",
            lambda: expect(page.get_by_test_id("dashboard-year")).to_have_text("2025"))

    empty = books(app)  # another client: books on, nothing posted yet
    page.context.clear_cookies()
    sign_in(page, empty.client)
    page.goto(f"/t/{empty.slug}/books/dashboard")
    look_at(page, screenshot_dir, "books-dashboard-empty",
            lambda: expect(page.get_by_test_id("dashboard-empty")).to_be_visible())

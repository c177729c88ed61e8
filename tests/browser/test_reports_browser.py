"""The books' reports in a real browser: the client reads what its customers owe by age, opens a customer's
open items and from there an entry, follows a VAT figure to its lines, and downloads the ageing as XLSX;
each page at 1280 and 390 px, in English and Vietnamese."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.browser.steps import look_at, sign_in
from tests.ledger.test_ledger import books
from tests.ledger.test_reports import ALPHA, RECEIVABLE_TOTAL, post_the_entries

pytestmark = pytest.mark.browser


def test_the_client_reads_the_ageing_and_drills_down_to_an_entry(app: Flask, page: Page,
                                                                 screenshot_dir: Path) -> None:
    world = books(app)
    post_the_entries(app, world)
    sign_in(page, world.client)

    page.goto(f"/t/{world.slug}/books/receivables?as_of=2026-11-30")
    table = page.get_by_test_id("ageing")
    expect(page.get_by_test_id("ageing-total")).to_contain_text("20,600,000")
    expect(page.get_by_test_id("agreement")).to_contain_text("equals the balance of account 131")
    look_at(page, screenshot_dir, "reports-ageing", lambda: expect(table).to_be_visible())

    with page.expect_download() as download:
        page.get_by_test_id("download-xlsx").click()
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert next(row for row in sheet.iter_rows(values_only=True) if row[0] == "Total")[7] == RECEIVABLE_TOTAL

    table.locator(f"tr[data-party='{world.alpha}'] a").click()  # the customer's open items
    items = page.get_by_test_id("open-items")
    expect(page.locator("main h1")).to_have_text(ALPHA)
    expect(items.locator("tr[data-entry]")).to_have_count(2)
    expect(page.get_by_test_id("counterparty-total")).to_contain_text("14,400,000")
    look_at(page, screenshot_dir, "reports-counterparty", lambda: expect(items).to_be_visible())
    items.locator("tr[data-entry] a").first.click()  # and from there the entry itself
    expect(page.get_by_test_id("entry-lines")).to_contain_text("131")

    page.goto(f"/t/{world.slug}/books/vat?since=2026-08-01&until=2026-11-30")
    expect(page.get_by_test_id("periods-due")).to_have_text(page.get_by_test_id("vat-due").inner_text())
    look_at(page, screenshot_dir, "reports-vat", lambda: expect(page.get_by_test_id("vat-periods")).to_be_visible())
    page.get_by_test_id("vat-periods").locator("tr[data-period='2026-11-01'][data-rate='10'] a").first.click()
    expect(page.get_by_test_id("lines-output")).to_contain_text("500,000")
    look_at(page, screenshot_dir, "reports-vat-lines", lambda: expect(page.get_by_test_id("vat-lines")).to_be_visible())

    page.goto(f"/t/{world.slug}/books/payables?as_of=2026-01-01")  # nothing owed yet: what happens next is said
    look_at(page, screenshot_dir, "reports-ageing-empty",
            lambda: expect(page.get_by_test_id("ageing-empty")).to_be_visible())
    expect(page.get_by_test_id("new-entry")).to_have_count(0)  # the client reads, never keeps

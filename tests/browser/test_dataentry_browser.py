"""Data entry in a real browser: staff key documents with the keyboard only (keyboard.press, never a click):
the first field has the focus, Enter moves on and saves from the last field, Ctrl+Enter saves from anywhere,
Escape skips a document, a refusal keeps what was typed; then the records and the template form, each page
at 1280 and 390 px and in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.dataentry import services
from portal.dataentry.fields import FieldInput
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.steps import look_at, sign_in
from tests.browser.test_intake_browser import _store, _tenant_with_staff
from tests.dataentry.test_fields import mst, wrong_digit
from tests.documents import samples
from tests.factories import make_person

pytestmark = pytest.mark.browser

SELLER = mst("010023348")


def press(page: Page, text: str) -> None:
    """Type ``text`` one key press at a time, as a person at the keyboard does."""
    for char in text:
        page.keyboard.press(char)


def _setup(app: Flask):  # noqa: ANN202 - (slug, template id, document ids oldest first, staff, manager)
    tenant_id, slug, client, staff = _tenant_with_staff(app)
    docs = [_store(app, tenant_id, client, samples.pdf(7300 + n), f"invoice-{n}.pdf", "invoice") for n in (1, 2, 3)]
    with app.app_context():
        manager = make_person(Role.MANAGER)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, db.session.get(Tenant, tenant_id), db.session.get(User, manager.id))
        db.session.commit()
        user = db.session.get(User, manager.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=Role.MANAGER)):
            template = services.save_template(
                user, db.session.get(Tenant, tenant_id), name="Purchase invoices", description="From suppliers",
                locale="en", rows=[FieldInput(key="invoice_no", label="Invoice number", type="text", required=True),
                                   FieldInput(key="total", label="Total", type="amount", required=True),
                                   FieldInput(key="seller", label="Seller's tax code", type="tax_code"),
                                   FieldInput(key="kind", label="Kind", type="choice", options="Invoice\nReceipt")])
            template_id = str(template.id)
    return slug, template_id, docs, staff, manager


def test_staff_key_documents_with_the_keyboard_only(app: Flask, page: Page, screenshot_dir: Path) -> None:
    slug, template_id, docs, staff, manager = _setup(app)
    sign_in(page, staff)
    page.goto(f"/t/{slug}/data-entry")
    expect(page.get_by_test_id("left")).to_have_text("3 of 3 documents left")
    look_at(page, screenshot_dir, "dataentry-templates",
            lambda: expect(page.get_by_test_id("templates")).to_be_visible())

    page.goto(f"/t/{slug}/data-entry/{template_id}/key")
    first = page.locator("#v-invoice_no")
    expect(page.get_by_test_id("document-link")).to_have_text("invoice-1.pdf")  # the oldest first
    page.get_by_test_id("document-page").evaluate("img => img.decode()")  # the page renders beside the form
    look_at(page, screenshot_dir, "dataentry-key", lambda: expect(page.get_by_test_id("key-form")).to_be_visible())
    page.reload()
    expect(first).to_be_focused()
    expect(page.get_by_test_id("queue-left")).to_have_text("3 of 3 documents left")

    # Document 1: Tab and Enter move on; Enter in the last field (a choice) saves.
    press(page, "HD-0001")
    page.keyboard.press("Tab")
    press(page, "2,200,000")
    page.keyboard.press("Enter")  # to the next field, not a save
    expect(page.locator("#v-seller")).to_be_focused()
    press(page, SELLER)
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # the choice's first option
    expect(page.locator("#v-kind")).to_have_value("Invoice")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text("Record 1 saved for invoice-1.pdf")
    expect(page.get_by_test_id("document-link")).to_have_text("invoice-2.pdf")
    expect(page.get_by_test_id("queue-left")).to_have_text("2 of 3 documents left")
    expect(first).to_be_focused()
    expect(first).to_have_value("")  # an empty form for the next one

    # Document 2 is skipped with Escape: nothing saved, the third opens.
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("document-link")).to_have_text("invoice-3.pdf")
    expect(page.get_by_test_id("queue-left")).to_have_text("2 of 3 documents left")

    # Document 3: a wrong check digit, saved with Ctrl+Enter from the middle: refused, what was typed stays.
    expect(first).to_be_focused()
    press(page, "HD-0003")
    page.keyboard.press("Tab")
    press(page, "150000")
    page.keyboard.press("Tab")
    press(page, wrong_digit(SELLER))
    page.keyboard.press("Shift+Tab")  # back in the middle of the form
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("error-seller")).to_contain_text("last digit does not check")
    expect(page.locator("#v-invoice_no")).to_have_value("HD-0003")
    expect(page.locator("#v-total")).to_have_value("150000")
    expect(page.locator("#v-seller")).to_be_focused()  # the field to correct has the focus
    page.get_by_test_id("document-page").evaluate("img => img.decode()")  # the page image is there to read
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):  # not look_at: a language switch would drop it
        page.set_viewport_size(size)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= size["width"]
        page.screenshot(path=str(screenshot_dir / f"dataentry-key-refused-{label}.png"), full_page=True)
    expect(page.locator("#v-seller")).to_be_focused()
    page.keyboard.press("Control+A")
    press(page, SELLER)
    page.keyboard.press("Control+Enter")
    expect(page.locator(".flash")).to_have_text("Record 2 saved for invoice-3.pdf")
    expect(page.get_by_test_id("document-link")).to_have_text("invoice-2.pdf")  # the one skipped comes back
    expect(page.get_by_test_id("queue-left")).to_have_text("1 of 3 documents left")

    page.goto(f"/t/{slug}/data-entry/{template_id}/records")
    rows = page.get_by_test_id("records").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("tr[data-record='1'] td[data-field='total']")).to_contain_text("2,200,000")
    expect(page.locator("tr[data-record='2'] td[data-field='seller']")).to_have_text(SELLER)
    look_at(page, screenshot_dir, "dataentry-records", lambda: expect(page.get_by_test_id("records")).to_be_visible())
    page.goto(f"/t/{slug}/documents/{docs[0]}")
    expect(page.get_by_test_id("document-dataentry")).to_contain_text("Purchase invoices: record 1")

    page.context.clear_cookies()  # the manager defines templates, on the same browser
    sign_in(page, manager)
    page.goto(f"/t/{slug}/data-entry/{template_id}/edit")
    expect(page.locator("#field-1-label")).to_have_value("Invoice number")
    expect(page.get_by_test_id("field-row-1").get_by_label("Smallest value")).to_be_hidden()  # a text's rules only
    look_at(page, screenshot_dir, "dataentry-template",
            lambda: expect(page.get_by_test_id("template-form")).to_be_visible())
    page.goto(f"/t/{slug}/data-entry/new")
    look_at(page, screenshot_dir, "dataentry-template-new",
            lambda: expect(page.get_by_test_id("template-form")).to_be_visible())
    assert re.search(r"/data-entry/new$", page.url)

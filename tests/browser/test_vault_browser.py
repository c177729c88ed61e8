"""The vault in a real browser: drag two files in, watch each finish, open the preview."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tenants.policy import Role
from tests.browser.conftest import DESKTOP
from tests.browser.test_signin_browser import sign_in_with_password
from tests.documents import samples
from tests.factories import make_person, make_tenant

pytestmark = pytest.mark.browser

DROP = """(files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, {type: f.type}));
  }
  return dt;
}"""


def test_drag_two_files_in_watch_them_finish_and_open_the_preview(
        app: Flask, page: Page, run_jobs, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        slug = tenant.slug
    sign_in_with_password(page, member)
    expect(page).to_have_url(re.compile(rf"/t/{slug}/"))
    page.get_by_role("link", name="Documents").first.click()
    expect(page.get_by_test_id("documents-empty")).to_be_visible()

    files = [{"name": "receipt.jpg", "type": "image/jpeg", "b64": base64.b64encode(samples.jpeg(11)).decode()},
             {"name": "statement.pdf", "type": "application/pdf", "b64": base64.b64encode(samples.pdf(12)).decode()}]
    transfer = page.evaluate_handle(DROP, files)
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": transfer})

    items = page.locator("[data-upload-list] .upload-item")
    expect(items).to_have_count(2)
    expect(page.locator("[data-upload-list] .upload-item.ok")).to_have_count(2)
    expect(items.first).to_contain_text("Stored, encrypted")
    # The list below shows them without a reload (the page's lists are fetched again and swapped in).
    expect(page.locator(".doc-card")).to_have_count(2)
    expect(page.get_by_role("status")).to_contain_text("the list is up to date")
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(screenshot_dir / "vault-uploaded.png"), full_page=True)

    run_jobs()  # the worker renders the thumbnails
    page.reload()
    expect(page.locator(".doc-card")).to_have_count(2)
    page.get_by_text("receipt.jpg").click()
    preview = page.get_by_test_id("preview")
    expect(preview).to_be_visible()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=preview.element_handle())
    page.screenshot(path=str(screenshot_dir / "vault-preview.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    assert download.value.suggested_filename == "receipt.jpg"


def test_a_csv_among_receipts_is_sent_again_as_a_bank_statement_in_place(app: Flask, page: Page) -> None:
    with app.app_context():
        tenant = make_tenant()
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        slug = tenant.slug
    sign_in_with_password(page, member)
    page.goto(f"/t/{slug}/documents")
    page.get_by_label("Category").first.select_option("receipt")
    files = [{"name": "taxi.jpg", "type": "image/jpeg", "b64": base64.b64encode(samples.jpeg(21)).decode()},
             {"name": "bank.csv", "type": "text/csv", "b64": base64.b64encode(samples.csv_bytes(3)).decode()}]
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": page.evaluate_handle(DROP, files)})
    refused = page.locator("[data-upload-list] .upload-item.refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("Receipts are accepted as PDF or image")
    expect(page.locator(".doc-card")).to_have_count(1)  # the receipt went in; the list shows it
    refused.get_by_role("combobox").select_option("bank_statement")
    refused.get_by_test_id("upload-as").click()
    expect(page.locator("[data-upload-list] .upload-item.ok")).to_have_count(2)
    expect(page.locator(".doc-card")).to_have_count(2)
    expect(page.locator(".doc-card", has_text="bank.csv")).to_contain_text("Bank statement")

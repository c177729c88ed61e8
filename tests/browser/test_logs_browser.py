"""The logs people read, in a real browser: the client's access log and the provider's audit log at both widths
in both languages (filters, CSV download), and the tasks page's attach list fetched when it is opened."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.documents import services as documents
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.conftest import DESKTOP
from tests.browser.steps import look_at, sign_in
from tests.documents import samples
from tests.factories import make_person, make_tenant

pytestmark = pytest.mark.browser
RAW_KEY = re.compile(r"\b[a-z_]+\.[a-z_]+\b")  # document.viewed, auth.signin...
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _shots(page: Page, screenshot_dir: Path, name: str) -> None:
    """The page at both widths in both languages: nothing wider than the screen, no raw key or id in the table."""
    def readable() -> None:
        text = page.get_by_test_id("events").inner_text()
        assert not UUID.search(text), text
        assert not [k for k in RAW_KEY.findall(text) if not k.endswith((".pdf", ".test", ".jpg"))], text

    look_at(page, screenshot_dir, f"logs-{name}", readable)


def _upload(tenant_id, person, title: str, seed: int) -> None:
    user, tenant = db.session.get(User, person.id), db.session.get(Tenant, tenant_id)
    with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=person.role)):
        documents.upload(user, tenant, [samples.pdf(seed)], filename=title,
                         target=documents.upload_target(user, category="invoice"))


def test_the_access_log_reads_as_sentences_filters_and_downloads(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        _upload(tenant.id, member, "Bảng lương tháng 3.pdf", 8101)
        slug = tenant.slug
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents")  # one listing in the log, not one row per thumbnail
    page.goto(f"/t/{slug}/access-log")
    rows = page.get_by_test_id("events").locator("tbody tr")
    expect(rows.first).to_contain_text("looked at the list of documents")
    expect(page.get_by_test_id("events")).to_contain_text("uploaded a document “Bảng lương tháng 3.pdf”")
    page.set_viewport_size(DESKTOP)
    _shots(page, screenshot_dir, "access-log")

    page.get_by_label("What").select_option(label="Documents")
    page.get_by_label("Who").select_option(label="Only what your people did")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"kind=documents"))
    expect(rows).to_have_count(2)  # the upload and the listing, both by the company's people
    with page.expect_download() as download:
        page.get_by_test_id("csv").click()
    assert re.fullmatch(rf"access-log-{slug}-\d{{4}}-\d{{2}}-\d{{2}}\.csv", download.value.suggested_filename)
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert "uploaded a document “Bảng lương tháng 3.pdf”" in body and "document.uploaded" not in body

    page.get_by_label("From").fill("2025-03-31")
    page.get_by_label("To").fill("2025-03-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#to-error")).to_contain_text("swap them")  # next to the field to fix
    expect(page.get_by_label("To", exact=True)).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(screenshot_dir / "logs-access-log-refused.png"), full_page=True)


def test_the_provider_audit_log_reads_as_sentences(app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        admin = make_person(Role.PROVIDER_ADMIN, mfa=True)
    sign_in(page, admin)
    page.goto("/provider/")  # a read across clients, recorded
    page.goto("/provider/audit")
    expect(page.get_by_test_id("events")).to_contain_text("read across clients")
    expect(page.get_by_test_id("events")).to_contain_text("signed in")
    page.set_viewport_size(DESKTOP)
    _shots(page, screenshot_dir, "audit-log")
    page.get_by_label("What").select_option(label="Sign-ins")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("events").locator("tbody tr").first).to_contain_text("signed in")


def test_the_attach_list_is_fetched_when_it_is_opened(
        app: Flask, open_page: Callable[..., Page], screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        _upload(tenant.id, member, "Hợp đồng lao động.pdf", 8102)
        slug = tenant.slug
    page = open_page(DESKTOP)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/tasks/attachable" in r.url else None)
    sign_in(page, member)
    page.goto(f"/t/{slug}/tasks")
    attach = page.get_by_test_id("attach-documents")
    expect(attach).to_be_visible()
    assert fetched == []  # not on the page's own load
    attach.locator("summary").click()
    select = page.get_by_label("Attach documents (hold Ctrl or ⌘ to pick several)")
    expect(select.locator("option")).to_have_text(["Hợp đồng lao động.pdf"])
    assert len(fetched) == 1
    attach.locator("summary").click()  # closed and opened again: fetched once
    attach.locator("summary").click()
    expect(select).to_be_visible()
    assert len(fetched) == 1
    select.select_option(label="Hợp đồng lao động.pdf")
    page.get_by_label("What do you need?").fill("Register the new hire")
    page.screenshot(path=str(screenshot_dir / "tasks-attach-open.png"), full_page=True)
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_test_id("linked-documents")).to_contain_text("Hợp đồng lao động.pdf")

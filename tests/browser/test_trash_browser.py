"""The trash and "not applicable" in a real browser: a client admin removes a document (a reason first),
finds it in the trash, answers a requested document "not applicable"; a manager restores and reopens.
The document's page, the trash and the request page at both widths in both languages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.documents import requests, services, trash
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.documents import samples
from tests.factories import Person, make_person, make_tenant

pytestmark = pytest.mark.browser


@dataclass
class Setting:
    tenant_id: uuid.UUID
    slug: str
    admin: Person
    manager: Person
    kept: str  # a document's id
    removed: str
    request: str


@pytest.fixture
def setting(app: Flask) -> Setting:
    """A tenant with a client admin, an assigned manager, two documents and a request of two items."""
    with app.app_context():
        tenant = db.session.get(Tenant, make_tenant("Hoa Sen Trading").id)
        admin, manager = make_person(Role.CLIENT_ADMIN, tenant), make_person(Role.MANAGER)
        boss = make_person(Role.PROVIDER_ADMIN)
        assign(db.session.get(User, boss.id), tenant, db.session.get(User, manager.id))
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            actor = db.session.get(User, admin.id)
            ids = []
            for seed, name in ((7501, "Vietcombank statement March 2026.pdf"), (7502, "scan_0042.pdf")):
                result = services.upload(actor, tenant, [samples.pdf(seed)], filename=name,
                                         target=services.upload_target(actor, category="bank_statement"))
                ids.append(str(result.document.id))
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant.id}), role=Role.MANAGER)):
            req = requests.create_request(db.session.get(User, manager.id), tenant, title="Year-end documents",
                                          note="For the 2026 financial statements.",
                                          items=[requests.ItemInput("Foreign currency account statements"),
                                                 requests.ItemInput("Fixed asset register")])
            request_id = str(req.id)
        return Setting(tenant.id, tenant.slug, admin, manager, ids[0], ids[1], request_id)








def test_a_client_admin_removes_a_document_and_answers_an_item_not_applicable(
        app: Flask, page: Page, setting: Setting, screenshot_dir: Path) -> None:
    sign_in(page, setting.admin)
    docs = f"/t/{setting.slug}/documents"
    page.goto(f"{docs}/{setting.removed}")
    look_at(page, screenshot_dir, "trash-detail")

    # Rename in place.
    page.get_by_label("Title").fill("Bank statement, Techcombank, March")
    page.get_by_role("button", name="Save name and filing").click()
    expect(page.get_by_test_id("doc-title")).to_have_text("Bank statement, Techcombank, March")

    # No reason: said next to the field, nothing removed.
    page.get_by_role("button", name="Move to the trash").click()
    reason = page.get_by_label("Why is it removed?")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#remove small.error")).to_contain_text("Say why this document is removed")
    reason.fill("Wrong bank: this is Techcombank, not ours")
    page.get_by_role("button", name="Move to the trash").click()
    expect(page).to_have_url(re.compile(re.escape(docs) + r"$"))
    expect(page.locator(".flash, [role=status], .messages").first).to_contain_text("is in the trash")
    expect(page.get_by_test_id("documents")).to_contain_text("Vietcombank statement March 2026.pdf")
    expect(page.get_by_test_id("documents")).not_to_contain_text("Bank statement, Techcombank, March")

    page.get_by_test_id("trash-link").click()
    expect(page.get_by_test_id("trash")).to_contain_text("Wrong bank: this is Techcombank, not ours")
    expect(page.get_by_text("ask them if one was removed by mistake")).to_be_visible()
    expect(page.get_by_test_id("trash").get_by_role("button")).to_have_count(0)  # the client does not restore
    look_at(page, screenshot_dir, "trash-trash-client")
    page.get_by_role("link", name="Bank statement, Techcombank, March").click()
    expect(page.get_by_test_id("in-trash")).to_be_visible()
    expect(page.get_by_test_id("download")).to_have_count(0)
    look_at(page, screenshot_dir, "trash-detail-in-trash")

    # A requested document answered "not applicable": an empty reason first.
    page.goto(f"/t/{setting.slug}/requests/{setting.request}")
    item = page.locator("li.card", has_text="Foreign currency account statements")
    item.get_by_text("We don't have this / not applicable").click()
    item.get_by_role("button", name="Send this answer").click()
    item = page.locator("li.card", has_text="Foreign currency account statements")
    expect(item.locator("details.not-applicable")).to_have_attribute("open", "")
    expect(item.locator("small.error")).to_contain_text("Say why you don't have this document")
    item.get_by_label("Why don't you have it?").fill("We have no foreign currency account.")
    item.get_by_role("button", name="Send this answer").click()
    expect(page.get_by_test_id("request-progress")).to_contain_text(
        "1 of 2 answered: 0 received, 1 not applicable")
    expect(page.get_by_test_id("not-applicable")).to_be_visible()
    look_at(page, screenshot_dir, "trash-request-client")


def test_a_manager_restores_and_reopens(app: Flask, page: Page, setting: Setting, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = db.session.get(Tenant, setting.tenant_id)
        with bound(Scope(user_id=setting.admin.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_ADMIN)):
            admin = db.session.get(User, setting.admin.id)
            trash.trash(admin, tenant, setting.removed, reason="Uploaded twice by mistake")
            req = requests.get_request(setting.request)
            requests.mark_not_applicable(admin, tenant, setting.request, str(req.items[0].id),
                                         reason="We have no foreign currency account.")
    sign_in(page, setting.manager)
    page.goto(f"/t/{setting.slug}/documents/trash")
    expect(page.get_by_test_id("trash")).to_contain_text("Uploaded twice by mistake")
    look_at(page, screenshot_dir, "trash-trash-provider")
    page.get_by_role("button", name="Restore").click()
    expect(page.get_by_test_id("doc-title")).to_have_text("scan_0042.pdf")
    expect(page.get_by_test_id("in-trash")).to_have_count(0)
    expect(page.get_by_test_id("download")).to_be_visible()

    page.goto(f"/t/{setting.slug}/requests/{setting.request}")
    expect(page.get_by_test_id("not-applicable")).to_contain_text("Not applicable")
    expect(page.locator("blockquote", has_text="We have no foreign currency account.")).to_be_visible()
    look_at(page, screenshot_dir, "trash-request-provider")
    page.get_by_role("button", name="Reopen: we still need it").click()
    expect(page.get_by_test_id("request-progress")).to_contain_text("0 of 2 received")

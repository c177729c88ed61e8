"""E-mail in, in a real browser: the client admin makes the workspace's intake address and copies it; mail
from a stranger (sent for real, over SMTP, to the app's receiver) waits in the quarantine with its reason in
words; the admin releases it and its document appears, its page saying who mailed it, with the e-mail's text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect

from portal.extensions import db
from portal.intake.mail import addresses
from portal.intake.mail.smtp import controller
from tenants.context import for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.documents import samples
from tests.factories import make_person, make_tenant
from tests.intake.test_mail import STRANGER, _message, _send
from tests.services import free_port

pytestmark = pytest.mark.browser

BODY = ("Chào anh chị,\nEm gửi hóa đơn tiền thuê văn phòng tháng 3, nhờ anh chị hạch toán giúp em trước ngày "
        "mùng 5 tháng sau ạ; nếu cần bản gốc có chữ ký thì em gửi chuyển phát nhanh.\nCảm ơn anh chị.\n"
        "Nguyễn Thị Hoa — Phòng Kế toán, Công ty TNHH Thương mại và Dịch vụ Hoa Sen")


@pytest.fixture(scope="module")
def receiver(app: Flask) -> Iterator[Controller]:
    """The app's SMTP receiver on a free loopback port, for this module."""
    server = controller(app, "127.0.0.1", free_port())
    server.start()
    yield server
    server.stop()


def test_the_client_admin_lets_a_strangers_mail_in_from_the_quarantine(app: Flask, context: BrowserContext,
                                                                        page: Page, receiver: Controller,
                                                                        run_jobs, screenshot_dir: Path) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        slug = tenant.slug
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents")
    panel = page.get_by_test_id("mail-in")
    expect(panel).to_contain_text("This workspace has no e-mail address for documents yet.")
    page.get_by_test_id("mail-in-create").click()
    expect(page.locator(".flash")).to_contain_text(f"Documents can now be mailed to {slug}.")
    address = page.get_by_test_id("mail-in-address")
    intake_address = address.inner_text().strip()
    assert intake_address.startswith(f"{slug}.") and intake_address.endswith(f"@{app.config['INTAKE_MAIL_DOMAIN']}")
    copy = panel.get_by_role("button", name="Copy the address")
    copy.click()
    expect(panel.locator("button.copy-button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == intake_address
    expect(page.get_by_test_id("mail-in-quarantine-link")).to_have_text("Quarantine: nothing is waiting")
    page.get_by_test_id("mail-in-senders").locator("summary").click()
    expect(page.get_by_test_id("mail-in-senders")).to_contain_text(admin.email)  # a user of the workspace
    look_at(page, screenshot_dir, "mail-address", lambda: expect(address).to_be_visible())

    # A stranger mails an invoice; a registered sender's mail fails its domain's check. Both wait.
    _send(receiver, _message(f"Nguyễn Thị Hoa <{STRANGER}>", intake_address, body=BODY,
                             subject="Hóa đơn tiền thuê văn phòng tháng 3 năm 2026 — Công ty TNHH Hoa Sen",
                             files={"hoa-don-thue-van-phong-thang-3-2026-HS-000123.pdf": samples.pdf(5101)}))
    domain = admin.email.split("@")[1]
    _send(receiver, _message(admin.email, intake_address, subject="Scan", files={"scan.pdf": samples.pdf(5102)},
                             headers={"Authentication-Results": f"mx.portal.test; dkim=fail header.d={domain}"}))
    page.reload()
    link = page.get_by_test_id("mail-in-quarantine-link")
    expect(link).to_have_text("2 messages wait in the quarantine for your decision")
    link.click()
    held = page.get_by_test_id("quarantine").locator("li")
    expect(held).to_have_count(2)
    stranger = held.filter(has_text=STRANGER)
    expect(stranger.get_by_test_id("quarantine-reason")).to_have_text(
        "The sender is not one of this workspace's registered senders.")
    expect(stranger).to_contain_text("hoa-don-thue-van-phong-thang-3-2026-HS-000123.pdf")
    forged = held.filter(has_text=admin.email)
    expect(forged.get_by_test_id("quarantine-reason")).to_have_text(
        "Its signature does not match (DKIM failed): it may have been changed on the way, or forged.")
    look_at(page, screenshot_dir, "mail-quarantine", lambda: expect(held).to_have_count(2))

    # Releasing asks first; "Cancel" leaves the message where it is.
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    stranger.get_by_test_id("quarantine-release").click()
    expect(held).to_have_count(2)
    assert questions == ["Let this message in? Its attachments are stored in the documents, as uploaded by you."]
    page.once("dialog", lambda dialog: dialog.accept())
    stranger.get_by_test_id("quarantine-release").click()
    expect(page.locator(".flash")).to_contain_text(f"Released: 1 file from {STRANGER} is now in the documents.")
    expect(held).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    forged.get_by_test_id("quarantine-drop").click()
    expect(page.locator(".flash")).to_contain_text(f"Dropped the message from {admin.email}")
    expect(page.get_by_test_id("quarantine-empty")).to_contain_text("Nothing is waiting.")

    run_jobs()  # the released file is read like an upload
    page.get_by_role("link", name="All documents").click()
    documents = page.get_by_test_id("documents").locator("li")
    expect(documents).to_have_count(1)  # the dropped message left nothing
    documents.first.get_by_role("link").click()
    expect(page.get_by_test_id("doc-title")).to_have_text("hoa-don-thue-van-phong-thang-3-2026-HS-000123.pdf")
    note = page.get_by_test_id("mail-note")
    expect(note).to_contain_text(f"Received by e-mail from {STRANGER} on")
    expect(note).to_contain_text("It waited in the quarantine until it was let in.")
    expect(note).to_contain_text("Hóa đơn tiền thuê văn phòng tháng 3 năm 2026")
    expect(page.get_by_test_id("mail-note-body")).to_have_text(BODY)
    look_at(page, screenshot_dir, "mail-note", lambda: expect(page.get_by_test_id("mail-note-body")).to_be_visible())


def test_a_registered_senders_refused_attachment_is_named_on_its_documents_page(
        app: Flask, page: Page, receiver: Controller, run_jobs, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant(locale="vi")
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        slug = tenant.slug
        with for_tenant(tenant.id):
            address = addresses.rotate(db.session.get(User, admin.id), db.session.get(Tenant, tenant.id))
    _send(receiver, _message(admin.email, address, body="Gửi kèm hóa đơn.",
                             files={"cai-dat.exe": samples.windows_exe(), "hoa-don.pdf": samples.pdf(5103)}))
    run_jobs()
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents")
    page.get_by_test_id("documents").locator("li").first.get_by_role("link").click()
    note = page.get_by_test_id("mail-note")
    expect(note).to_contain_text(f"Received by e-mail from {admin.email} on")
    expect(note).not_to_contain_text("It waited in the quarantine")
    refused = page.get_by_test_id("mail-note-refused")
    expect(refused.locator("li")).to_have_count(1)
    expect(refused).to_contain_text("cai-dat.exe")
    look_at(page, screenshot_dir, "mail-note-refused", lambda: expect(refused).to_be_visible())

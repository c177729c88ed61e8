"""Intake in a real browser: the documents page counts what was read and updates itself; a document's page
shows what was read (its text, its kind); a file that could not be read says why, and staff try it again."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.documents import services as documents
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant
from tests.intake.test_intake import text_pdf

pytestmark = pytest.mark.browser


def _store(app: Flask, tenant_id, person, body: bytes, name: str, category: str) -> str:
    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=person.role)):
            result = documents.upload(user, db.session.get(Tenant, tenant_id), [body], filename=name,
                                      target=documents.upload_target(user, category=category))
            assert result.ok
            return str(result.document.id)


def _tenant_with_staff(app: Flask):  # noqa: ANN202 - (tenant id, slug, its client admin, staff assigned to it)
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        staff = make_person(Role.STAFF)
        provider = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(provider, db.session.get(Tenant, tenant.id), db.session.get(User, staff.id))
        db.session.commit()
        return tenant.id, tenant.slug, admin, staff


def test_the_client_watches_documents_being_read_and_reads_the_text(app: Flask, page: Page, run_jobs,
                                                                    screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant(locale="vi")
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        tenant_id, slug = tenant.id, tenant.slug
    doc_id = _store(app, tenant_id, admin, text_pdf(), "hoa-don-thang-11.pdf", "invoice")
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents")
    progress = page.get_by_test_id("intake-progress")
    expect(progress).to_contain_text("0 of 1 documents read")
    run_jobs()
    expect(progress).to_contain_text("1 of 1 documents read", timeout=15_000)  # updated in place, no reload
    look_at(page, screenshot_dir, "intake-progress")
    page.goto(f"/t/{slug}/documents/{doc_id}")
    panel = page.get_by_test_id("intake")
    expect(panel).to_contain_text("1 page, with its own text.")
    expect(panel).to_contain_text("It reads as an invoice.")
    page.get_by_test_id("intake-text").locator("summary").click()
    expect(panel.locator("pre")).to_contain_text("Tổng cộng tiền thanh toán: 1.944.000 đồng")
    look_at(page, screenshot_dir, "intake-document",
            lambda: expect(panel.locator("pre")).to_contain_text("1.944.000"))


def test_staff_see_why_a_file_could_not_be_read_and_try_again(app: Flask, page: Page, run_jobs,
                                                              screenshot_dir: Path) -> None:
    tenant_id, slug, admin, staff = _tenant_with_staff(app)
    doc_id = _store(app, tenant_id, admin, b"%PDF-1.7\n" + b"\x02broken" * 300, "scan-hong.pdf", "other")
    run_jobs()
    sign_in(page, staff)
    page.goto(f"/t/{slug}/documents/{doc_id}")
    failed = page.get_by_test_id("intake-failed")
    expect(failed).to_have_text("Could not read this file: it may be damaged, or protected with a password.")
    look_at(page, screenshot_dir, "intake-failed", lambda: expect(page.get_by_test_id("intake-retry")).to_be_visible())
    page.get_by_test_id("intake-retry").click()
    expect(page.locator(".flash")).to_contain_text("Reading this document again")
    expect(page.get_by_test_id("intake-open")).to_be_visible()
    run_jobs()
    expect(page.get_by_test_id("intake-failed")).to_be_visible(timeout=15_000)  # the panel refreshed itself


def test_the_client_searches_the_text_and_reads_an_einvoice(app: Flask, page: Page, run_jobs,
                                                            screenshot_dir: Path) -> None:
    from tests.intake.test_einvoice import make_xml

    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        tenant_id, slug = tenant.id, tenant.slug
    invoice_id = _store(app, tenant_id, admin, make_xml(wrap=True, tax_override={"8%": 2_400_500}),
                        "hoa-don-C26TAA-123.xml", "invoice")
    _store(app, tenant_id, admin, text_pdf(), "hoa-don-hoa-sen.pdf", "invoice")
    run_jobs()
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents")
    page.get_by_test_id("search-q").fill("hoa don")
    page.get_by_role("button", name="Search").click()
    hits = page.get_by_test_id("search-hits").locator("li")
    expect(hits).to_have_count(2)
    look_at(page, screenshot_dir, "intake-search", lambda: expect(hits).to_have_count(2))
    page.get_by_test_id("search-q").fill("may tinh xach tay")
    page.get_by_role("button", name="Search").click()
    expect(hits).to_have_count(1)
    hits.first.locator("a").click()
    expect(page.get_by_test_id("einvoice")).to_contain_text("0318888884")
    expect(page.get_by_test_id("einvoice-flags")).to_contain_text("The VAT at 8% is not that rate times its base.")
    expect(page.get_by_test_id("einvoice-lines").locator("tbody tr")).to_have_count(3)
    assert page.url.endswith(invoice_id)
    look_at(page, screenshot_dir, "intake-einvoice",
            lambda: expect(page.get_by_test_id("einvoice-lines")).to_be_visible())


def test_staff_check_invoice_fields_outlined_on_the_page_and_correct_one(app: Flask, page: Page, run_jobs,
                                                                         screenshot_dir: Path) -> None:
    from tests.data.invoices import samples

    sample = samples(2)[1]  # an English tax invoice (tests.data.invoices: the truth it was made from)
    tenant_id, slug, admin, staff = _tenant_with_staff(app)
    doc_id = _store(app, tenant_id, admin, sample.pdf(), "tax-invoice.pdf", "invoice")
    run_jobs()
    sign_in(page, staff)
    page.goto(f"/t/{slug}/documents/{doc_id}")
    check = page.get_by_test_id("fields")
    expect(check.get_by_test_id("field-page")).to_be_visible()
    assert check.get_by_test_id("field-page").evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    expect(page.locator("#f-total")).to_have_value(sample.truth["total"])
    expect(page.locator("#f-supplier_tax_code")).to_have_value(sample.truth["supplier_tax_code"])
    box = check.locator('rect[data-field="total"]')
    expect(box).to_have_count(1)
    page.locator("#f-total").focus()
    expect(box).to_have_class("sure active")  # the field being read is outlined on the page
    look_at(page, screenshot_dir, "intake-fields", lambda: check.get_by_test_id("field-page").evaluate(
        "img => img.decode()"))  # the page rendered, under its outlines
    page.locator("#f-invoice_number").fill("INV-2026-9999")
    page.locator("#f-issue_date").fill("32/13/2026")
    page.get_by_test_id("fields-save").click()
    expect(page.locator(".field-error")).to_have_count(1)  # the date, said beside it; nothing saved
    expect(page.locator("#f-invoice_number")).to_have_value("INV-2026-9999")  # what was typed stays
    page.locator("#f-issue_date").fill(sample.truth["issue_date"][8:] + "/" + sample.truth["issue_date"][5:7] + "/"
                                       + sample.truth["issue_date"][:4])
    page.get_by_test_id("fields-save").click()
    expect(page.locator(".flash")).to_contain_text("Corrected: Invoice number")
    expect(page.get_by_test_id("corrected-invoice_number")).to_be_visible()
    expect(page.get_by_test_id("field-invoice_number").locator(".read-value")).to_have_text(
        sample.truth["invoice_number"])  # what was read stays beside the correction


def test_a_scanned_pdf_offers_its_searchable_copy(app: Flask, page: Page, run_jobs, screenshot_dir: Path) -> None:
    from tests.data.invoices import samples

    scan, _kind = samples(1)[0].scan(as_pdf=True)
    tenant_id, slug, admin, _staff = _tenant_with_staff(app)
    doc_id = _store(app, tenant_id, admin, scan, "hoa-don-quet.pdf", "invoice")
    run_jobs()
    sign_in(page, admin)
    page.goto(f"/t/{slug}/documents/{doc_id}")
    link = page.get_by_test_id("intake-searchable")
    expect(link).to_be_visible()
    look_at(page, screenshot_dir, "intake-searchable", lambda: expect(link).to_be_visible())
    with page.expect_download() as download:
        link.get_by_role("link").click()
    assert download.value.suggested_filename == "hoa-don-quet (searchable).pdf"

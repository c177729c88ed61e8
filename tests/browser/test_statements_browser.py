"""A statement in a real browser: the client opens the month's statement, downloads its PDF and approves it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.billing import statements
from portal.billing.models import Plan, PlanPrice, TenantPlan
from portal.extensions import db
from tenants.context import for_tenant
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant, unique

pytestmark = pytest.mark.browser
BANK = {"PROVIDER_NAME": "Sổ Sách Sài Gòn", "PROVIDER_BANK_NAME": "Vietcombank", "PROVIDER_BANK_BIN": "970436",
        "PROVIDER_BANK_ACCOUNT": "0071000123456", "PROVIDER_ACCOUNT_NAME": "CONG TY SO SACH SAI GON"}


def test_the_client_opens_downloads_and_approves_the_statement(app: Flask, page: Page, run_jobs,
                                                                screenshot_dir: Path) -> None:
    saved = {k: app.config.get(k) for k in BANK}
    app.config.update(BANK)
    try:
        with app.app_context():
            tenant = make_tenant(locale="vi")
            admin = make_person(Role.CLIENT_ADMIN, tenant)
            plan = Plan(key=unique("plan"), name="Trọn gói", currency="VND", monthly_fee=2_000_000, payment_days=15)
            plan.prices = [PlanPrice(meter="documents_received", included=Decimal(10), unit_price=5_000)]
            db.session.add(plan)
            db.session.flush()
            with for_tenant(tenant.id):
                db.session.add(TenantPlan(tenant_id=tenant.id, plan_id=plan.id, starts_on=date(2025, 1, 1)))
                db.session.commit()
            statements.run_for_tenant(tenant.id, statements.last_month(tenant))
            slug = tenant.slug
        run_jobs()
        sign_in(page, admin)
        page.goto(f"/t/{slug}/statements")
        page.locator("[data-testid=statements] a").first.click()
        expect(page.get_by_test_id("total")).to_contain_text("2,200,000")
        expect(page.get_by_test_id("vietqr").locator("svg")).to_be_visible()
        look_at(page, screenshot_dir, "statement")
        with page.expect_download() as download:
            page.get_by_test_id("pdf").click()
        assert download.value.suggested_filename.endswith(".pdf")
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        download.value.save_as(screenshot_dir / "statement.pdf")  # for a person to look at, like the screenshots
        page.get_by_test_id("approve").click()
        expect(page.get_by_test_id("approval")).to_have_text("Approved")
        expect(page.locator(".flash")).to_contain_text("You approved the statement")
    finally:
        app.config.update(saved)

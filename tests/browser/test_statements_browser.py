"""A statement in a real browser: the client opens the month's statement, downloads its PDF and approves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.billing import statements
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant, put_on_plan

pytestmark = pytest.mark.browser


def test_the_client_opens_downloads_and_approves_the_statement(app: Flask, page: Page, run_jobs, provider_bank,
                                                                screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant(locale="vi")
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        put_on_plan(tenant, prices=(("documents_received", 10, 5_000),))
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

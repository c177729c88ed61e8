"""The filing calendar in a real browser: the provider's manager opens it from the books, is refused a day the
calendar cannot count from, sets the client up (quarterly VAT, payroll); the deadlines' tasks open; the client reads
the calendar with its overdue returns and their tasks, and cannot change it. Each page at both widths and in both
languages."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.ledger import filing_services, services
from tenants.context import Scope, bound, for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant

pytestmark = pytest.mark.browser


def _client_with_books(app: Flask):  # noqa: ANN202 - (tenant id, slug, its client admin, a manager assigned)
    with app.app_context():
        tenant = make_tenant(locale="en")
        client = make_person(Role.CLIENT_ADMIN, tenant)
        manager = make_person(Role.MANAGER)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, db.session.get(Tenant, tenant.id), db.session.get(User, manager.id))
        db.session.commit()
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            services.start_books(admin, db.session.get(Tenant, tenant.id), "vn_tt133")
        return tenant.id, tenant.slug, client, manager


def test_the_manager_sets_the_calendar_up_and_the_client_reads_it(app: Flask, page: Page,
                                                                  screenshot_dir: Path) -> None:
    tenant_id, slug, client, manager = _client_with_books(app)
    sign_in(page, manager)
    page.goto(f"/t/{slug}/books")
    page.get_by_test_id("filing-calendar-link").click()
    expect(page.locator("main h1")).to_have_text("Filing calendar")
    settings = page.get_by_test_id("filing-settings")
    look_at(page, screenshot_dir, "filing-calendar-new", lambda: expect(settings).to_be_visible())

    page.locator("input[name=filing_since]").fill("2020-01-01")  # before the calendar's first year
    page.get_by_test_id("filing-settings-submit").click()
    expect(page.locator(".flash")).to_contain_text("correct the fields marked")
    expect(page.locator("#filing_since-error")).to_contain_text("Give a day from 2024-01-01")
    expect(page.locator("input[name=filing_since]")).to_have_value("2020-01-01")  # what was typed stays
    page.screenshot(path=str(screenshot_dir / "filing-calendar-refused.png"), full_page=True)

    since = date.today() - timedelta(days=100)  # a quarterly return fell due since
    page.locator("input[name=filing_since]").fill(since.isoformat())
    page.locator("input[name=vat_period][value=quarterly]").check()
    page.locator("input[name=payroll][value=on]").check()
    page.get_by_test_id("filing-settings-submit").click()
    expect(page.locator(".flash")).to_contain_text("settings are saved")
    expect(page.locator("tr[data-rule=vat_quarterly]").first).to_be_visible()
    expect(page.locator("tr[data-rule=vat_monthly]")).to_have_count(0)
    expect(page.locator("tr[data-rule=social_insurance]").first).to_be_visible()  # payroll is on
    expect(page.get_by_test_id("filing-overdue")).to_be_visible()

    with app.app_context(), for_tenant(tenant_id):  # the day's scheduled job
        assert filing_services.open_due_tasks(tenant_id) >= 1

    page.context.clear_cookies()  # the client signs in on the same browser
    sign_in(page, client)
    page.goto(f"/t/{slug}/filing-calendar")
    overdue = page.get_by_test_id("filing-overdue")
    expect(overdue.get_by_test_id("filing-task").first).to_be_visible()
    expect(page.get_by_test_id("filing-settings")).to_have_count(0)  # the client reads, never changes
    expect(page.get_by_test_id("unconfirmed")).to_have_count(0)
    look_at(page, screenshot_dir, "filing-calendar", lambda: expect(page.get_by_test_id("filing-month").first)
            .to_be_visible())
    overdue.get_by_test_id("filing-task").first.click()
    expect(page).to_have_url(re.compile(rf"/t/{slug}/tasks/[0-9a-f-]{{36}}$"))
    expect(page.locator("main h1")).to_contain_text("(due ")

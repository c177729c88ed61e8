"""Plans in a real browser: the provider admin adds a plan, gives it two prices and puts a client on it.
Every page at both widths in both languages, checked by axe-core, screenshots in ``screenshot_dir``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.billing.models import TenantPlan
from portal.extensions import db
from tenants.context import for_tenant
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant, unique

pytestmark = pytest.mark.browser


def test_the_admin_adds_a_plan_with_two_prices_and_puts_a_client_on_it(app: Flask, open_page: Callable[..., Page],
                                                                       screenshot_dir: Path) -> None:
    with app.app_context():
        admin = make_person(Role.PROVIDER_ADMIN, mfa=True)
        tenant = make_tenant()
        slug, name, tenant_id = tenant.slug, tenant.name, tenant.id
    key = unique("standard")

    page = open_page()
    sign_in(page, admin)
    page.goto("/provider/plans")
    expect(page.get_by_role("heading", name="Plans", exact=True)).to_be_visible()
    look_at(page, screenshot_dir, "plans")

    form = page.get_by_test_id("new-plan")
    form.get_by_label("Name (clients see it on their statements)").fill("Standard bookkeeping")
    form.get_by_label("Key (used in links and the API)").fill(key)
    form.get_by_label("Currency").select_option("VND")
    form.get_by_label("Monthly fee").fill("2.000.000,5")  # Vietnamese money, typed on an English page
    form.get_by_role("button", name="Add the plan").click()
    expect(form).to_contain_text("without decimals, for example 2,000,000")
    expect(form.get_by_label("Monthly fee")).to_have_value("2.000.000,5")
    form.get_by_label("Monthly fee").fill("2,000,000")
    form.get_by_role("button", name="Add the plan").click()
    expect(page).to_have_url(re.compile(rf"/provider/plans/{key}$"))
    expect(page.get_by_test_id("no-prices")).to_be_visible()

    prices = page.get_by_test_id("price-form")
    for meter, included, price in (("documents_received", "50", "5,000"), ("hours:bookkeeping", "1.5", "300,000")):
        prices = page.get_by_test_id("price-form")
        prices.get_by_label("What is charged").select_option(meter)
        prices.get_by_label("Included each month").fill(included)
        prices.get_by_label("Price of each unit above that").fill(price)
        prices.get_by_role("button", name="Save the price").click()
        expect(page.locator(f'tr[data-meter="{meter}"]')).to_be_visible()
    table = page.get_by_test_id("prices")
    expect(table.locator('tr[data-meter="documents_received"]')).to_contain_text("Documents received")
    expect(table.locator('tr[data-meter="hours:bookkeeping"]')).to_contain_text("300,000")
    look_at(page, screenshot_dir, "plan", lambda: expect(page.get_by_test_id("prices")).to_be_visible())

    page.goto(f"/provider/tenants/{slug}")
    card = page.get_by_test_id("plan-card")
    expect(card.get_by_test_id("plan-current")).to_contain_text("No plan yet")
    card.get_by_role("combobox").select_option(key)  # the card's one list: the plans
    card.get_by_label("The first of next month").check()
    card.get_by_label("Discount (%)").fill("5")
    card.get_by_role("button", name="Put the client on this plan").click()
    expect(page.locator(".flash")).to_contain_text(f"{name} is on “Standard bookkeeping”")
    expect(page.get_by_test_id("plan-next")).to_contain_text("Standard bookkeeping")
    look_at(page, screenshot_dir, "tenant-plan", lambda: expect(page.get_by_test_id("plan-card")).to_be_visible())
    with app.app_context(), for_tenant(tenant_id):
        row = db.session.query(TenantPlan).one()
        assert row.plan.key == key and row.discount_bp == 500 and row.starts_on.day == 1

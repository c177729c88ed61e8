"""A provider admin with more clients than the switcher shows finds one: the switcher, "All workspaces…", a search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tenants.policy import Role
from tenants.reach import SWITCHER_LIMIT
from tests.browser.steps import look_at, sign_in
from tests.factories import make_person, make_tenant, unique

pytestmark = pytest.mark.browser


def test_a_provider_admin_finds_a_client_past_the_switcher_by_searching(app: Flask, page: Page,
                                                                         screenshot_dir: Path) -> None:
    word = unique("Lotus Trading")
    with app.app_context():
        wanted = make_tenant(f"{word} Hanoi")
        slug, name = wanted.slug, wanted.name
        for n in range(SWITCHER_LIMIT):
            make_tenant(f"{word} Branch {n:02d}")
        admin = make_person(Role.PROVIDER_ADMIN)
        make_person(Role.STAFF)  # someone to assign
    sign_in(page, admin)

    switcher = page.locator("details.switcher")
    switcher.locator("summary").click()
    expect(switcher.locator("li")).to_have_count(SWITCHER_LIMIT + 1)  # the first ten, and the way to all
    page.screenshot(path=str(screenshot_dir / "workspaces-switcher-en-phone.png"), full_page=True)
    switcher.get_by_role("link", name="All workspaces…").click()
    expect(page).to_have_url(re.compile(r"/tenants$"))
    search = page.get_by_label("Company or short name")
    expect(search).to_be_focused()  # arriving here is to search

    search.fill(word.upper()[-10:] + " hanoi")  # part of the name, in another case
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("workspaces-shown")).to_have_text(re.compile(r"^1 workspace matches"))
    expect(search).to_have_value(word.upper()[-10:] + " hanoi")  # what was typed is kept
    look_at(page, screenshot_dir, "workspaces-search",
            lambda: expect(page.locator("ul.cards li")).to_have_count(1))

    search = page.get_by_label("Company or short name")
    search.fill("no such company")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No workspace matches “no such company”.")).to_be_visible()
    page.get_by_role("link", name="Show all").click()
    expect(page).to_have_url(re.compile(r"/tenants$"))

    page.get_by_label("Company or short name").fill(slug)  # or its short name
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(rf"/t/{slug}/$"))
    expect(page.locator("details.switcher summary")).to_have_text(name)

    # The provider console's list of clients searches the same way.
    page.goto("/provider/tenants")
    page.get_by_label("Company or short name").fill(word[-10:])
    page.get_by_role("button", name="Search").click()
    caption = page.locator("table caption")
    expect(caption).to_have_text(f"{SWITCHER_LIMIT + 1} client tenants match “{word[-10:]}”")
    look_at(page, screenshot_dir, "provider-tenants-search",
            lambda: expect(page.locator("tbody tr")).to_have_count(SWITCHER_LIMIT + 1))

    # So do the console's dashboard and its assignments, which show the first clients by name.
    for path, name_ in (("/provider/", "provider-dashboard-search"), ("/provider/assignments", "assignments-search")):
        page.goto(f"{path}?q={word[-10:]}")
        expect(page.get_by_label("Company or short name")).to_have_value(word[-10:])
        look_at(page, screenshot_dir, name_,
                lambda: expect(page.locator("[data-tenant]")).to_have_count(SWITCHER_LIMIT + 1))

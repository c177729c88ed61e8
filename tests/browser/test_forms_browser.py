"""Forms in a real browser: the patterns compile and refuse what the server refuses; the pages a new user met
(tasks, a task's timeline, the client's home, API tokens, the tenant form) at both widths in both languages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.work import services
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.steps import look_at, sign_in, switch_language
from tests.factories import make_person, make_tenant

pytestmark = pytest.mark.browser








def test_the_short_name_pattern_compiles_and_refuses_what_the_server_refuses(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        admin = make_person(Role.PROVIDER_ADMIN, mfa=True)
    sign_in(page, admin)
    page.goto("/provider/tenants")
    slug = page.get_by_label("Short name (used in links)")
    for typed, refused in (("Test Co!", True), ("Test-Co", True), ("te", True), ("test-co", False)):
        slug.fill(typed)
        assert slug.evaluate("input => input.validity.patternMismatch") is refused, typed
    # (The page fixture fails the test on the console error an invalid pattern causes.)
    page.get_by_label("Company name").fill("Test Co")
    slug.fill("Test-Co")
    page.get_by_role("button", name="Create tenant and invite its admin").click()
    expect(page.locator("#slug-error-1")).to_have_text("The short name is written in lowercase: test-co.")
    expect(page.get_by_label("Short name (used in links)")).to_be_focused()  # the first field to fix
    look_at(page, screenshot_dir, "forms-tenant-refused")


def test_a_title_of_only_spaces_is_refused_by_the_browser_and_by_the_server(
        app: Flask, open_page: Callable[..., Page], screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        staff = make_person(Role.STAFF, mfa=True)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, tenant, db.session.get(User, staff.id))
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            row = db.session.get(Tenant, tenant.id)
            task = services.create_task(admin, row, title="Register two new hires for social insurance",
                                        service_line_key="admin")
            task_id = task.id
            services.assign(admin, row, str(task_id), assignee_id=str(staff.id), reviewer_id=None)
        with bound(Scope(user_id=staff.id, tenant_ids=frozenset({tenant.id}), role=Role.STAFF)):
            worker = db.session.get(User, staff.id)
            services.move(worker, row, str(task_id), "start")
            services.move(worker, row, str(task_id), "ask_client", reason="Please send both ID card numbers.")
        slug = tenant.slug
    page = open_page(PHONE)
    sign_in(page, member)
    tasks = f"/t/{slug}/tasks"
    page.goto(tasks)
    ask = page.get_by_test_id("request-work")
    title = ask.get_by_label("What do you need?")
    title.fill("   ")
    ask.get_by_label("Details").fill("Start date 1 April")
    ask.get_by_role("button", name="Send the request").click()
    assert title.evaluate("input => input.validity.patternMismatch")
    expect(page).to_have_url(re.compile(re.escape(tasks) + r"$"))  # the browser kept it: nothing was sent

    # A browser that sends it anyway (no pattern support): the server refuses it on the same page.
    title.evaluate("input => input.removeAttribute('pattern')")
    ask.get_by_role("button", name="Send the request").click()
    expect(page.locator("#ask-title-error-1")).to_have_text("This field is required.")
    expect(page.get_by_label("Details")).to_have_value("Start date 1 April")
    expect(page.get_by_label("What do you need?")).to_be_focused()
    # Switching the language now leads back to the tasks page, not to the URL the form was posted to (405).
    expect(page).to_have_url(re.compile(re.escape(tasks) + "/request$"))
    with page.expect_navigation() as switched:
        page.locator("form.lang button[value=vi]").click()
    assert switched.value.status == 200
    expect(page).to_have_url(re.compile(re.escape(tasks) + r"$"))
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    switch_language(page, "en")
    look_at(page, screenshot_dir, "forms-tasks-refused")

    page.goto(f"/t/{slug}/")
    expect(page.get_by_test_id("questions")).to_contain_text("Register two new hires for social insurance")
    look_at(page, screenshot_dir, "forms-client-home")
    page.get_by_test_id("questions").get_by_role("link", name="Register two new hires for social insurance").click()
    expect(page.get_by_test_id("timeline")).to_contain_text("We are working on it → Waiting for you")
    expect(page.get_by_test_id("timeline")).not_to_contain_text("changed the assignment")
    look_at(page, screenshot_dir, "forms-task-client")

    page.goto(f"/t/{slug}/tokens")
    page.get_by_label("Name").fill("accounting export")
    page.get_by_role("button", name="Create the token").click()
    expect(page.get_by_test_id("new-token")).to_contain_text("Authorization: Bearer <token>")
    look_at(page, screenshot_dir, "forms-tokens")

    staff_page = open_page(DESKTOP)
    sign_in(staff_page, staff)
    staff_page.goto(f"/t/{slug}/tasks/{task_id}")
    expect(staff_page.get_by_test_id("timeline")).to_contain_text("changed the assignment")
    look_at(staff_page, screenshot_dir, "forms-task-staff")

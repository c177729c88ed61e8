"""The work in a real browser: take the next task, ask the client, the client answers, review, approve."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.work.services import create_task
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.test_signin_browser import sign_in_with_password
from tests.factories import Person, make_person, make_tenant

pytestmark = pytest.mark.browser


def _sign_in_with_mfa(page: Page, person: Person) -> None:
    sign_in_with_password(page, person)
    page.get_by_label("Code", exact=True).fill(person.next_code())
    page.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/auth/"))


def test_take_ask_answer_review_approve(app: Flask, open_page: Callable[..., Page], live_server: str) -> None:
    with app.app_context():
        tenant = make_tenant()
        staff, reviewer = make_person(Role.STAFF, mfa=True), make_person(Role.MANAGER, mfa=True)
        member = make_person(Role.CLIENT_MEMBER, tenant, mfa=False)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        for person in (staff, reviewer):
            assign(admin, tenant, db.session.get(User, person.id))
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            create_task(admin, db.session.get(Tenant, tenant.id), title="Register new hires for social insurance",
                        service_line_key="admin", priority=1, reviewer_id=str(reviewer.id))

    def page_for(person: Person, mfa: bool) -> Page:
        page = open_page()
        (_sign_in_with_mfa if mfa else sign_in_with_password)(page, person)
        return page

    worker = page_for(staff, mfa=True)
    worker.goto("/provider/work")
    worker.get_by_role("button", name="Take the next task").click()
    expect(worker.get_by_test_id("task-title")).to_have_text("Register new hires for social insurance")
    expect(worker.get_by_test_id("task-state")).to_have_text("In progress")
    task_url = worker.url
    worker.get_by_label("Your question to the client").fill("Please send the ID card numbers of both hires.")
    worker.locator('[data-move="ask_client"]').click()
    expect(worker.get_by_test_id("task-state")).to_have_text("Waiting on client")

    client = page_for(member, mfa=False)
    client.goto(task_url.replace(live_server, ""))
    expect(client.get_by_test_id("task-state")).to_have_text("Waiting for you")
    client.get_by_label("Your answer").fill("079123456789 and 079987654321")
    client.locator('[data-move="answer"]').click()
    expect(client.get_by_test_id("task-state")).to_have_text("We are working on it")

    worker.reload()
    worker.locator('[data-move="submit"]').click()
    expect(worker.get_by_test_id("task-state")).to_have_text("In review")

    checker = page_for(reviewer, mfa=True)
    checker.goto("/provider/work")
    checker.get_by_role("link", name="Register new hires for social insurance").click()
    checker.locator('[data-move="approve"]').click()
    expect(checker.get_by_test_id("task-state")).to_have_text("Done")
    expect(checker.get_by_test_id("timeline")).to_contain_text("In review → Done")


def test_team_queues_show_what_waits_and_take_from_a_line(app: Flask, open_page: Callable[..., Page]) -> None:
    with app.app_context():
        tenant = make_tenant()
        staff = make_person(Role.STAFF, mfa=True)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, tenant, db.session.get(User, staff.id))
        with bound(Scope(user_id=admin.id, tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            for title, priority in (("October payroll, second run", 3), ("October payroll", 1)):
                create_task(admin, db.session.get(Tenant, tenant.id), title=title, service_line_key="payroll",
                            priority=priority)
    page = open_page()
    _sign_in_with_mfa(page, staff)
    page.goto("/provider/work")
    page.get_by_role("link", name="Team queues").click()
    payroll = page.locator('tr[data-line="payroll"]')
    expect(payroll.get_by_test_id("waiting")).to_have_text("2")
    expect(payroll.locator("meter")).to_be_visible()
    payroll.get_by_role("link", name="Payroll").click()
    expect(page.get_by_test_id("queue-summary")).to_contain_text("2 tasks are waiting")
    expect(page.get_by_test_id("queue").locator("tbody tr").first).to_contain_text("October payroll")
    page.get_by_test_id("take-from-queue").get_by_role("button", name="Take the next task").click()
    expect(page.get_by_test_id("task-title")).to_have_text("October payroll")  # the urgent one first
    expect(page.get_by_test_id("task-state")).to_have_text("In progress")
    page.goto("/provider/queues")
    expect(page.locator('tr[data-line="payroll"]').get_by_test_id("waiting")).to_have_text("1")


def test_an_admin_adds_a_service_line_in_the_browser(app: Flask, open_page: Callable[..., Page]) -> None:
    with app.app_context():
        admin = make_person(Role.PROVIDER_ADMIN, mfa=True)
    page = open_page()
    _sign_in_with_mfa(page, admin)
    page.goto("/provider/")
    page.get_by_role("link", name="Service lines").click()
    form = page.get_by_test_id("add-line")
    form.get_by_label("Name").fill("Audit support")
    form.get_by_label("Key (used in links and the API)").fill("audit_support")
    form.get_by_role("button", name="Add the line").click()
    expect(page.locator(".flash, [role=status], .alert").first).to_contain_text("Service line “Audit support” added")
    expect(page.locator('tr[data-line="audit_support"] input[name="name"]')).to_have_value("Audit support")

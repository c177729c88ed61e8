"""Quality control by sampling in a real browser: the checker takes the next check, records findings and
sends the work back; the manager sets the rates; the KPI pages show the error rate (provider and client).
Every page at both widths in both languages, checked by axe-core, screenshots in ``screenshot_dir``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.work import quality, services
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.browser.steps import look_at, sign_in
from tests.factories import Person, make_person, make_tenant

pytestmark = pytest.mark.browser








def test_check_send_back_rates_and_error_rates(app: Flask, open_page: Callable[..., Page],
                                                screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        manager, worker = make_person(Role.MANAGER, mfa=True), make_person(Role.STAFF, mfa=True)
        checker, other = make_person(Role.STAFF, mfa=True), make_person(Role.STAFF, mfa=True)
        client_admin = make_person(Role.CLIENT_ADMIN, tenant)
        slug, name = tenant.slug, tenant.name
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        for person in (manager, worker, checker, other):
            assign(admin, tenant, db.session.get(User, person.id))

        def as_(person: Person, role: Role, fn):  # noqa: ANN001, ANN202
            user = db.session.get(User, person.id)
            with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant.id}), role=role)):
                return fn(user, db.session.get(Tenant, tenant.id))

        as_(manager, Role.MANAGER, lambda u, t: quality.set_tenant_rate(u, t, line_key="bookkeeping", percent="100"))
        titles = ["Post the March purchase invoices", "Reconcile the VCB account for March",
                  "Book the March payroll journal"]
        tasks = []
        for title in titles:
            task_id = as_(manager, Role.MANAGER, lambda u, t, title=title: services.create_task(
                u, t, title=title, service_line_key="bookkeeping", assignee_id=str(worker.id),
                reviewer_id=str(manager.id)).id)
            for person, role, move in ((worker, Role.STAFF, "start"), (worker, Role.STAFF, "submit"),
                                       (manager, Role.MANAGER, "approve")):
                as_(person, role, lambda u, t, m=move, i=task_id: services.move(u, t, str(i), m))
            tasks.append(task_id)
        # Two checks finished this month by someone else: one with a major finding, one clean.
        for task_id, finding in zip(tasks[1:], ("major", "none"), strict=True):
            as_(other, Role.STAFF, lambda u, t, i=task_id, f=finding: quality.record_findings(
                u, t, str(i), finding=f, kind="wrong_amount" if f == "major" else None,
                note="VAT booked at 8 % instead of 10 %" if f == "major" else None))

    page = open_page()
    sign_in(page, checker)
    page.goto("/provider/quality")
    expect(page.get_by_test_id("quality-waiting")).to_contain_text(titles[0])
    look_at(page, screenshot_dir, "quality-queue")
    page.get_by_role("button", name="Take the next check").click()
    expect(page).to_have_url(re.compile(rf"/tasks/{tasks[0]}#quality-check$"))
    form = page.get_by_test_id("quality-form")
    form.get_by_label("Minor findings").check()
    form.get_by_role("button", name="Record the findings").click()
    expect(page.get_by_test_id("quality-check")).to_contain_text("Choose what kind of error it is.")
    look_at(page, screenshot_dir, "quality-check-refused")  # switching the language reloads the page: the form is empty
    form = page.get_by_test_id("quality-form")
    form.get_by_label("Minor findings").check()
    form.get_by_label("Kind of error (with findings)").select_option("wrong_period")
    form.get_by_label("Note (what was wrong; the client never sees it)").fill("Booked in April, belongs to March")
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Record and send back as rework").click()
    expect(page.get_by_test_id("quality-finding")).to_contain_text("Minor findings")
    expect(page.get_by_test_id("task-state")).to_have_text("In progress")
    expect(page.get_by_test_id("timeline")).to_contain_text("Done → In progress (sent back after a quality check)")
    look_at(page, screenshot_dir, "quality-check-done")

    boss = open_page()
    sign_in(boss, manager)
    boss.goto(f"/provider/quality?client={slug}#client-rates")
    expect(boss.get_by_test_id("quality-overrides")).to_contain_text(name)
    look_at(boss, screenshot_dir, "quality-rates")
    row = boss.get_by_test_id("quality-rates").locator('li[data-line="payroll"]')
    row.locator('input[name="percent"]').fill("150")
    row.get_by_role("button", name="Save").click()
    expect(boss.get_by_test_id("quality-rates").locator('li[data-line="payroll"]')).to_contain_text("from 0 to 100")
    look_at(boss, screenshot_dir, "quality-rates-refused")
    boss.goto("/provider/kpi")
    expect(boss.get_by_test_id("kpi-quality-people")).to_be_visible()
    look_at(boss, screenshot_dir, "quality-kpi-provider")
    boss.goto(f"/t/{slug}/kpi")
    expect(boss.get_by_test_id("kpi-quality")).to_contain_text("67%")  # 2 of the 3 checked had findings
    look_at(boss, screenshot_dir, "quality-kpi-provider-client")

    reader = open_page()
    sign_in(reader, client_admin)
    reader.goto(f"/t/{slug}/kpi")
    shown = reader.get_by_test_id("kpi-quality")
    expect(shown).to_contain_text("67%")
    expect(reader.get_by_test_id("kpi-quality-people")).to_have_count(0)
    look_at(reader, screenshot_dir, "quality-kpi-client")
    reader.goto(f"/t/{slug}/tasks/{tasks[0]}")
    expect(reader.get_by_test_id("quality-check")).to_have_count(0)
    expect(reader.get_by_test_id("timeline")).not_to_contain_text("quality")

"""In a real browser, both widths, both languages: the second-factor page once set up and moving it to a new
authenticator; resending a pending invitation (client users, provider staff) and the old link's page; the
time page's CSV download."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from portal.extensions import db
from portal.work import services
from portal.work import time as timing
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User, UserToken
from tenants.policy import Role
from tests.browser.conftest import DESKTOP
from tests.browser.steps import look_at, sign_in
from tests.factories import PASSWORD, make_person, make_tenant, unique

pytestmark = pytest.mark.browser


def _age_invitations(app: Flask, email: str) -> None:
    """The minute that refuses a second send has passed."""
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        db.session.execute(update(UserToken).where(UserToken.user_id == user.id)
                           .values(created_at=UserToken.created_at - timedelta(minutes=2)))
        db.session.commit()


def test_the_second_factor_page_once_set_up_and_moving_it_to_a_new_phone(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        staff = make_person(Role.STAFF, mfa=True)
    page.set_viewport_size(DESKTOP)
    sign_in(page, staff)
    page.goto("/auth/mfa/enrol")
    expect(page.get_by_test_id("mfa-enrolled")).to_contain_text("Your second factor is set up")
    expect(page.get_by_test_id("totp-secret")).to_have_count(0)
    look_at(page, screenshot_dir, "account-mfa-enrolled")

    page.get_by_test_id("mfa-renew").click()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("Code from your current authenticator app").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("main form")).to_contain_text("do not match")
    look_at(page, screenshot_dir, "account-mfa-renew-refused")
    page.set_viewport_size(DESKTOP)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("Code from your current authenticator app").fill(staff.next_code())
    page.get_by_role("button", name="Continue").click()
    secret = page.get_by_test_id("totp-secret").inner_text()
    page.screenshot(path=str(screenshot_dir / "forms-mfa-renew-qr-en-desktop.png"), full_page=True)
    expect(page.locator("img.qr")).to_be_visible()
    page.get_by_label("Code", exact=True).fill("000000")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Confirm your new authenticator")).to_be_visible()
    expect(page.get_by_test_id("totp-secret")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "forms-mfa-renew-confirm-en-desktop.png"), full_page=True)
    # The field's name now carries its error too ("Code ! That code did not match...").
    page.get_by_role("textbox", name=re.compile(r"^Code")).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("mfa-enrolled")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Your new authenticator is set up")
    page.screenshot(path=str(screenshot_dir / "forms-mfa-renewed-en-desktop.png"), full_page=True)


def test_resending_pending_invitations_and_the_old_links_page(
        app: Flask, open_page: Callable[..., Page], screenshot_dir: Path, smtp, run_jobs) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        provider_admin = make_person(Role.PROVIDER_ADMIN, mfa=True)
        slug = tenant.slug
    colleague = f"{unique('colleague')}@example.test"
    page = open_page(DESKTOP)
    sign_in(page, admin)
    page.goto(f"/t/{slug}/users")
    page.get_by_label("E-mail").fill(colleague)
    page.get_by_role("button", name="Send the invitation").click()
    run_jobs()
    [old] = [re.search(r"http://localhost(/auth/invite/\S+)", m.get_content()).group(1) for m in smtp.to(colleague)]

    row = page.locator("tr", has_text=colleague)
    row.get_by_role("button", name="Resend invitation").click()  # at once: refused, nothing sent
    expect(page.locator("body")).to_contain_text("less than a minute ago")
    _age_invitations(app, colleague)
    page.locator("tr", has_text=colleague).get_by_role("button", name="Resend invitation").click()
    expect(page.locator("body")).to_contain_text(f"We sent {colleague} a new invitation")
    look_at(page, screenshot_dir, "account-users-resent")
    run_jobs()
    assert len(smtp.to(colleague)) == 2

    stale = open_page(DESKTOP)
    stale.goto(old)
    expect(stale.get_by_test_id("link-replaced")).to_be_visible()
    look_at(stale, screenshot_dir, "account-invite-replaced")

    staff_email = f"{unique('newstaff')}@example.test"
    console = open_page(DESKTOP)
    sign_in(console, provider_admin)
    console.goto("/provider/staff")
    console.get_by_label("E-mail").fill(staff_email)
    console.get_by_role("button", name="Send invitation", exact=True).click()
    _age_invitations(app, staff_email)
    console.locator("tr", has_text=staff_email).get_by_role("button", name="Resend invitation").click()
    expect(console.locator("body")).to_contain_text(f"We sent {staff_email} a new invitation")
    look_at(console, screenshot_dir, "account-staff-resent")


def test_the_time_page_downloads_its_month_as_csv(app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        manager = make_person(Role.MANAGER, mfa=True)
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        assign(admin, tenant, db.session.get(User, manager.id))
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant.id}), role=Role.MANAGER)):
            row, worker = db.session.get(Tenant, tenant.id), db.session.get(User, manager.id)
            task = services.create_task(worker, row, title="=SUM(A1:A9) payroll check", service_line_key="payroll")
            timing.add_entry(worker, str(task.id), day=timing.today().isoformat(), minutes="95", billable=True,
                             note="@cfo asked")
        slug = tenant.slug
    page.set_viewport_size(DESKTOP)
    sign_in(page, manager)
    page.goto(f"/t/{slug}/time")
    with page.expect_download() as info:
        page.get_by_test_id("time-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert [(r["task"], r["minutes"], r["note"]) for r in rows] == [("'=SUM(A1:A9) payroll check", "95", "'@cfo asked")]
    look_at(page, screenshot_dir, "account-time-csv")

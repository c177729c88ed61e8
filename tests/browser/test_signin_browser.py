"""Sign-in in a real browser: password, second factor, tenant home, language, enrolment.

Runs headless Chromium against the app served over HTTP on loopback, so the
strict CSP, the stylesheet, the script and the cookies are all exercised as a
person would meet them. Screenshots of the tenant home at phone and desktop
width are written to PORTAL_SCREENSHOTS (default: the temp dir) for review.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tenants.policy import Role
from tests.browser.conftest import DESKTOP, PHONE
from tests.factories import Person, make_person, make_tenant

pytestmark = pytest.mark.browser


def sign_in_with_password(page: Page, person: Person) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.get_by_label("E-mail").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()


def test_client_admin_signs_in_with_a_second_factor_and_switches_to_vietnamese(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        company, slug = tenant.name, tenant.slug

    sign_in_with_password(page, admin)
    expect(page).to_have_url(re.compile(r"/auth/mfa$"))
    page.get_by_label("Code", exact=True).fill(admin.next_code())
    page.get_by_role("button", name="Continue").click()

    # One workspace: straight to its home, named after the company.
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(company)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    # The stylesheet applied (served from 'self' under the CSP): the top bar is the brand colour.
    topbar = page.locator("header.topbar")
    expect(topbar).to_have_css("background-color", "rgb(15, 43, 76)")

    # The layout holds at phone width: nothing wider than the screen.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(screenshot_dir / "portal-home-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    expect(topbar).to_have_css("flex-wrap", "nowrap")
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    page.screenshot(path=str(screenshot_dir / "portal-home-desktop.png"), full_page=True)

    # The workspace switcher opens without script and closes on a click outside it.
    switcher = page.locator("details.switcher")
    switcher.locator("summary").click()
    expect(switcher).to_have_attribute("open", "")
    expect(switcher.get_by_role("link", name=company)).to_be_visible()
    page.get_by_role("heading", level=1).click()
    expect(switcher).not_to_have_attribute("open", "")

    english = page.locator(".lang button[value=en]")
    vietnamese = page.get_by_role("button", name="Tiếng Việt")
    expect(english).to_have_class(re.compile(r"\bactive\b"))
    expect(vietnamese).not_to_have_class(re.compile(r"\bactive\b"))
    vietnamese.click()

    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(company)
    expect(vietnamese).to_have_class(re.compile(r"\bactive\b"))
    expect(english).not_to_have_class(re.compile(r"\bactive\b"))
    # The choice is kept on the account: it survives a fresh page load.
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "vi")


def test_staff_without_a_second_factor_must_enrol_and_gets_recovery_codes(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        staff = make_person(Role.STAFF, mfa=False)

    sign_in_with_password(page, staff)
    expect(page).to_have_url(re.compile(r"/auth/mfa/enrol$"))
    expect(page.locator("img.qr")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    page.screenshot(path=str(screenshot_dir / "portal-enrol-phone.png"), full_page=True)

    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()

    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    shown = [c.strip() for c in codes.all_inner_texts()]
    assert len(set(shown)) == 10 and all(shown), shown
    page.screenshot(path=str(screenshot_dir / "portal-recovery-codes-phone.png"), full_page=True)

    # Saved: the person is signed in now, and leaves the sign-in pages.
    page.get_by_role("link", name="I have saved them").click()
    expect(page).not_to_have_url(re.compile(r"/auth/"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

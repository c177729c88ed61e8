"""Leaving, in a real browser: the client prepares an export, takes its passphrase once and downloads it;
the provider admin sees the offboarding section; anyone checks a certificate. Each page at 1280 and
390 px wide, in English and Vietnamese, without a console error or a page wider than the screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.trust import certificates
from tenants import signing
from tenants.keyring import app_keyring
from tenants.policy import Role
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_signin_browser import sign_in_with_password
from tests.documents import samples
from tests.factories import make_person, make_tenant

pytestmark = pytest.mark.browser


def _sign_in(page: Page, person) -> None:  # noqa: ANN001
    sign_in_with_password(page, person)
    page.get_by_label("Code", exact=True).fill(person.next_code())
    page.get_by_role("button", name="Continue").click()


def _fits(page: Page) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def _shots(page: Page, screenshot_dir: Path, name: str) -> None:
    """The page at both widths, in both languages (the interface language is switched like a user does)."""
    for lang in ("en", "vi"):
        _language(page, lang)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            _fits(page)
            page.screenshot(path=str(screenshot_dir / f"{name}-{lang}-{label}.png"), full_page=True)
    _language(page, "en")  # the rest of the test reads English


def _language(page: Page, lang: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.locator(f"form.lang button[value={lang}]").click()
    page.wait_for_load_state()


def test_the_client_admin_exports_in_the_browser(app: Flask, page: Page, run_jobs, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.CLIENT_ADMIN, tenant)
        slug = tenant.slug
        from portal.documents import services
        from tenants.context import Scope, bound

        with bound(Scope(tenant_ids=frozenset({tenant.id}), role=Role.PROVIDER_ADMIN)):
            services.upload(None, tenant, [samples.pdf(4242)], filename="contract.pdf",
                            target=services.upload_target(None))
        db.session.commit()
    _sign_in(page, admin)
    expect(page).to_have_url(re.compile(rf"/t/{slug}/"))
    page.get_by_role("link", name="Export").first.click()
    expect(page.get_by_role("heading", name="Export your data")).to_be_visible()
    _shots(page, screenshot_dir, "export-empty")
    page.get_by_role("button", name="Prepare an export").click()
    expect(page.locator("progress")).to_be_visible()  # the progress bar while it is built
    _shots(page, screenshot_dir, "export-building")
    run_jobs()
    # The page updates itself in place while it is built (portal.js, data-refresh; no meta refresh).
    expect(page.get_by_text("Ready until")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="Show the passphrase (once)").click()
    passphrase = page.get_by_test_id("passphrase").inner_text()
    assert re.fullmatch(r"([a-z2-9]{5}-){5}[a-z2-9]{5}", passphrase)
    page.set_viewport_size(PHONE)
    _fits(page)
    page.screenshot(path=str(screenshot_dir / "export-passphrase-phone.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the archive").click()
    assert download.value.suggested_filename.endswith(".7z")
    archive = Path(download.value.path())  # waits for the whole archive
    assert archive.stat().st_size > 0
    page.goto(f"/t/{slug}/export")
    expect(page.get_by_text("deleted from our servers")).to_be_visible()
    _shots(page, screenshot_dir, "export-done")


def test_the_provider_admin_sees_how_to_offboard_and_anyone_checks_a_certificate(
        app: Flask, page: Page, screenshot_dir: Path) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin = make_person(Role.PROVIDER_ADMIN)
        slug = tenant.slug
        envelope = signing.sign(app_keyring(), {"type": "deletion-certificate", "tenant_slug": slug})
        text = certificates.render(envelope, "Deletion certificate", [f"Company: {slug}"])
    _sign_in(page, admin)
    page.goto(f"/provider/tenants/{slug}")
    expect(page.get_by_role("heading", name="Offboard this client")).to_be_visible()
    expect(page.get_by_label("Type the short name to confirm")).to_have_attribute("placeholder", slug)
    _shots(page, screenshot_dir, "offboard-section")

    page.goto("/keys")
    expect(page.get_by_test_id("key").first).to_contain_text("portal-signing-v1")
    _shots(page, screenshot_dir, "keys")
    page.goto("/certificates/verify")
    page.get_by_label("…or paste its text").fill(text)
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_test_id("valid")).to_be_visible()
    _shots(page, screenshot_dir, "certificate-valid")
    page.goto("/certificates/verify")
    page.get_by_label("…or paste its text").fill(text.replace(slug, slug + "x"))
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_test_id("invalid")).to_contain_text("altered or forged")

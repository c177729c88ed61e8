"""portal.js in a real browser: confirm before submit, copy buttons, the switcher, tables.

The pages work without the script; these tests check what it adds when it runs,
under the portal's real CSP (no inline script: elements are added through the DOM).
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from tenants.policy import Role
from tests.factories import Person, make_person, make_tenant

pytestmark = pytest.mark.browser


def script_ready(page: Page) -> None:
    """Wait until portal.js has run on the current page.

    It is a deferred script: the URL (and even the DOM) of a new page is there before it runs,
    so a test that reached the page must not assume its listeners or ``window.portal`` yet.
    The script publishes ``window.portal`` as its last statement.
    """
    page.wait_for_function("() => typeof window.portal === 'object' && typeof window.portal.enhance === 'function'")


def signed_in_home(app: Flask, page: Page) -> str:
    """Sign in a client member; returns their tenant's slug, on its home page with portal.js running."""
    with app.app_context():
        tenant = make_tenant()
        person: Person = make_person(Role.CLIENT_MEMBER, tenant)
        slug = tenant.slug
    page.goto("/auth/login")
    page.get_by_label("E-mail").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    script_ready(page)
    return slug


def test_data_confirm_asks_before_submitting(app: Flask, page: Page) -> None:
    signed_in_home(app, page)
    page.evaluate("""() => {
        const form = document.createElement("form");
        form.method = "get"; form.action = "/healthz"; form.id = "risky";
        form.setAttribute("data-confirm", "Really?");
        const button = document.createElement("button");
        button.type = "submit"; button.textContent = "Do it";
        form.appendChild(button);
        document.querySelector("main").appendChild(form);
    }""")
    questions: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Do it").click()
    expect(page.locator("#risky")).to_be_visible()  # still here: nothing was submitted
    assert questions == ["Really?"]
    assert "/t/" in page.url

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Do it").click()
    expect(page).to_have_url(re.compile(r"/healthz\?*$"))


def test_copy_button_copies_the_text(app: Flask, context: BrowserContext, page: Page) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    signed_in_home(app, page)
    page.evaluate("""() => {
        const code = document.createElement("code");
        code.id = "key"; code.textContent = "JBSWY3DPEHPK3PXP"; code.setAttribute("data-copy", "");
        document.querySelector("main").appendChild(code);
        window.portal.enhance(document);
        window.portal.enhance(document);  // idempotent: still one button
    }""")
    buttons = page.locator("#key + button.copy-button")
    expect(buttons).to_have_count(1)
    expect(buttons).to_have_text("Copy")
    buttons.click()
    expect(buttons).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "JBSWY3DPEHPK3PXP"
    expect(page.locator("#key")).to_have_text("JBSWY3DPEHPK3PXP")  # the element itself is unchanged


def test_switcher_closes_on_escape_and_tables_get_a_scroll_wrapper(app: Flask, page: Page) -> None:
    signed_in_home(app, page)
    switcher = page.locator("details.switcher")
    switcher.locator("summary").click()
    expect(switcher).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(switcher.locator("summary")).to_be_focused()

    page.evaluate("""() => {
        const table = document.createElement("table");
        table.className = "table"; table.id = "wide";
        table.innerHTML = "<thead><tr>" + "<th>Column</th>".repeat(12) + "</tr></thead>";
        document.querySelector("main").appendChild(table);
        window.portal.enhance(document);
    }""")
    wrap = page.locator("div.table-wrap:has(> #wide)")
    expect(wrap).to_have_count(1)
    # The wide table scrolls inside its wrapper; the page itself does not get wider.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")

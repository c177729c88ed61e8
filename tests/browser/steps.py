"""What the browser tests do again and again: sign in, switch the language, look at a page at both widths."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_signin_browser import sign_in_with_password
from tests.factories import Person


def sign_in(page: Page, person: Person) -> None:
    """Sign in through the pages, with the second factor when the person has one."""
    sign_in_with_password(page, person)
    if person.totp_secret:
        page.get_by_label("Code", exact=True).fill(person.next_code())
        page.get_by_role("button", name="Continue").click()
    expect(page).not_to_have_url(re.compile(r"/auth/"))


def switch_language(page: Page, lang: str) -> None:
    """Switch with the header's language buttons, as a person does."""
    page.locator(f"form.lang button[value={lang}]").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    # The new page's scripts too (a key pressed before they run does what the bare form does: the grid's
    # Enter sent the month instead of moving down, on a loaded machine).
    page.wait_for_load_state("load")


def look_at(page: Page, screenshot_dir: Path, name: str, check: Callable[[], None] = lambda: None) -> None:
    """The page at both widths, in English then in Vietnamese (switched like a person does), then back to
    English at desktop width: never wider than the window, ``check`` holds each time, a screenshot of each."""
    for lang in ("en", "vi"):
        if lang == "vi":
            switch_language(page, "vi")
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= size["width"], f"{page.url} is {width}px wide at {label} ({lang})"
            check()
            page.screenshot(path=str(screenshot_dir / f"{name}-{lang}-{label}.png"), full_page=True)
    switch_language(page, "en")
    page.set_viewport_size(DESKTOP)

"""Fixtures for browser tests: the app under a real HTTP server, and headless Chromium.

The server is werkzeug's threaded WSGI server on 127.0.0.1 and a free port, in a
background thread, serving the session ``app`` (tests/conftest.py): the same
database, Redis and SMTP sink as the rest of the suite. The browser is Debian's
Chromium driven by Playwright (Playwright cannot download its own browsers here).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from werkzeug.serving import make_server

from tests.services import free_port

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The base URL of the app served over real HTTP on loopback."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, live_server: str) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, phone-sized by default."""
    ctx = browser.new_context(base_url=live_server, viewport=PHONE, locale="en-GB")
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def watch_console(page: Page) -> list[str]:
    """The console errors and uncaught exceptions of ``page`` from now on (a CSP refusal shows up there)."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # The browser's own request for /favicon.ico is not the page's doing.
        if msg.type == "error" and not (msg.location or {}).get("url", "").endswith("/favicon.ico"):
            errors.append(f"{msg.text} ({(msg.location or {}).get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on a console error (a CSP refusal shows up there)."""
    page = context.new_page()
    errors = watch_console(page)
    yield page
    assert not errors, f"browser console errors: {errors}"


@pytest.fixture
def open_page(browser: Browser, live_server: str) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser profile of its own, for tests with several people at once.

    Each page is checked like ``page``: any console error on any of them fails the test.
    """
    contexts: list[BrowserContext] = []
    watched: list[list[str]] = []

    def open_(viewport: dict[str, int] = DESKTOP) -> Page:
        ctx = browser.new_context(base_url=live_server, viewport=viewport, locale="en-GB")
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        watched.append(watch_console(page))
        return page

    try:
        yield open_
        errors = [error for seen in watched for error in seen]
        assert not errors, f"browser console errors: {errors}"
    finally:
        for ctx in contexts:
            ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots go for a person to look at (PORTAL_SCREENSHOTS, default the temp dir)."""
    path = Path(os.environ.get("PORTAL_SCREENSHOTS", tempfile.gettempdir()))
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Fixtures for browser tests: the app under a real HTTP server, and headless Chromium.

The server is werkzeug's threaded WSGI server on 127.0.0.1 and a free port, in a
background thread, serving the session ``app`` (tests/conftest.py): the same
database, Redis and SMTP sink as the rest of the suite. The browser is Debian's
Chromium driven by Playwright (Playwright cannot download its own browsers here).

Every HTML page a test shows is checked with axe-core (``Axe`` below): a violation of impact
"serious" or "critical" fails the test, like an error on the console does. The live server records
the pages it sends to the browser for that (``DocumentRecorder``).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server
from werkzeug.wsgi import get_current_url

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
# axe-core from npm (tests/browser/package.json; `make test` runs `npm ci` there when it is missing).
AXE_SCRIPT = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# The impacts that fail a test; PORTAL_AXE_IMPACTS=minor,moderate,serious,critical shows everything axe finds.
AXE_FAILS_ON = frozenset(os.environ.get("PORTAL_AXE_IMPACTS", "serious,critical").split(","))
AXE_RUN = """async () => {
  if (typeof window.axe !== "object") return null;
  const result = await window.axe.run(document, {resultTypes: ["violations"]});
  return result.violations.flatMap((rule) => rule.nodes.map((node) => ({
    id: rule.id, impact: node.impact || rule.impact, target: node.target.join(" "), html: node.html,
    help: rule.help})));
}"""
# Headers of a recorded page that are not replayed: the scratch page keeps no cookies and gets its length anew.
_NOT_REPLAYED = frozenset({"set-cookie", "content-length", "transfer-encoding", "connection"})
MISSING = {"id": "axe-missing", "impact": "critical", "target": "html", "html": "",
           "help": "axe-core did not load in this page"}
_CSRF_VALUE = re.compile(rb'(name="csrf_token" value=")[^"]*"')


@dataclass(frozen=True)
class Document:
    """An HTML document the live server sent to a browser navigation (a page or an error page)."""

    method: str
    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class DocumentRecorder:
    """WSGI middleware of the live server: keeps each HTML document a browser navigated to, while a test runs.

    Only navigations (``Sec-Fetch-Dest: document``, which Chromium sends to 127.0.0.1): a script's fetch of
    a page fragment, a download or an image is not a page a person is shown.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.sink: list[Document] | None = None  # set by the ``axe`` fixture for the duration of a test

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        sink = self.sink
        if sink is None or environ.get("HTTP_SEC_FETCH_DEST") != "document":
            return self.app(environ, start_response)
        answer: dict = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info=None):  # noqa: ANN001, ANN202
            answer.update(status=int(status.split()[0]), headers=tuple(headers))
            return start_response(status, headers, exc_info)

        body = self.app(environ, keep)
        content_type = dict((k.lower(), v) for k, v in answer.get("headers", ())).get("content-type", "")
        if not content_type.startswith("text/html") or 300 <= answer["status"] < 400:  # a redirect is not shown
            return body
        try:
            chunks = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        sink.append(Document(environ["REQUEST_METHOD"], get_current_url(environ), answer["status"],
                             answer["headers"], b"".join(chunks)))
        return chunks


class Axe:
    """axe-core on every HTML page the browser contexts of one test show; serious findings fail the test.

    Two checks, neither of which races the test (a check that runs while the test clicks on would miss the
    pages a test leaves at once, such as the sign-in form):

    * Every document the live server sent to a navigation of this test is kept (``DocumentRecorder``) and,
      after the test, shown again in a scratch page of a separate browser context, from the recorded answer
      (same URL, status, headers, hence the same content security policy; the portal's own /static/ files
      load, any other request is refused so nothing is fetched or changed twice), and checked at phone and
      at desktop width once the page's scripts have run.
    * Every page still open at the end is checked live, in the state the test left it (what scripts added,
      at the test's width). ``check(page)`` does the same at any moment, for a state a test passes through.

    axe.min.js comes in through ``add_init_script`` (the DevTools protocol, outside the page's CSP): the
    portal's CSP stays in force and ``bypass_csp`` is never used. Findings are listed with rule id, impact,
    element and page; identical pages (up to the CSRF token) are checked once per run.
    """

    _verdicts: ClassVar[dict[bytes, list[dict]]] = {}  # normalised page -> axe's findings, for the whole run

    def __init__(self, checker: Replayer) -> None:
        self.found: list[str] = []
        self.documents: list[Document] = []
        self._checker = checker

    @staticmethod
    def watch(context: BrowserContext) -> None:
        """Make axe-core available in every document of a test's context (for the live check)."""
        context.add_init_script(path=AXE_SCRIPT)

    def _record(self, url: str, nodes: list[dict] | None, how: str = "") -> list[str]:
        found = [f"{n['id']} ({n['impact']}) at {n['target']} {n['html'][:200]!r} on {url}{how}: {n['help']}"
                 for n in ([MISSING] if nodes is None else nodes) if n["impact"] in AXE_FAILS_ON]
        self.found.extend(f for f in found if f not in self.found)
        return found

    def check(self, page: Page) -> list[str]:
        """Check the page's current document now, as it is; returns (and keeps) what fails."""
        if page.is_closed() or page.url.startswith(("about:", "chrome-error:")):
            return []
        run = f"() => document.contentType === 'text/html' ? ({AXE_RUN})() : []"  # not a JSON answer, an image
        try:
            page.wait_for_load_state()
            nodes = page.evaluate(run)
        except PlaywrightError:  # a navigation was under way: check the page it led to
            page.wait_for_load_state()
            nodes = page.evaluate(run)
        return self._record(page.url, nodes)

    def check_pages(self, context: BrowserContext) -> None:
        """The live check of every page still open in ``context``."""
        for page in context.pages:
            self.check(page)

    def check_documents(self) -> None:
        """Show each document recorded during the test again and check it at both widths."""
        for doc in self.documents:
            key = _CSRF_VALUE.sub(rb'\1"', doc.body)
            if key not in self._verdicts:
                self._verdicts[key] = self._replay(doc)
            how = f" ({doc.method} {doc.status})" if (doc.method, doc.status) != ("GET", 200) else ""
            self._record(doc.url, self._verdicts[key], how)

    def _replay(self, doc: Document) -> list[dict]:
        self._checker.show(doc)
        page = self._checker.page
        widths: dict[tuple, list[str]] = {}  # a finding -> the widths it was found at
        for viewport in (PHONE, DESKTOP):
            page.set_viewport_size(viewport)
            nodes = page.evaluate(AXE_RUN)
            for node in [MISSING] if nodes is None else nodes:
                widths.setdefault(tuple(node.items()), []).append(str(viewport["width"]))
        return [{**dict(node), "target": f"{dict(node)['target']} (at {' and '.join(w)} px)"}
                for node, w in widths.items()]

    def assert_clean(self) -> None:
        assert not self.found, "accessibility violations (axe-core):\n" + "\n".join(self.found)


class Replayer:
    """A page of a browser context of its own (no cookies) that shows a recorded document again.

    The document's own navigation is answered with the recorded status, headers and body; the portal's
    /static/ files load from the live server; anything else (a refresh, a thumbnail, a script's fetch) is
    refused, so that nothing is fetched or changed twice. axe-core is in every document it shows.
    """

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(viewport=PHONE, locale="en-GB")
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(path=AXE_SCRIPT)
        self.page = self.context.new_page()
        self.page.route("**/*", self._answer)
        self._next: Document | None = None

    def _answer(self, route: Route) -> None:
        request = route.request
        if request.is_navigation_request() and request.frame.parent_frame is None:
            doc, self._next = self._next, None  # the first navigation only
            if doc is not None and request.url == doc.url:
                headers = {k: v for k, v in doc.headers if k.lower() not in _NOT_REPLAYED}
                route.fulfill(status=doc.status, headers=headers, body=doc.body)
                return
        elif request.method == "GET" and urlsplit(request.url).path.startswith("/static/"):
            route.continue_()
            return
        route.abort()

    def show(self, doc: Document) -> None:
        """Show ``doc`` and wait until it has loaded (its scripts have run)."""
        self._next = doc
        self.page.goto(doc.url, wait_until="load")


@pytest.fixture(scope="session")
def axe_checker(browser: Browser) -> Iterator[Replayer]:
    """Where recorded pages are shown again for axe-core."""
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"{AXE_SCRIPT} is missing: run `make test`, or `npm ci --prefix tests/browser`", pytrace=False)
    replayer = Replayer(browser)
    yield replayer
    replayer.context.close()


@pytest.fixture
def axe(axe_checker: Replayer, recorder: DocumentRecorder) -> Iterator[Axe]:
    """The accessibility check of this test's pages; fails the test on a serious or critical finding."""
    checker = Axe(axe_checker)
    recorder.sink = checker.documents
    try:
        yield checker
    finally:
        recorder.sink = None
    checker.check_documents()
    checker.assert_clean()


@pytest.fixture(scope="session")
def recorder(app: Flask) -> DocumentRecorder:
    """The session ``app`` as the live server serves it: each page a test's browser opens is kept for axe."""
    return DocumentRecorder(app)


@pytest.fixture(scope="session")
def live_server(recorder: DocumentRecorder) -> Iterator[str]:
    """The base URL of the app served over real HTTP on loopback."""
    server = make_server("127.0.0.1", free_port(), recorder, threaded=True)
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
def context(browser: Browser, live_server: str, axe: Axe) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, phone-sized by default; its pages are checked by ``axe``."""
    ctx = browser.new_context(base_url=live_server, viewport=PHONE, locale="en-GB")
    ctx.set_default_timeout(15_000)
    axe.watch(ctx)
    try:
        yield ctx
        axe.check_pages(ctx)
    finally:
        ctx.close()


def watch_console(page: Page) -> Callable[[], list[str]]:
    """The console errors and uncaught exceptions of ``page`` from now on (a CSP refusal shows up there).

    Returns a function giving them when asked. Chromium also logs "Failed to load resource" for a page
    the server answered with a 4xx: a refused form shown again (422, 409) is the page a test asks for,
    not an error of the page, so such a line about the page itself does not count, nor does a script's
    request refused with its reason in JSON (409, 422); a failing script, style sheet or image still
    does, and so does any 5xx.
    """
    errors: list[tuple[str, str]] = []
    refused_pages: set[str] = set()  # main-frame documents the server answered with a 4xx

    def on_console(msg: ConsoleMessage) -> None:
        # The browser's own request for /favicon.ico is not the page's doing.
        url = (msg.location or {}).get("url", "")
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            errors.append((msg.text, url))

    def on_response(response: Response) -> None:
        request = response.request
        refused_page = (400 <= response.status < 500 and request.is_navigation_request()
                        and request.frame.parent_frame is None)
        # A script's request refused with its reason (422, 409 in JSON: a file the upload refused) is
        # shown by the script, and the test asserts what it shows; a 404 or 403 still counts.
        refused_by_script = (response.status in (409, 422) and request.resource_type in ("xhr", "fetch")
                             and response.headers.get("content-type", "").startswith("application/json"))
        if refused_page or refused_by_script:
            refused_pages.add(response.url)

    def seen() -> list[str]:
        # Read at the end: the console line and the response can arrive in either order.
        return [f"{text} ({url})" for text, url in errors
                if not (url in refused_pages and text.startswith("Failed to load resource: the server responded "
                                                                 "with a status of 4"))]

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: errors.append((str(exc), "")))
    return seen


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on a console error (a CSP refusal shows up there)."""
    page = context.new_page()
    errors = watch_console(page)
    yield page
    assert not errors(), f"browser console errors: {errors()}"


@pytest.fixture
def open_page(browser: Browser, live_server: str, axe: Axe) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser profile of its own, for tests with several people at once.

    Each page is checked like ``page``: any console error or serious axe finding on any of them fails the test.
    """
    contexts: list[BrowserContext] = []
    watched: list[Callable[[], list[str]]] = []

    def open_(viewport: dict[str, int] = DESKTOP) -> Page:
        ctx = browser.new_context(base_url=live_server, viewport=viewport, locale="en-GB")
        ctx.set_default_timeout(15_000)
        axe.watch(ctx)
        contexts.append(ctx)
        page = ctx.new_page()
        watched.append(watch_console(page))
        return page

    try:
        yield open_
        for ctx in contexts:
            axe.check_pages(ctx)
        errors = [error for seen in watched for error in seen()]
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

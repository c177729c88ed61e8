"""The simulated people of the load test; ``tests/load/run.py`` starts locust with this file.

Four kinds, weighted as ``seed.SHARES``: clients uploading and answering requests, clients opening
statements and reports, staff taking and working tasks, managers reading dashboards and KPIs. Each
signs in once through the real pages (provider people with their second factor) with an account of
its own (``LOAD_FACTS``, written by the seeding).

``LOAD_MODE=baseline`` runs instead one user that opens every page of ``PAGES`` (and uploads) one at
a time, ``LOAD_BASELINE_ROUNDS`` times: the same requests with no other load, for the ratio.

Every request is written to ``LOAD_RECORDS`` (JSON lines: start time, name, method, status, ms, whether
it carried Retry-After, whether it failed) and every upload to ``LOAD_UPLOADS`` (its SHA-256, what the
portal answered, the document it became), when locust stops; ``run.py`` reads both.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import time
import uuid
from pathlib import Path

import pyotp
from locust import HttpUser, between, events, task
from locust.clients import HttpSession

from tests.load.seed import invoice

FACTS = json.loads(Path(os.environ["LOAD_FACTS"]).read_text())
PHASE = os.environ.get("LOAD_PHASE", "main")
MODE = os.environ.get("LOAD_MODE", "mixed")
RECORDS = Path(os.environ["LOAD_RECORDS"])
UPLOADS = Path(os.environ["LOAD_UPLOADS"])
BASELINE_ROUNDS = int(os.environ.get("LOAD_BASELINE_ROUNDS", "20"))
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
TASK_URL = re.compile(r"/t/([^/]+)/tasks/([0-9a-f-]{36})")

_records: list[tuple] = []
_uploads: list[dict] = []
_counters = {role: itertools.count() for role in ("member", "approver", "staff", "manager")}


@events.request.add_listener
def _record(request_type, name, response_time, response_length, response=None, exception=None,  # noqa: ANN001
            start_time=None, **_kw) -> None:
    status = getattr(response, "status_code", 0) or 0
    headers = getattr(response, "headers", None) or {}
    _records.append((start_time or time.time() - response_time / 1000, name, request_type, status,
                     round(response_time, 2), bool(headers.get("Retry-After")), _why(exception)))


def _why(exception: BaseException | None) -> str | None:
    """What went wrong below HTTP, in a word (RemoteDisconnected, ReadTimeout, ...): requests wraps the cause."""
    if exception is None:
        return None
    causes = re.findall(r"\b(\w+(?:Error|Disconnected|Timeout))\b", str(exception))
    return causes[-1] if causes else type(exception).__name__


@events.quitting.add_listener
def _write(**_kw) -> None:
    with RECORDS.open("a") as out:
        for row in _records:
            out.write(json.dumps(row) + "\n")
    with UPLOADS.open("a") as out:
        for row in _uploads:
            out.write(json.dumps(row) + "\n")


def _account(role: str) -> dict:
    pool = FACTS["accounts"][PHASE][role]
    return pool[next(_counters[role]) % len(pool)]


class Actor:
    """One signed-in person: their HTTP session, tenant, CSRF token and what they did."""

    def __init__(self, client: HttpSession, role: str) -> None:
        self.client, self.role = client, role
        self.account = _account(role)
        self.slug = self.account["tenant"] or random.choice(FACTS["tenants"])["slug"]  # noqa: S311
        self.tenant = next(t for t in FACTS["tenants"] if t["slug"] == self.slug)
        self.csrf = ""
        self.uploaded: list[tuple[str, str]] = []  # (download URL, SHA-256)
        self.items: list[tuple[str, str]] = []  # (request id, item id) this person answers
        self.task: tuple[str, str] | None = None  # (tenant slug, task id) in progress

    def sign_in(self) -> None:
        """The sign-in pages, and the second factor for provider people; tries again while the portal is down."""
        while True:
            page = self.client.get("/auth/login", name="/auth/login")
            match = CSRF.search(page.text or "")
            if match:
                answer = self.client.post("/auth/login", name="/auth/login [POST]", data={
                    "email": self.account["email"], "password": FACTS["password"], "csrf_token": match.group(1)})
                if "/auth/mfa" in answer.url and self.account["totp"]:
                    match = CSRF.search(answer.text or "")
                    if match:
                        answer = self.client.post("/auth/mfa", name="/auth/mfa [POST]", data={
                            "code": pyotp.TOTP(self.account["totp"]).now(), "csrf_token": match.group(1)})
                if answer.ok and "/auth/" not in answer.url:
                    found = CSRF.search(answer.text or "")
                    self.csrf = found.group(1) if found else self.csrf
                    return
            time.sleep(2)

    # --- clients: upload, answer, look --------------------------------------------------------------

    def home(self) -> None:
        self.client.get(f"/t/{self.slug}/", name="/t/[slug]/")

    def documents(self) -> None:
        self.client.get(f"/t/{self.slug}/documents", name="/t/[slug]/documents")

    def tasks(self) -> None:
        self.client.get(f"/t/{self.slug}/tasks", name="/t/[slug]/tasks")

    def requests_list(self) -> None:
        self.client.get(f"/t/{self.slug}/requests", name="/t/[slug]/requests")

    def upload(self, item: tuple[str, str] | None = None) -> None:
        """One invoice, unique; what became of it is kept for the check after the run."""
        number = uuid.uuid4().hex[:12]
        body = invoice(f"LOAD-{number}")
        name = f"invoice {number}.pdf"
        fields = {"csrf_token": self.csrf, "category": "invoice"}
        label = "/t/[slug]/documents/upload"
        if item:
            fields["item"] = item[1]
            label = "/t/[slug]/documents/upload (answer)"
        with self.client.post(f"/t/{self.slug}/documents/upload", name=label, data=fields,
                              files={"file": (name, body, "application/pdf")},
                              headers={"Accept": "application/json"}, catch_response=True) as r:
            result = {}
            with contextlib.suppress(ValueError):
                result = (r.json().get("results") or [{}])[0]
            _uploads.append({"phase": PHASE, "t": time.time(), "tenant": self.slug, "name": name,
                             "sha256": hashlib.sha256(body).hexdigest(), "http": r.status_code,
                             "status": result.get("status"), "code": result.get("code"), "url": result.get("url")})
            if r.status_code == 200 and result.get("status") in ("stored", "version", "duplicate"):
                self.uploaded.append((result["url"] + "/download", hashlib.sha256(body).hexdigest()))
                r.success()
            elif r.status_code == 503 and r.headers.get("Retry-After"):
                r.failure("503: not stored, try again")  # counted apart from other failures
            else:
                r.failure(f"{r.status_code}: {result.get('code') or (r.text or '')[:80]}")

    def answer(self) -> None:
        """Open a request and answer one of the items this person looks after with a file."""
        if not self.items:
            self.upload()
            return
        request_id, item_id = self.items.pop()
        self.client.get(f"/t/{self.slug}/requests/{request_id}", name="/t/[slug]/requests/[id]")
        self.upload((request_id, item_id))

    def download(self) -> None:
        """One of this person's own uploads, checked against the SHA-256 of what was sent."""
        if not self.uploaded:
            self.documents()
            return
        url, digest = random.choice(self.uploaded)  # noqa: S311
        with self.client.get(url, name="/t/[slug]/documents/[id]/download", catch_response=True) as r:
            if r.status_code == 200 and hashlib.sha256(r.content).hexdigest() != digest:
                r.failure("the download differs from the upload")

    # --- clients: statements and reports ------------------------------------------------------------

    def statements(self) -> None:
        self.client.get(f"/t/{self.slug}/statements", name="/t/[slug]/statements")

    def statement(self) -> None:
        if self.tenant["statements"]:
            sid = random.choice(self.tenant["statements"])  # noqa: S311
            self.client.get(f"/t/{self.slug}/statements/{sid}", name="/t/[slug]/statements/[id]")

    def books(self) -> None:
        self.client.get(f"/t/{self.slug}/books", name="/t/[slug]/books")

    def trial_balance(self) -> None:
        self.client.get(f"/t/{self.slug}/books/trial-balance", name="/t/[slug]/books/trial-balance")

    def profit_and_loss(self) -> None:
        self.client.get(f"/t/{self.slug}/books/profit-and-loss", name="/t/[slug]/books/profit-and-loss")

    # --- staff --------------------------------------------------------------------------------------

    def my_work(self) -> None:
        self.client.get("/provider/work", name="/provider/work")

    def take_and_work(self) -> None:
        """Take the next task (it opens started), note something on it, send it to review."""
        with self.client.post("/provider/work/take", name="/provider/work/take", data={"csrf_token": self.csrf},
                              catch_response=True) as r:
            found = TASK_URL.search(r.url or "")
            if r.ok:
                r.success()
        if not found:
            return  # the queues are empty: the page said so
        slug, task_id = found.groups()
        self.client.post(f"/t/{slug}/tasks/{task_id}/comment", name="/t/[slug]/tasks/[id]/comment",
                         data={"csrf_token": self.csrf, "body": "Checked the supporting documents.", "internal": "1"})
        self.move(slug, task_id, "submit")

    def review(self) -> None:
        """Take the longest-waiting review and approve it."""
        with self.client.post("/provider/work/take-review", name="/provider/work/take-review",
                              data={"csrf_token": self.csrf}, catch_response=True) as r:
            found = TASK_URL.search(r.url or "")
            if r.ok:
                r.success()
        if found:
            self.move(*found.groups(), "approve")

    def move(self, slug: str, task_id: str, move: str) -> None:
        with self.client.post(f"/t/{slug}/tasks/{task_id}/move", name=f"/t/[slug]/tasks/[id]/move ({move})",
                              data={"csrf_token": self.csrf, "move": move}, catch_response=True) as r:
            if r.status_code == 409:  # someone else moved it first: the state machine said no, as it should
                r.success()

    # --- managers -----------------------------------------------------------------------------------

    def dashboard(self) -> None:
        self.client.get("/provider/", name="/provider/")

    def kpi(self) -> None:
        self.client.get("/provider/kpi", name="/provider/kpi")

    def team_load(self) -> None:
        self.client.get("/provider/load", name="/provider/load")

    def queues(self) -> None:
        self.client.get("/provider/queues", name="/provider/queues")

    def tenant_kpi(self) -> None:
        slug = random.choice(FACTS["tenants"])["slug"]  # noqa: S311
        self.client.get(f"/t/{slug}/kpi", name="/t/[slug]/kpi")


# The pages (GET) opened one at a time for the baseline, by whom.
PAGES = {
    "member": ("home", "documents", "requests_list", "tasks", "download"),
    "approver": ("statements", "statement", "books", "trial_balance", "profit_and_loss"),
    "staff": ("my_work",),
    "manager": ("dashboard", "kpi", "team_load", "queues", "tenant_kpi"),
}


def _items_for(actor: Actor) -> list[tuple[str, str]]:
    """The request items this member answers: the tenant's items dealt out among its members."""
    members = [a["email"] for a in FACTS["accounts"][PHASE]["member"] if a["tenant"] == actor.slug]
    share, count = members.index(actor.account["email"]), len(members)
    pairs = [(r["id"], item) for r in actor.tenant["requests"] for item in r["items"]]
    return pairs[share::count]


class Mixed(HttpUser):
    abstract = True
    wait_time = between(3, 10)
    role = ""

    def on_start(self) -> None:
        self.me = Actor(self.client, self.role)
        self.me.sign_in()


class ClientUploading(Mixed):
    weight = 40
    role = "member"

    def on_start(self) -> None:
        super().on_start()
        self.me.items = _items_for(self.me)

    @task(3)
    def home(self) -> None:
        self.me.home()

    @task(4)
    def documents(self) -> None:
        self.me.documents()

    @task(3)
    def upload(self) -> None:
        self.me.upload()

    @task(2)
    def answer(self) -> None:
        self.me.answer()

    @task(2)
    def requests_list(self) -> None:
        self.me.requests_list()

    @task(2)
    def download(self) -> None:
        self.me.download()

    @task(1)
    def task_list(self) -> None:  # not "tasks": locust keeps a user's tasks under that name
        self.me.tasks()


class ClientReading(Mixed):
    weight = 30
    role = "approver"

    @task(3)
    def statements(self) -> None:
        self.me.statements()

    @task(3)
    def statement(self) -> None:
        self.me.statement()

    @task(2)
    def books(self) -> None:
        self.me.books()

    @task(2)
    def trial_balance(self) -> None:
        self.me.trial_balance()

    @task(2)
    def profit_and_loss(self) -> None:
        self.me.profit_and_loss()

    @task(1)
    def home(self) -> None:
        self.me.home()


class Staff(Mixed):
    weight = 20
    role = "staff"

    @task(3)
    def my_work(self) -> None:
        self.me.my_work()

    @task(3)
    def take_and_work(self) -> None:
        self.me.take_and_work()

    @task(2)
    def review(self) -> None:
        self.me.review()


class Manager(Mixed):
    weight = 10
    role = "manager"

    @task(2)
    def dashboard(self) -> None:
        self.me.dashboard()

    @task(2)
    def kpi(self) -> None:
        self.me.kpi()

    @task(1)
    def team_load(self) -> None:
        self.me.team_load()

    @task(2)
    def queues(self) -> None:
        self.me.queues()

    @task(2)
    def tenant_kpi(self) -> None:
        self.me.tenant_kpi()


class Baseline(HttpUser):
    """One person at a time: every page of ``PAGES`` in turn, and an upload, ``BASELINE_ROUNDS`` times."""

    wait_time = between(0.05, 0.1)

    def on_start(self) -> None:
        self.actors = {}
        for role in PAGES:
            session = HttpSession(base_url=self.host, request_event=self.environment.events.request, user=self)
            actor = Actor(session, role)
            actor.sign_in()
            self.actors[role] = actor
        for _ in range(2):  # something of this member's to download
            self.actors["member"].upload()

    @task
    def rounds(self) -> None:
        for _ in range(BASELINE_ROUNDS):
            for role, pages in PAGES.items():
                for page in pages:
                    getattr(self.actors[role], page)()
            self.actors["member"].upload()
        self.environment.runner.quit()


if MODE == "baseline":
    del ClientUploading, ClientReading, Staff, Manager
else:
    del Baseline

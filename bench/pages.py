#!/usr/bin/env python3
"""Benchmark: each main list page against its bare twin, CPU per request (goal: at most 1.3x the twin's).

In one run, on a PostgreSQL cluster of its own (``pg_ctl`` in a temp dir, ``tests/load/run.py``'s ``PgCluster``,
with ``pg_stat_statements``; the machine's PostgreSQL when the server binaries are missing, and then the
application's CPU only) and a dedicated database ``portal_bench_pages``:

1. Seeds, through the portal's services, a tenant with 25 of each (documents uploaded by a client approver,
   tasks, document requests of one item, monthly statements), 13 of its tasks assigned to a staff member, and a
   second tenant with 100 of each (statements: 50; 12 tasks of the same staff member), so that row-level
   security has rows to filter and "my work" shows 25 over two clients.
2. Starts gunicorn (``infra/gunicorn.conf.py``, 2 workers x 4 threads as the load test, access log off) on
   ``bench/twin_app.py``: the portal plus a bare twin of each page (the same template and rows, the fewest plain
   SELECTs as a read-only role that bypasses row-level security, no session check, scope or audit). Signs the
   approver and the staff member in through the real pages.
3. Checks each pair before timing: the real page answers 200 to the signed-in reader (not a redirect to sign-in)
   and both answers list the same 25 rows (their ids, in the same order); notes whether the HTML is the same but
   for CSRF tokens and the page's own path.
4. In this process (the same app, Flask's test client): counts the SQL statements of one request of each (a
   ``before_cursor_execute`` listener on every engine, after a warm-up request; BEGIN/COMMIT are not counted, as
   in ``tests/querycount.py``), and splits each side's CPU per request between the before-request hooks (the
   gate), the view, the template and the rest (``--split``), to show where the difference goes.
5. For each page, real then twin (``--rounds 2``: then twin then real again), a warm-up and a timed run with
   ``wrk`` (8 connections, 10 s): requests/s, p50/p95 and CPU per request, the gunicorn workers' (utime + stime)
   and PostgreSQL's (every server process), and what PostgreSQL executed per request (``pg_stat_statements``).

Prints the table and exits 1 when a page costs more than 1.3x its twin's CPU per request.

    .venv/bin/python bench/pages.py                        # 2 s warm-up + 10 s per variant, 8 connections
    .venv/bin/python bench/pages.py --rounds 2 --json /tmp/pages.json
    .venv/bin/python bench/pages.py --pages documents,tasks --sql /tmp/pages.sql   # each request's statements
    .venv/bin/python bench/pages.py --pages documents --profile /tmp/prof   # where each side spends its CPU
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import glob
import html as html_lib
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the portal, tests.* and bench.*, run from anywhere

from bench import home  # noqa: E402
from tests.processes import children, cpu_times  # noqa: E402

DB_NAME = "portal_bench_pages"
REDIS_DB = 13
GOAL = 1.3
ROWS = 25  # what the plain Flask app shows
OTHERS = 100  # the second tenant's rows of each kind
MINE = 13  # of the first tenant's tasks, those assigned to the staff member (the rest of "my work" is the other's)
TWIN_APP = "bench.twin_app:create_twin_app()"
LINES = ("bookkeeping", "payroll", "admin", "data_entry")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class Page:
    """One list page and its twin, read by ``reader`` (a key of the seeded people)."""

    name: str
    real: str
    twin: str
    reader: str
    row_id: str  # a regex whose group is a row's id, in the page's order


@dataclass
class Variant:
    """One side's figures."""

    rps: float = float("nan")
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    requests: int = 0
    bad: int = 0
    errors: int = 0
    app_cpu_ms: float = float("nan")
    db_cpu_ms: float = float("nan")
    statements: int = 0  # one request, counted in the application
    server_statements: float = float("nan")  # per request, executed by PostgreSQL (pg_stat_statements)
    server_transaction_control: float = float("nan")  # BEGIN / COMMIT / ROLLBACK per request

    @property
    def cpu_ms(self) -> float:
        """The application's CPU per request, and PostgreSQL's when it was measured (a cluster of our own)."""
        return self.app_cpu_ms + (0.0 if math.isnan(self.db_cpu_ms) else self.db_cpu_ms)


@dataclass
class Outcome:
    """A page's figures, both sides."""

    page: str
    real: Variant = field(default_factory=Variant)
    twin: Variant = field(default_factory=Variant)
    rows: int = 0
    same_html: bool = False
    # Where the application's CPU goes in this process (ms per request in each phase): real, twin.
    phases: tuple[dict, dict] = field(default_factory=lambda: ({}, {}))

    @property
    def ratio(self) -> float:
        return self.real.cpu_ms / self.twin.cpu_ms if self.twin.cpu_ms else float("nan")

    @property
    def goal_met(self) -> bool:
        return self.ratio <= GOAL


def pages_of(facts: dict) -> list[Page]:
    """The five pages, each with its twin's path and the pattern of its rows' ids."""
    slug, client, staff = facts["slug"], facts["people"]["approver"]["id"], facts["people"]["staff"]["id"]
    return [
        Page("documents", f"/t/{slug}/documents", f"/_twin/t/{slug}/documents?as={client}", "approver",
             rf'href="/t/{slug}/documents/({UUID})"'),
        Page("tasks", f"/t/{slug}/tasks", f"/_twin/t/{slug}/tasks?as={client}", "approver",
             rf'href="/t/{slug}/tasks/({UUID})"'),
        Page("my work", "/provider/work", f"/_twin/provider/work?as={staff}", "staff",
             rf'href="/t/[a-z0-9-]+/tasks/({UUID})"'),
        Page("requests", f"/t/{slug}/requests", f"/_twin/t/{slug}/requests?as={client}", "approver",
             rf'<td><a href="/t/{slug}/requests/({UUID})"'),
        Page("statements", f"/t/{slug}/statements", f"/_twin/t/{slug}/statements?as={client}", "approver",
             rf'data-statement="({UUID})"'),
    ]


# --- the data ----------------------------------------------------------------------------------------------------

def seed(rows: int = ROWS, others: int = OTHERS, mine: int = MINE) -> dict:
    """Two tenants filled through the portal's services, in the bound app's database; returns the facts (JSON-able).

    The first tenant (the one measured) gets ``rows`` documents (uploaded by its client approver), tasks (``mine``
    of them assigned to the staff member), requests of one item and statements; the second ``others`` of each
    (statements: at most ``2 * rows``; ``rows - mine`` of its tasks the staff member's), so that both "my work"
    and each client page show ``rows``.
    """
    from sqlalchemy import update

    from portal.billing.models import TenantPlan
    from portal.billing.statements import run_for_tenant
    from portal.documents import requests, services
    from portal.extensions import db
    from portal.intake.mail import addresses
    from portal.work import services as work
    from portal.work.kpi import Month
    from tenants.context import Scope, bound, for_tenant
    from tenants.lifecycle import assign
    from tenants.models import Tenant, User
    from tenants.policy import Role
    from tests.factories import make_person, make_tenant, put_on_plan
    from tests.load.seed import invoice

    people = {"admin": make_person(Role.PROVIDER_ADMIN), "manager": make_person(Role.MANAGER),
              "staff": make_person(Role.STAFF)}
    first, second = make_tenant("Bench Trading Co"), make_tenant("Other Trading Co")
    people["approver"] = make_person(Role.CLIENT_APPROVER, first)
    people["other_approver"] = make_person(Role.CLIENT_APPROVER, second)
    admin = db.session.get(User, people["admin"].id)
    for tenant in (first, second):
        for key in ("manager", "staff"):
            assign(admin, db.session.get(Tenant, tenant.id), db.session.get(User, people[key].id))
    with for_tenant(first.id):
        addresses.rotate(None, db.session.get(Tenant, first.id))  # the documents page shows it

    today = date.today()
    categories = ("invoice", "receipt", "bank_statement", "contract", "other")
    for tenant, count, uploader, assigned in ((first, rows, "approver", mine), (second, others, "other_approver",
                                                                               rows - mine)):
        tenant = db.session.get(Tenant, tenant.id)
        manager = db.session.get(User, people["manager"].id)
        label = "Bench" if tenant.id == first.id else "Other"
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({tenant.id}), role=Role.MANAGER)):
            for k in range(count):
                work.create_task(manager, tenant, title=f"{label} task {k + 1:03d}", service_line_key=LINES[k % 4],
                                 description=f"What task {k + 1} asks for, in a few sentences. " * 3,
                                 priority=1 + k % 4, due=today + timedelta(days=1 + k % 20),
                                 assignee_id=str(people["staff"].id) if k < assigned else None)
                requests.create_request(manager, tenant, title=f"{label} request {k + 1:03d}",
                                        note=f"Please send these for the close of month {1 + k % 12}.",
                                        items=[requests.ItemInput(f"{label} invoice {k + 1:03d}", "invoice",
                                                                  (today + timedelta(days=5 + k % 30)).isoformat())])
            db.session.commit()
        person = db.session.get(User, people[uploader].id)
        with bound(Scope(user_id=person.id, tenant_ids=frozenset({tenant.id}), role=Role.CLIENT_APPROVER)):
            for k in range(count):
                month = date(today.year, 1 + k % 12, 1)
                target = services.upload_target(person, category=categories[k % len(categories)],
                                                period=month.strftime("%Y-%m"), tags=f"bench, batch-{k % 3}")
                done = services.upload(person, tenant, [invoice(f"{label}-{tenant.slug}-{k}")],
                                       filename=f"{label} document {k + 1:03d}.pdf", target=target)
                assert done.ok, done.message
        put_on_plan(tenant)
        with for_tenant(tenant.id):
            # Statements for as many months back as asked: the plan runs from long before.
            db.session.execute(update(TenantPlan).where(TenantPlan.tenant_id == tenant.id)
                               .values(starts_on=date(today.year - 1 - count // 12, 1, 1)))
            db.session.commit()
        month = Month.of(today).previous()
        for _ in range(min(count, 2 * rows)):  # the list shows every statement: the other tenant needs no 100
            outcome = run_for_tenant(tenant.id, month)
            assert outcome.state == "issued", outcome
            month = month.previous()
    return {"slug": first.slug, "name": first.name, "other_slug": second.slug,
            "people": {key: {"id": str(p.id), "email": p.email, "password": p.password, "totp": p.totp_secret}
                       for key, p in people.items()}}


def provision(settings: dict, rows: int, others: int) -> dict:
    """Migrate the bench database and seed it (then vacuum and analyse, as a table at rest)."""
    import psycopg
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    app = create_app(settings)
    with app.app_context():
        upgrade()
        facts = seed(rows, others)
        db.session.remove()
        db.engine.dispose()
    with psycopg.connect(_plain(settings["MIGRATION_DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("vacuum analyze")
    return facts


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- PostgreSQL: a cluster of our own (its CPU is ours alone), with pg_stat_statements ---------------------------

class Postgres:
    """The run's PostgreSQL: ``tests/load/run.py``'s ``PgCluster`` with ``pg_stat_statements`` preloaded, or the
    machine's (then ``own`` is False: its CPU is not ours to read, and nothing counts statements)."""

    def __init__(self, tmp: Path, *, own: bool = True) -> None:
        self.cluster = None
        self.note = "" if own else "--machine-postgres"
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
        if own and found:
            from tests.load.run import PgCluster

            try:
                self.cluster = PgCluster(Path(found[-1]).parent)
                self._sql("alter system set shared_preload_libraries = 'pg_stat_statements'")
                self.cluster.stop()
                self.cluster.start()
            except Exception as exc:  # noqa: BLE001 - any failure: fall back, and say why
                self.note = f"no cluster of our own ({type(exc).__name__}: {exc})"
                self.destroy()
                self.cluster = None
        elif own:
            self.note = "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl)"
        if self.cluster is None:
            self.url, pgdata = home.superuser_url(tmp)
            self.embedded = pgdata
        else:
            self.url, self.embedded = self.cluster.url, None

    @property
    def own(self) -> bool:
        return self.cluster is not None

    def _sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.cluster.url.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as conn:
            conn.execute(statement)

    def prepare(self, database: str) -> None:
        if self.own:
            self._sql("create extension if not exists pg_stat_statements", database)

    def postmaster(self) -> int:
        return int((self.cluster.data / "postmaster.pid").read_text().splitlines()[0])

    def destroy(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()
        elif getattr(self, "embedded", None) is not None:
            home.stop_embedded_postgres(self.embedded)


class StatementCounter:
    """What PostgreSQL executed in the bench database between ``reset`` and ``read`` (``pg_stat_statements``)."""

    def __init__(self, url: str) -> None:
        import psycopg

        # One connection for the whole run, opened before any timing: one per reading would add a backend's start
        # (a fork and its set-up) to the server's CPU of the run it reads.
        self.conn = psycopg.connect(url, autocommit=True)

    def reset(self) -> None:
        self.conn.execute("select pg_stat_statements_reset()")

    def read(self) -> tuple[int, int]:
        """(statements, of which BEGIN/COMMIT/ROLLBACK) executed at top level in the bench database."""
        row = self.conn.execute(
            "select coalesce(sum(calls), 0),"
            " coalesce(sum(calls) filter (where query ~* '^\\s*(begin|commit|rollback)'), 0)"
            " from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = %s and s.toplevel",
            (DB_NAME,)).fetchone()
        return int(row[0]), int(row[1])

    def close(self) -> None:
        self.conn.close()


# --- CPU: a process tree's utime + stime, its reaped children included ------------------------------------------

def children_cpu(parent: int, *, with_parent: bool = False) -> float:
    """CPU seconds of ``parent``'s children so far, those it has reaped included (a worker or backend that ended
    in the middle of a run still counts), and the parent's own with ``with_parent``."""
    own, reaped = cpu_times(parent)
    return reaped + (own if with_parent else 0.0) + sum(cpu_times(kid)[0] for kid in children(parent))


# --- HTTP --------------------------------------------------------------------------------------------------------

def row_ids(page: Page, body: str) -> list[str]:
    """The ids of the rows a page lists, in its order (each once)."""
    return list(dict.fromkeys(re.findall(page.row_id, body)))


_VOLATILE = (
    re.compile(r'(name="csrf_token"[^>]*value=")[^"]*'),  # a fresh token per form render
    re.compile(r'(id="csrf_token"[^>]*value=")[^"]*'),
    re.compile(r'(name="next" value=")[^"]*'),  # the language switch returns to the page's own path
)


def normalised(body: str) -> list[str]:
    """A page's lines without what differs between two renders of the same rows (CSRF tokens, its own path)."""
    for pattern in _VOLATILE:
        body = pattern.sub(r"\1", body)
    return [line.rstrip() for line in html_lib.unescape(body).splitlines() if line.strip()]


def check(base: str, page: Page, cookie: str, twin_cookie: str, expected: int) -> tuple[int, bool, list[str]]:
    """Before timing: the real page answers 200 to its reader (not the sign-in page) and lists ``expected`` rows,
    the same as its twin's, in the same order. Returns (rows, whether the HTML is the same, a diff's first lines)."""
    import difflib

    status, real = home.get(base, page.real, cookie)  # redirects are not followed: sign-in would be a 302
    if status != 200:
        raise SystemExit(f"{page.name}: the real page answered {status}, not the signed-in page")
    status, twin = home.get(base, page.twin, twin_cookie)
    if status != 200:
        raise SystemExit(f"{page.name}: the twin answered {status}:\n{twin[:2000]}")
    ids, twin_ids = row_ids(page, real), row_ids(page, twin)
    if len(ids) != expected:
        raise SystemExit(f"{page.name}: the real page lists {len(ids)} rows, not {expected}")
    if ids != twin_ids:
        raise SystemExit(f"{page.name}: the twin lists other rows than the real page "
                         f"({len(set(ids) & set(twin_ids))} of {expected} in common)")
    a, b = normalised(real), normalised(twin)
    diff = [line for line in difflib.unified_diff(a, b, "real", "twin", n=0, lineterm="")
            if not line.startswith(("---", "+++", "@@"))]
    return len(ids), not diff, diff[:12]


def anonymous_cookie(base: str, path: str) -> str:
    """The session cookie a twin sets on its first answer (its forms' CSRF token), so that the timed requests
    reuse it as the signed-in reader's requests reuse theirs, instead of making a new one each time."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        cookie = answer.getheader("Set-Cookie") or ""
    finally:
        conn.close()
    match = re.match(r"(portal_session=[^;]+)", cookie)
    if not match:
        raise SystemExit(f"the twin {path} set no session cookie")
    return match.group(1)


# --- statements per request, counted in this process -------------------------------------------------------------

@contextlib.contextmanager
def counting() -> Iterator[list[str]]:
    """Every statement any engine of this process hands a cursor while the block runs (the app's and the twins')."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        seen.append(" ".join(statement.split())[:300])

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


PHASES = ("before-request", "view", "render", "rest")


@contextlib.contextmanager
def phase_times() -> Iterator[Counter]:
    """CPU seconds (this process's) spent while the block runs in Flask's before-request hooks (the gate), the
    view, the template (``flask.templating._render``, the layout's lazy header queries included) and the
    after-request hooks. The view's count includes its rendering: ``split`` takes it out."""
    from flask import Flask, templating

    spent: Counter = Counter()
    patched = [(Flask, "preprocess_request", "before-request"), (Flask, "dispatch_request", "view"),
               (Flask, "process_response", "after"), (templating, "_render", "render")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patched]
    for (owner, name, original), (_, _, label) in zip(originals, patched, strict=True):
        def timed(*args: Any, _original: Any = original, _label: str = label, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.process_time() - started

        setattr(owner, name, timed)
    try:
        yield spent
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def split(spent: Counter, total: float, requests: int) -> dict[str, float]:
    """ms per request in each phase; "rest" is the stack around them (WSGI, teardown, the after-request hooks)."""
    ms = {name: spent[name] / requests * 1000 for name in ("before-request", "view", "render")}
    ms["view"] -= ms["render"]
    ms["rest"] = total / requests * 1000 - sum(ms.values())
    return ms


def in_process(settings: dict, pages: list[Page], cookies: dict[str, str], twin_cookie: str, split_requests: int,
               runs: int = 3, profile: Path | None = None,
               ) -> tuple[dict[str, tuple[list[str], list[str]]], dict[str, tuple[dict, dict]]]:
    """In this process (the same app, Flask's test client, no HTTP): per page, the statements of one real and
    one twin request (each after one untimed request), and where each side's CPU goes (``phase_times``, the
    best of ``runs`` runs of ``split_requests`` requests, real and twin in turn; none when 0). With ``profile``,
    ``split_requests`` more of each under cProfile, written to ``<profile>/<page>-<side>.prof``."""
    from bench.twin_app import create_twin_app
    from portal.extensions import db

    app = create_twin_app(settings)
    counted, phases = {}, {}
    clients = {}
    for page in pages:
        lists = []
        for path, cookie in ((page.real, cookies[page.reader]), (page.twin, twin_cookie)):
            clients[path] = client = app.test_client()
            client.set_cookie("portal_session", cookie.split("=", 1)[1], domain="localhost")
            client.get(path)
            with counting() as seen:
                answer = client.get(path)
            if answer.status_code != 200:
                raise SystemExit(f"{page.name}: {path} answered {answer.status_code} in this process")
            lists.append(seen)
        counted[page.name] = (lists[0], lists[1])
    for page in pages if split_requests else []:
        best: list[dict[str, float]] = [{}, {}]
        for _ in range(runs):
            for side, path in enumerate((page.real, page.twin)):
                with phase_times() as spent:
                    started = time.process_time()
                    for _ in range(split_requests):
                        clients[path].get(path)
                    total = time.process_time() - started
                ms = split(spent, total, split_requests)
                if not best[side] or sum(ms.values()) < sum(best[side].values()):
                    best[side] = ms
        phases[page.name] = (best[0], best[1])
        if profile:
            for side, path in (("real", page.real), ("twin", page.twin)):
                profiler = cProfile.Profile(time.process_time)
                profiler.runcall(lambda path=path: [clients[path].get(path) for _ in range(split_requests)])
                profile.mkdir(parents=True, exist_ok=True)
                profiler.dump_stats(profile / f"{page.name.replace(' ', '-')}-{side}.prof")
    with app.app_context():
        db.engine.dispose()
    if "twin_engine" in app.extensions:
        app.extensions["twin_engine"].dispose()
    return counted, phases


# --- the run -----------------------------------------------------------------------------------------------------

def measure(args: argparse.Namespace, wrk: str | None, base: str, master: int, pg: Postgres,
            stats: StatementCounter | None, path: str, cookie: str) -> Variant:
    """A warm-up, then a timed run of ``path``; the figures of the timed run."""
    def load(seconds: float) -> home.Result:
        if wrk:
            return home.run_wrk(wrk, base, path, cookie, seconds, args.connections, args.wrk_threads)
        return home.run_python(base, path, cookie, seconds, args.connections)

    load(args.warmup)
    if stats:
        stats.reset()
    app_before = children_cpu(master)
    db_before = children_cpu(pg.postmaster(), with_parent=True) if pg.own else 0.0
    result = load(args.duration)
    app_after = children_cpu(master)
    db_after = children_cpu(pg.postmaster(), with_parent=True) if pg.own else 0.0
    v = Variant(rps=result.rps, p50_ms=result.p50_ms, p95_ms=result.p95_ms, requests=result.requests,
                bad=result.bad_status, errors=result.socket_errors)
    if result.requests:
        v.app_cpu_ms = (app_after - app_before) / result.requests * 1000
        if pg.own:
            v.db_cpu_ms = (db_after - db_before) / result.requests * 1000
        if stats:
            executed, control = stats.read()
            v.server_statements = executed / result.requests
            v.server_transaction_control = control / result.requests
    return v


def _merge(into: Variant, more: Variant, rounds: int) -> None:
    """Average ``more`` (one round's figures) into ``into``."""
    if not into.requests:
        statements = into.statements
        for name, value in asdict(more).items():
            setattr(into, name, value)
        into.statements = statements
        return
    for name in ("rps", "p50_ms", "p95_ms", "app_cpu_ms", "db_cpu_ms", "server_statements",
                 "server_transaction_control"):
        setattr(into, name, (getattr(into, name) * (rounds - 1) + getattr(more, name)) / rounds)
    into.requests += more.requests
    into.bad += more.bad
    into.errors += more.errors


def run(args: argparse.Namespace) -> tuple[list[Outcome], dict[str, Any]]:
    """Set up, check, count and time every page (see the module's docstring); everything it started is stopped
    and removed on the way out, whatever happened (but with ``--keep``)."""
    from cryptography.fernet import Fernet
    from redis import Redis

    from bench.statements import redis_for_bench
    from bench.twin_app import reader_url
    from portal.dbsetup import bootstrap

    wrk = None if args.python else shutil.which("wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    pg = stats = redis_url = None
    try:
        pg = Postgres(tmp, own=not args.machine_postgres)
        redis_url = redis_for_bench(tmp, args.redis_db)
        urls = bootstrap(pg.url, DB_NAME, recreate=True)
        pg.prepare(DB_NAME)
        settings = {"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": redis_url,
                    "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
                    "FIELD_KEY": Fernet.generate_key().decode()}
        started = time.monotonic()
        facts = provision(settings, args.rows, args.others)
        seeded = time.monotonic() - started
        # The twins' reader (after the migrations: it is granted the tables there are); gunicorn inherits it.
        settings["TWIN_DATABASE_URL"] = os.environ["TWIN_DATABASE_URL"] = reader_url(pg.url, DB_NAME)
        pages = [p for p in pages_of(facts) if not args.pages or p.name.replace(" ", "-") in args.pages]
        with home.gunicorn(settings, tmp / "gunicorn.log", args.workers, args.threads, TWIN_APP) as (base, master):
            people = facts["people"]
            cookies = {key: home.sign_in(base, people[key]["email"], people[key]["password"], people[key]["totp"])
                       for key in {p.reader for p in pages}}
            twin_cookie = anonymous_cookie(base, pages[0].twin)
            outcomes = []
            for page in pages:
                rows, same, diff = check(base, page, cookies[page.reader], twin_cookie, args.rows)
                outcomes.append(Outcome(page.name, rows=rows, same_html=same))
                if diff and args.verbose:
                    print(f"{page.name}: the HTML differs (normalised lines, real -/twin +):", *diff, sep="\n  ")
            counted, phases = in_process(settings, pages, cookies, twin_cookie, args.split, profile=args.profile)
            for outcome in outcomes:
                real, twin = counted[outcome.page]
                outcome.real.statements, outcome.twin.statements = len(real), len(twin)
                outcome.phases = phases.get(outcome.page, ({}, {}))
            if args.sql:
                args.sql.write_text("".join(
                    f"-- {name}: real ({len(real)})\n" + "\n".join(real) + f"\n-- {name}: twin ({len(twin)})\n"
                    + "\n".join(twin) + "\n\n" for name, (real, twin) in counted.items()), encoding="utf-8")
            if pg.own:
                stats = StatementCounter(pg.url.rsplit("/", 1)[0] + f"/{DB_NAME}")
            for round_ in range(1, args.rounds + 1):
                for page, outcome in zip(pages, outcomes, strict=True):
                    sides = [("real", page.real, cookies[page.reader]), ("twin", page.twin, twin_cookie)]
                    for side, path, cookie in sides if round_ % 2 else reversed(sides):
                        figures = measure(args, wrk, base, master, pg, stats, path, cookie)
                        _merge(getattr(outcome, side), figures, round_)
                        if args.verbose:
                            print(f"round {round_} {page.name} {side}: {figures.rps:.1f} req/s, "
                                  f"{figures.app_cpu_ms:.2f} + {figures.db_cpu_ms:.2f} ms CPU", flush=True)
            for page in pages:  # still signed in at the end: a redirect would have counted as an answer
                status, body = home.get(base, page.real, cookies[page.reader])
                if status != 200 or len(row_ids(page, body)) != args.rows:
                    raise SystemExit(f"after the run {page.real} answered {status}: the figures are not valid")
        meta = {"generator": "wrk" if wrk else "python (http.client, threads)", "connections": args.connections,
                "duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
                "workers": args.workers, "threads": args.threads, "cores": os.cpu_count(), "rows": args.rows,
                "others": args.others, "seed_seconds": round(seeded, 1),
                "postgres": "own cluster (pg_ctl), pg_stat_statements" if pg.own
                else f"the machine's: application CPU only ({pg.note})"}
        return outcomes, meta
    finally:
        if stats:
            stats.close()
        if args.keep:
            print(f"kept: {tmp}" + (f" and the database {DB_NAME} at {pg.url}" if pg else ""), file=sys.stderr)
        else:
            if pg is not None and not pg.own:
                with contextlib.suppress(Exception):
                    home.drop_database(pg.url, DB_NAME)
            if redis_url:
                with contextlib.suppress(Exception):
                    Redis.from_url(redis_url).flushdb()
            if pg is not None:
                pg.destroy()
            shutil.rmtree(tmp, ignore_errors=True)


def report(outcomes: list[Outcome], meta: dict[str, Any]) -> None:
    """The table, what PostgreSQL executed, and where the application's CPU goes."""
    print(f"\nlist pages against their bare twins: gunicorn gthread {meta['workers']} workers x {meta['threads']} "
          f"threads, {meta['cores']} cores; {meta['generator']}, {meta['connections']} connections, "
          f"{meta['warmup']:g} s warm-up + {meta['duration']:g} s per variant, {meta['rounds']} round(s); "
          f"{meta['rows']} rows per page; PostgreSQL: {meta['postgres']}\n")
    print(f"{'page':<11} {'req/s':>13} {'CPU ms/req real':>19} {'CPU ms/req twin':>19} {'ratio':>6} "
          f"{'statements':>10} {'p95 ms':>13} {'goal':>5}")
    print(f"{'':<11} {'real / twin':>13} {'(app + db)':>19} {'(app + db)':>19} {'':>6} {'real/twin':>10} "
          f"{'real / twin':>13} {'<=' + str(GOAL) + 'x':>5}")

    def cpu(v: Variant) -> str:
        db = "n/a" if math.isnan(v.db_cpu_ms) else f"{v.db_cpu_ms:.2f}"
        return f"{v.cpu_ms:>6.2f} ({v.app_cpu_ms:.2f}+{db}) "

    for o in outcomes:
        r, t = o.real, o.twin
        print(f"{o.page:<11} {r.rps:>6.1f} / {t.rps:<6.1f}{cpu(r)}{cpu(t)}"
              f"{o.ratio:>5.2f}x {r.statements:>4} / {t.statements:<4} {r.p95_ms:>6.1f} / {t.p95_ms:<6.1f}"
              f"{'yes' if o.goal_met else 'NO':>4}")
    if not any(math.isnan(o.real.server_statements) for o in outcomes):
        print("\nexecuted by PostgreSQL per request (pg_stat_statements; BEGIN/COMMIT/ROLLBACK in brackets):")
        for o in outcomes:
            print(f"  {o.page:<11} real {o.real.server_statements:5.1f} ({o.real.server_transaction_control:.1f})"
                  f"   twin {o.twin.server_statements:5.1f} ({o.twin.server_transaction_control:.1f})")
    bad = [(o.page, o.real.bad + o.twin.bad, o.real.errors + o.twin.errors) for o in outcomes
           if o.real.bad or o.twin.bad or o.real.errors or o.twin.errors]
    if bad:
        print("\nanswers that were no success (the figures count them as requests):")
    for page, status, errors in bad:
        print(f"  {page}: {status} answers >= 400, {errors} socket errors")
    if any(o.phases[0] for o in outcomes):
        print("\nwhere the application's CPU goes, in this process (test client, one request at a time; ms per "
              "request, real / twin, best of 3 runs):")
        print(f"  {'page':<11}" + "".join(f"{name:>17}" for name in (*PHASES, "total")))
        for o in outcomes:
            real, twin = o.phases
            cells = [f"{real[n]:.2f} / {twin[n]:.2f}" for n in PHASES]
            cells.append(f"{sum(real.values()):.2f} / {sum(twin.values()):.2f}")
            print(f"  {o.page:<11}" + "".join(f"{cell:>17}" for cell in cells))
        print("  (before-request: the gate, the session check in it; render: the template with the layout's "
              "workspaces and unread count, which the real page reads there and its twin in its header row)")
    same = [o.page for o in outcomes if o.same_html]
    print(f"\nrows per page checked before timing (same ids, same order, real and twin); the same HTML but for CSRF "
          f"tokens and the page's own path: {', '.join(same) or 'none'}")
    print("statements: one request counted in this process (BEGIN/COMMIT not counted); CPU: gunicorn workers "
          "(app) and every PostgreSQL server process (db), utime + stime, per request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="timed seconds per variant (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per variant (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, alternating which side goes first (1)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as the load test)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows per page (default {ROWS})")
    parser.add_argument("--others", type=int, default=OTHERS, help=f"the other tenant's rows (default {OTHERS})")
    parser.add_argument("--pages", type=lambda s: s.split(","), help="only these: documents,tasks,my-work,...")
    parser.add_argument("--split", type=int, default=40,
                        help="in-process requests per run for where the CPU goes (default 40; 0: not measured)")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="an empty Redis database (default 13)")
    parser.add_argument("--machine-postgres", action="store_true",
                        help="the machine's PostgreSQL (or the embedded one) instead of a cluster of our own: "
                             "the application's CPU only, and no statements counted by the server")
    parser.add_argument("--python", action="store_true", help="the Python load generator even if wrk exists")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path,
                        help="write cProfile stats of --split requests of each side to this folder")
    parser.add_argument("--sql", type=Path, help="write the statements of one request of each to this file")
    parser.add_argument("--verbose", action="store_true", help="each timed run, and how the HTML differs")
    parser.add_argument("--keep", action="store_true", help="keep the cluster, database and temp dir")
    args = parser.parse_args()
    if args.duration > 60 or args.warmup > 30 or args.rounds > 4 or not 1 <= args.rows <= 50 or args.others > 500:
        parser.error("keep runs bounded: --duration <= 60, --warmup <= 30, --rounds <= 4, --rows 1..50, "
                     "--others <= 500")
    if args.rows <= MINE or args.others < args.rows - MINE:
        parser.error(f"--rows must be more than {MINE} (the staff member's tasks in the first tenant) and --others "
                     f"at least --rows - {MINE} (theirs in the other)")
    outcomes, meta = run(args)
    report(outcomes, meta)
    if args.json:
        args.json.write_text(json.dumps({
            "pages": [{"page": o.page, "rows": o.rows, "same_html": o.same_html, "ratio": o.ratio,
                       "goal_met": o.goal_met, "real": asdict(o.real), "twin": asdict(o.twin),
                       "in_process_ms": {"real": o.phases[0], "twin": o.phases[1]}} for o in outcomes],
            "goal": GOAL, **meta}, indent=2))
    return 0 if all(o.goal_met for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

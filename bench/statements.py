#!/usr/bin/env python3
"""Benchmark: the month's statements through the real path, at 100 and at 1,000 tenants, against a bare PDF render.

In one run, on a dedicated database ``portal_bench_statements`` (dropped at the end) and a Redis database of
its own (``--redis-db``, default 13, which must be empty; flushed at the end):

1. Seeds, straight in SQL, a realistic last month for each tenant on the tenant's own clock: a plan with 4–6
   priced meters, 20 tasks over 3 service lines (12 done in the month), 30 time entries, 15 documents
   (catalogue rows only: ``Document``, ``DocumentVersion``, ``StoredObject``; no bytes in the vault, since the
   run reads their counts and sizes and never their content), one document request with 2 items (one answered
   in the month), turnaround targets for the 3 lines.
2. Starts two rq ``SimpleWorker`` processes (what ``portal worker`` runs, without its scheduler tick) and, as
   the scheduler does, writes one ``billing.statement`` outbox job per tenant in one transaction; the commit
   relays them to rq. Each job issues the statement (usage, pricing, sections, audit) and its commit relays a
   ``billing.statement_pdf`` job (render with WeasyPrint, seal and store in the vault). Stripe is off.
3. The first 100 tenants are one run; then 1,000 more tenants are seeded and run (the database then holds
   both sets): per-statement time at 100 and at 1,000 (goal: flat within 20 %).
4. In the same process, afterwards: the bare cost of rendering the same statements' HTML to PDF
   (``render.html_to_pdf`` on HTML captured from 10 statements of the large run; no database work), in one
   process, and in two processes at once (the workers' parallelism).

Figures: total wall time, statements/s, ms per statement (the two jobs' time in a worker), worker CPU per
statement, bare PDF ms, the ratio statement / bare PDF with both two at once (goal <= 1.5x; also against a render
alone), per-statement at 100 vs 1,000, and the peak RSS of a worker (``VmHWM``).

    .venv/bin/python bench/statements.py                       # 100, then 1,000 tenants
    .venv/bin/python bench/statements.py --tenants 300 --json /tmp/statements.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the portal, run from anywhere

DB_NAME = "portal_bench_statements"
REDIS_DB = 13
WORKERS = 2
FIRST = 100
BARE_SAMPLES = 10  # statements whose HTML is rendered bare
BARE_REPEAT = 3  # renders of each
RUN_TIMEOUT = 3600  # seconds a run may take before the bench gives up
GOAL_RATIO = 1.5
GOAL_FLAT = 1.20

# Plans: (key, name, currency, monthly fee, [(meter, included, unit price)]); amounts in minor units.
PLANS = [
    ("bench-basic", "Basic", "VND", 1_500_000, [
        ("documents_received", 10, 5_000), ("documents_processed", 5, 8_000),
        ("tasks_done:bookkeeping", 3, 100_000), ("hours:bookkeeping", 3, 250_000)]),
    ("bench-standard", "Standard", "VND", 3_000_000, [
        ("documents_received", 10, 5_000), ("documents_processed", 5, 8_000),
        ("tasks_done:bookkeeping", 3, 100_000), ("tasks_done:payroll", 2, 120_000),
        ("hours:bookkeeping", 3, 250_000)]),
    ("bench-premium", "Premium", "VND", 6_000_000, [
        ("documents_received", 10, 5_000), ("documents_processed", 5, 8_000),
        ("tasks_done:bookkeeping", 3, 100_000), ("tasks_done:payroll", 2, 120_000),
        ("hours:payroll", 2, 250_000), ("storage_gb", 1, 20_000)]),
    ("bench-usd", "Standard (USD)", "USD", 19_900, [
        ("documents_received", 10, 50), ("documents_processed", 5, 80), ("tasks_done:bookkeeping", 3, 500),
        ("hours:bookkeeping", 2, 4_550), ("hours:payroll", 2, 4_550)]),
]


# --- seeding (as the superuser: row-level security is FORCE'd even for the owner) -------------------------------

def seed_plans(dsn: str) -> str:
    """The plans with their tax rate, the turnaround targets' lines, and one staff member; returns the staff id."""
    import psycopg

    staff_id = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        for key, name, currency, fee, prices in PLANS:
            plan_id = str(uuid.uuid4())
            conn.execute("insert into plans (id, key, name, currency, monthly_fee, payment_days, active, created_at) "
                         "values (%s, %s, %s, %s, %s, 15, true, now())", (plan_id, key, name, currency, fee))
            for meter, included, unit_price in prices:
                conn.execute("insert into plan_prices (id, plan_id, meter, included, unit_price) "
                             "values (gen_random_uuid(), %s, %s, %s, %s)", (plan_id, meter, included, unit_price))
            conn.execute("insert into plan_tax_rates (id, plan_id, rate_bp, effective_from) "
                         "values (gen_random_uuid(), %s, 1000, '2025-01-01')", (plan_id,))
        conn.execute("insert into users (id, email, name, provider_role, locale, is_active, totp_last_step, "
                     "notify_mode, created_at) values (%s, 'staff@bench.invalid', 'Bench Staff', 'staff', 'vi', "
                     "true, 0, 'immediate', now())", (staff_id,))
    return staff_id


SEED_SQL = [
    # Tenants: 4 in 5 in VND and Vietnamese, 1 in 5 in USD and English; three time zones.
    """insert into tenants (id, slug, name, status, currency, timezone, locale, enforce_mfa, created_at)
       select gen_random_uuid(), 'bench-' || lpad(g::text, 5, '0'), 'Công ty TNHH Bench số ' || g, 'active',
              case when mod(g, 5) = 0 then 'USD' else 'VND' end,
              (array['Asia/Ho_Chi_Minh', 'Asia/Bangkok', 'Asia/Singapore'])[1 + mod(g, 3)],
              case when mod(g, 5) = 0 then 'en' else 'vi' end, false, now() - interval '2 years'
       from generate_series(%(first)s::int, %(last)s::int) g""",
    # The batch: each tenant's last month as instants on its own clock.
    """create temp table batch on commit drop as
       select t.id as tenant_id, substr(t.slug, 7)::int as g, t.currency,
              (date_trunc('month', now() at time zone t.timezone) - interval '1 month') at time zone t.timezone
                  as m_start,
              date_trunc('month', now() at time zone t.timezone) at time zone t.timezone as m_end
       from tenants t where t.slug between 'bench-' || lpad(%(first)s::text, 5, '0')
                                      and 'bench-' || lpad(%(last)s::text, 5, '0')""",
    """insert into tenant_plans (id, tenant_id, plan_id, starts_on, pro_rata, discount_bp, created_at)
       select gen_random_uuid(), b.tenant_id,
              (select id from plans where key = case when b.currency = 'USD' then 'bench-usd'
                                                     else (array['bench-basic', 'bench-standard', 'bench-premium'])
                                                          [1 + mod(b.g, 3)] end),
              '2025-01-01', false, case when mod(b.g, 7) = 0 then 500 else 0 end, now()
       from batch b""",
    """insert into service_targets (id, tenant_id, service_line_id, turnaround_days, on_time_percent, created_at)
       select gen_random_uuid(), b.tenant_id, l.id, t.days, t.pct, now()
       from batch b, (values ('bookkeeping', 5, 95), ('payroll', 3, 95), ('data_entry', 2, 90)) t(line, days, pct)
       join service_lines l on l.key = t.line""",
    # 20 tasks over 3 lines: 12 done in the month, 3 open, 2 waiting on the client, 1 awaiting approval,
    # 2 in progress. Titles as plain bytes (read as written before sealing; the run never shows them).
    """create temp table btasks on commit drop as
       select gen_random_uuid() as id, b.tenant_id, k,
              (array['bookkeeping', 'payroll', 'data_entry'])[1 + mod(k, 3)] as line,
              case when k <= 12 then 'done' when k <= 15 then 'open' when k <= 17 then 'waiting_on_client'
                   when k = 18 then 'awaiting_approval' else 'in_progress' end as state,
              b.m_start + (b.m_end - b.m_start) * ((k - 1) / 30.0) as created_at,
              b.m_start + (b.m_end - b.m_start) * ((k - 1) / 30.0 + 0.075 * (1 + mod(k, 4))) as finished_at
       from batch b, generate_series(1, 20) k""",
    """insert into tasks (id, tenant_id, title, service_line_id, state, priority, due_date, needs_approval, source,
                          assignee_id, updated_at, done_at, created_at)
       select t.id, t.tenant_id, convert_to('Monthly task ' || t.k, 'UTF8'), l.id, t.state, 1 + mod(t.k, 4),
              (t.created_at + interval '5 days')::date, t.state = 'awaiting_approval', 'manual', %(staff)s::uuid,
              case when t.state = 'done' then t.finished_at else t.created_at end,
              case when t.state = 'done' then t.finished_at end, t.created_at
       from btasks t join service_lines l on l.key = t.line""",
    # 30 time entries on the first 20 tasks, 15 to 120 minutes, 4 in 5 billable.
    """insert into time_entries (id, tenant_id, task_id, user_id, started_at, ended_at, minutes, billable, created_at)
       select gen_random_uuid(), b.tenant_id, t.id, %(staff)s::uuid,
              b.m_start + (b.m_end - b.m_start) * ((e - 0.5) / 31.0),
              b.m_start + (b.m_end - b.m_start) * ((e - 0.5) / 31.0) + make_interval(mins => 15 + mod(e * 37, 106)),
              15 + mod(e * 37, 106), mod(e, 5) <> 0, now()
       from batch b, generate_series(1, 30) e join btasks t on true
       where t.tenant_id = b.tenant_id and t.k = 1 + mod(e, 20)""",
    # 15 documents received in the month (40 to 400 KB), each one object and one version.
    """create temp table bdocs on commit drop as
       select gen_random_uuid() as id, gen_random_uuid() as object_id, b.tenant_id, d,
              b.m_start + (b.m_end - b.m_start) * ((d - 0.5) / 16.0) as created_at,
              40000 + mod(d * 7919 * b.g, 360000) as size,
              (array['invoice', 'receipt', 'bank_statement', 'payroll_input', 'contract', 'other'])[1 + mod(d, 6)]
                  as category
       from batch b, generate_series(1, 15) d""",
    """insert into stored_objects (id, tenant_id, purpose, storage_key, sha256, size, sealed_size, kind, mime, key_id,
                                   key_version, wrapped_dek, preview, created_at)
       select object_id, tenant_id, 'content', 'bench/' || replace(object_id::text, '-', ''),
              encode(sha256(convert_to(object_id::text, 'UTF8')), 'hex'), size, size + 64, 'pdf', 'application/pdf',
              'bench', 1, decode(md5(object_id::text) || md5(id::text), 'hex'), 'done', created_at
       from bdocs""",
    """insert into documents (id, tenant_id, title, category, period, tags, current_version, created_at)
       select id, tenant_id, 'Scan ' || d || '.pdf', category, date_trunc('month', created_at)::date, '{}', 1,
              created_at
       from bdocs""",
    """insert into document_versions (id, tenant_id, document_id, number, object_id, filename, created_at)
       select gen_random_uuid(), tenant_id, id, 1, object_id, 'scan-' || d || '.pdf', created_at from bdocs""",
    # Documents 1-8 processed by the done tasks 1-8.
    """insert into task_documents (id, tenant_id, task_id, document_id, added_at)
       select gen_random_uuid(), d.tenant_id, t.id, d.id, t.finished_at
       from bdocs d join btasks t on t.tenant_id = d.tenant_id and t.k = d.d where d.d <= 8""",
    # One request of 2 items: one answered in the month with document 15, one outstanding.
    """create temp table breqs on commit drop as
       select gen_random_uuid() as id, b.tenant_id, b.m_start + interval '2 days' as created_at, b.m_end
       from batch b""",
    """insert into document_requests (id, tenant_id, title, created_at)
       select id, tenant_id, convert_to('Month-end documents', 'UTF8'), created_at from breqs""",
    """insert into document_request_items (id, tenant_id, request_id, position, description, category, due_date,
                                           document_id, fulfilled_at, created_at)
       select gen_random_uuid(), r.tenant_id, r.id, 1, convert_to('Sales invoices', 'UTF8'), 'invoice',
              (r.created_at + interval '10 days')::date, d.id, d.created_at, r.created_at
       from breqs r join bdocs d on d.tenant_id = r.tenant_id and d.d = 15
       union all
       select gen_random_uuid(), r.tenant_id, r.id, 2, convert_to('Bank statement', 'UTF8'), 'bank_statement',
              (r.m_end + interval '10 days')::date, null, null, r.created_at
       from breqs r""",
]


def seed_tenants(dsn: str, first: int, last: int, staff_id: str) -> list[str]:
    """Tenants ``first``..``last`` with their month, in one transaction; returns their ids in slug order."""
    import psycopg

    params = {"first": first, "last": last, "staff": staff_id}
    with psycopg.connect(dsn) as conn, conn.transaction():
        for sql in SEED_SQL:
            conn.execute(sql, {k: v for k, v in params.items() if f"%({k})s" in sql})
        ids = [str(row[0]) for row in conn.execute("select tenant_id from batch order by g")]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("vacuum (analyze)")  # a database at rest, as autovacuum keeps it
    return ids


def create_keys(key_dir: Path, tenant_ids: list[str]) -> None:
    """Each tenant's key, as its earlier uploads would have created it (the statement's PDF is sealed with it)."""
    from tenants.keyring import LocalKeyring

    keyring = LocalKeyring(key_dir)
    for tenant_id in tenant_ids:
        keyring.current(uuid.UUID(tenant_id))


# --- the workers -----------------------------------------------------------------------------------------------

def _worker_main(settings_file: str, timings_file: str) -> None:
    """A worker process: the portal's SimpleWorker on the default queue, each job's time and CPU appended to a
    JSON-lines file. WeasyPrint is warmed first (fonts), as in a worker that has been running a while."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from portal import create_app
    from portal.billing import documents, render
    from workers import redis_connection

    app = create_app(json.loads(Path(settings_file).read_text()))
    out = open(timings_file, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    class TimedWorker(SimpleWorker):
        def execute_job(self, job: Any, *args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.time(), time.process_time()
            try:
                return super().execute_job(job, *args, **kwargs)
            finally:
                out.write(json.dumps({"name": (job.meta or {}).get("name"), "start": wall, "end": time.time(),
                                      "cpu": time.process_time() - cpu}) + "\n")

    with app.app_context():
        render.html_to_pdf("<p>Chào buổi sáng</p>", static_dir=documents.STATIC)
        worker = TimedWorker(["default"], connection=redis_connection(), serializer=JSONSerializer)
        worker.work(burst=False, with_scheduler=False, logging_level="WARNING")


def start_workers(tmp: Path, settings: dict[str, Any], count: int) -> list[tuple[subprocess.Popen, Path]]:
    settings_file = tmp / "settings.json"
    settings_file.write_text(json.dumps(settings))
    settings_file.chmod(0o600)
    workers = []
    for i in range(count):
        timings = tmp / f"worker-{i}.jsonl"
        log = (tmp / f"worker-{i}.log").open("wb")
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(settings_file),
                                 str(timings)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        workers.append((proc, timings))
    return workers


def stop_workers(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for proc, _ in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # rq's warm shutdown
    for proc, _ in workers:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this script started
            proc.wait(10)


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def worker_timings(workers: list[tuple[subprocess.Popen, Path]], since: float, until: float) -> list[dict]:
    rows = []
    for _, path in workers:
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if since <= row["start"] <= until:
                    rows.append(row)
    return rows


# --- one run ---------------------------------------------------------------------------------------------------

def run_statements(app: Any, dsn: str, tenant_ids: list[str], workers: list, label: str) -> dict[str, Any]:
    """Enqueue the tenants' statement jobs as the scheduler does, and wait until every statement has its PDF."""
    import psycopg

    from portal.extensions import db
    from workers import enqueue

    with psycopg.connect(dsn, autocommit=True) as conn:
        mark = conn.execute("select coalesce(max(id), 0) from outbox_jobs").fetchone()[0]
    with app.app_context():
        started = time.time()
        for tenant_id in tenant_ids:
            enqueue("billing.statement", tenant_id, tenant_id=tenant_id)
        db.session.commit()  # the after-commit relay pushes them all to rq
        relayed = time.time()
    n = len(tenant_ids)
    deadline = time.monotonic() + RUN_TIMEOUT
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            statements, pdfs, open_jobs, errors, last = conn.execute(
                """select (select count(*) from statements s where s.tenant_id = any(%(ids)s::uuid[])),
                          (select count(*) from statements s where s.tenant_id = any(%(ids)s::uuid[])
                                                               and s.document_id is not null),
                          (select count(*) from outbox_jobs where id > %(mark)s and finished_at is null),
                          (select count(*) from outbox_jobs where id > %(mark)s and last_error is not null),
                          (select extract(epoch from max(finished_at)) from outbox_jobs where id > %(mark)s)""",
                {"ids": tenant_ids, "mark": mark}).fetchone()
            if statements == n and pdfs == n and open_jobs == 0:
                break
            for proc, _ in workers:
                if proc.poll() is not None:
                    raise SystemExit(f"a worker exited with {proc.returncode} during the {label} run")
            if time.monotonic() > deadline:
                raise SystemExit(f"{label} run: {statements}/{n} issued, {pdfs} PDFs after {RUN_TIMEOUT} s; "
                                 f"{errors} job errors")
            time.sleep(0.2)
        states = dict(conn.execute("select state, count(*) from statement_runs where tenant_id = any(%s::uuid[]) "
                                   "group by state", (tenant_ids,)).fetchall())
        kinds = dict(conn.execute("select currency || '/' || locale, count(*) from statements "
                                  "where tenant_id = any(%s::uuid[]) group by 1", (tenant_ids,)).fetchall())
        lines = conn.execute("select avg(c) from (select count(*) c from statement_lines l join statements s "
                             "on s.id = l.statement_id where s.tenant_id = any(%s::uuid[]) group by s.id) x",
                             (tenant_ids,)).fetchone()[0]
        outbox = {name: {"jobs": jobs, "attempts": attempts, "unfinished": unfinished, "errors": errors}
                  for name, jobs, attempts, unfinished, errors in conn.execute(
                      "select name, count(*), sum(attempts), count(*) filter (where finished_at is null), "
                      "count(last_error) from outbox_jobs where id > %s group by name", (mark,))}
        pdf_bytes = conn.execute(
            "select avg(o.size) from statements s join document_versions v on v.document_id = s.document_id "
            "join stored_objects o on o.id = v.object_id where s.tenant_id = any(%s::uuid[])",
            (tenant_ids,)).fetchone()[0]
    wall = float(last) - started
    jobs = worker_timings(workers, started, float(last) + 1)
    by_name: dict[str, list[dict]] = {}
    for row in jobs:
        by_name.setdefault(row["name"] or "?", []).append(row)
    issue = by_name.get("billing.statement", [])
    pdf = by_name.get("billing.statement_pdf", [])
    # What storing the PDF in the vault sets off: its announcement and the intake chain (preview, text, index).
    intake = [row for name in ("events.deliver", "events.handle", "intake.run") for row in by_name.get(name, [])]

    def mean_ms(rows: list[dict], key: str | None = None) -> float:
        values = [(r["end"] - r["start"]) if key is None else r[key] for r in rows]
        return round(statistics.fmean(values) * 1000, 1) if values else float("nan")

    busy = sum(r["end"] - r["start"] for r in jobs)
    cpu = sum(r["cpu"] for r in jobs)
    return {
        "label": label, "tenants": n, "errors": errors, "outbox": outbox, "run_states": states, "kinds": kinds,
        "lines_per_statement": round(float(lines or 0), 2), "pdf_kib": round(float(pdf_bytes or 0) / 1024, 1),
        "wall_s": round(wall, 2), "enqueue_s": round(relayed - started, 3),
        "statements_per_s": round(n / wall, 2), "wall_ms_per_statement": round(wall / n * 1000, 1),
        "jobs": {name: len(rows) for name, rows in by_name.items()},
        "issue_ms": mean_ms(issue), "pdf_ms": mean_ms(pdf),
        "issue_cpu_ms": mean_ms(issue, "cpu"), "pdf_cpu_ms": mean_ms(pdf, "cpu"),
        # Per statement, on the workers but not in the statement: the stored PDF's announcement and intake.
        "intake_ms": round(sum(r["end"] - r["start"] for r in intake) / n * 1000, 1),
        "intake_cpu_ms": round(sum(r["cpu"] for r in intake) / n * 1000, 1),
        "statement_ms": round(mean_ms(issue) + mean_ms(pdf), 1),
        "statement_cpu_ms": round(mean_ms(issue, "cpu") + mean_ms(pdf, "cpu"), 1),
        "busy_ms_per_statement": round(busy / n * 1000, 1), "cpu_ms_per_statement": round(cpu / n * 1000, 1),
        "worker_utilisation": round(busy / (wall * len(workers)), 3),
    }


# --- the bare render --------------------------------------------------------------------------------------------

def capture_html(app: Any, tenant_ids: list[str], samples: int) -> tuple[list[str], dict[str, float]]:
    """The PDF template's HTML of ``samples`` statements spread over the run, as the PDF job renders it, and the
    mean ms of the steps around the render: context and template (database reads, VietQR, amount in words), and
    ``documents.pdf_bytes`` whole (context, template and render)."""
    from flask import render_template
    from flask_babel import force_locale
    from sqlalchemy import select

    from portal.billing import documents
    from portal.billing.models import Statement
    from portal.extensions import db
    from tenants.context import for_tenant
    from tenants.models import Tenant

    step = max(1, len(tenant_ids) // samples)
    out: list[str] = []
    template_s: list[float] = []
    pdf_bytes_s: list[float] = []
    with app.app_context():
        for tenant_id in tenant_ids[::step][:samples]:
            with for_tenant(uuid.UUID(tenant_id)):
                tenant = db.session.get(Tenant, uuid.UUID(tenant_id))
                statement = db.session.scalar(select(Statement).where(Statement.superseded_at.is_(None)))
                for _ in range(2):  # the second is timed
                    started = time.perf_counter()
                    with force_locale(statement.locale):
                        html = render_template("billing/statement_pdf.html",
                                               **documents.context(statement, tenant, statement.locale))
                    took = time.perf_counter() - started
                template_s.append(took)
                out.append(html)
                started = time.perf_counter()
                documents.pdf_bytes(statement, tenant)
                pdf_bytes_s.append(time.perf_counter() - started)
                db.session.rollback()
    return out, {"context_and_template_ms": round(statistics.fmean(template_s) * 1000, 1),
                 "pdf_bytes_ms": round(statistics.fmean(pdf_bytes_s) * 1000, 1)}


def _render_many(htmls: list[str], repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each ``html_to_pdf`` call, after one warm-up render."""
    from portal.billing import documents, render

    for html in htmls:  # each statement once first: fonts and glyphs loaded, as in a worker that has run a while
        render.html_to_pdf(html, static_dir=documents.STATIC)
    out = []
    for _ in range(repeat):
        for html in htmls:
            wall, cpu = time.perf_counter(), time.process_time()
            render.html_to_pdf(html, static_dir=documents.STATIC)
            out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def bare_pdf(htmls: list[str], repeat: int, parallel: int) -> dict[str, Any]:
    """The bare render, in this process alone, then in ``parallel`` processes at once (the workers' shape)."""
    alone = _render_many(htmls, repeat)
    ctx = __import__("multiprocessing").get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(parallel, mp_context=ctx) as pool:
        list(pool.map(_warm, range(parallel)))  # imports and fonts, before the clock starts
        started = time.perf_counter()
        results = list(pool.map(_render_many, [htmls] * parallel, [repeat] * parallel))
        wall = time.perf_counter() - started
    renders = sum(len(r) for r in results)
    each = [call for calls in results for call in calls]
    return {"renders": len(alone), "ms": round(statistics.fmean(w for w, _ in alone) * 1000, 1),
            "median_ms": round(statistics.median(w for w, _ in alone) * 1000, 1),
            "cpu_ms": round(statistics.fmean(c for _, c in alone) * 1000, 1),
            "parallel": parallel, "parallel_wall_ms_per_pdf": round(wall / renders * 1000, 1),
            # One render's own time while ``parallel`` render at once: what a render costs in a worker beside
            # another busy one (two cores share caches and clock), the like-for-like baseline of a job's time.
            "parallel_ms": round(statistics.fmean(w for w, _ in each) * 1000, 1),
            "parallel_cpu_ms": round(statistics.fmean(c for _, c in each) * 1000, 1)}


def _warm(_: int) -> None:
    from portal.billing import documents, render

    render.html_to_pdf("<p>warm</p>", static_dir=documents.STATIC)


# --- the bench -------------------------------------------------------------------------------------------------

def redis_for_bench(tmp: Path, db_number: int) -> str:
    """The bench's own Redis database (refused when it holds keys: it is flushed at the end)."""
    from redis import Redis

    from bench.home import port_open

    if port_open(6379):
        url = f"redis://127.0.0.1:6379/{db_number}"
    else:
        from portal.embedded import start_redis

        url = start_redis(tmp / "redis").rsplit("/", 1)[0] + f"/{db_number}"
    keys = Redis.from_url(url).dbsize()
    if keys:
        raise SystemExit(f"Redis database {db_number} holds {keys} keys: pick an empty one with --redis-db")
    return url


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade
    from psycopg.conninfo import make_conninfo
    from redis import Redis

    from bench.home import stop_embedded_postgres, superuser_url
    from portal import create_app
    from portal.dbsetup import bootstrap

    tmp = Path(tempfile.mkdtemp(prefix="bench-statements-"))
    su, pgdata = superuser_url(tmp)
    redis_url = redis_for_bench(tmp, args.redis_db)
    urls = bootstrap(su, DB_NAME, recreate=True)
    dsn = make_conninfo(su, dbname=DB_NAME)
    settings = {"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": redis_url,
                "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
                "FIELD_KEY": Fernet.generate_key().decode(), "STRIPE_API_KEY": None, "STRIPE_WEBHOOK_SECRET": None,
                "LOG_LEVEL": "WARNING", "PROVIDER_NAME": "Bench Outsourcing JSC",
                "PROVIDER_BANK_NAME": "Vietcombank", "PROVIDER_BANK_BIN": "970436",
                "PROVIDER_BANK_ACCOUNT": "0011004242424", "PROVIDER_ACCOUNT_NAME": "CONG TY BENCH"}
    result: dict[str, Any] = {"load_at_start": os.getloadavg(),
                              "cpus": os.cpu_count(), "workers": args.workers, "redis": redis_url.rsplit("/", 1)[1],
                              "documents": "catalogue rows inserted directly (no bytes in the vault)"}
    workers: list = []
    try:
        app = create_app(settings)
        with app.app_context():
            upgrade()
        staff_id = seed_plans(dsn)
        key_dir = tmp / "instance" / "keys"
        started = time.perf_counter()
        small = seed_tenants(dsn, 1, args.first, staff_id)
        create_keys(key_dir, small)
        result["seed_small_s"] = round(time.perf_counter() - started, 1)
        workers = start_workers(tmp, settings, args.workers)
        time.sleep(1)
        result["small"] = run_statements(app, dsn, small, workers, f"{args.first} tenants")
        _print_run(result["small"])
        rss_small = [proc_status(p.pid) for p, _ in workers]
        if args.tenants:
            started = time.perf_counter()
            large = seed_tenants(dsn, args.first + 1, args.first + args.tenants, staff_id)
            create_keys(key_dir, large)
            result["seed_large_s"] = round(time.perf_counter() - started, 1)
            result["large"] = run_statements(app, dsn, large, workers, f"{args.tenants} tenants")
            _print_run(result["large"])
        else:
            large = small
        rss = [proc_status(p.pid) for p, _ in workers]
        result["worker_rss"] = {"after_small_hwm_mib": [round(r["VmHWM"] / 2**20, 1) for r in rss_small],
                                "peak_hwm_mib": [round(r["VmHWM"] / 2**20, 1) for r in rss],
                                "rss_at_end_mib": [round(r["VmRSS"] / 2**20, 1) for r in rss]}
        result["load_after_runs"] = os.getloadavg()
        stop_workers(workers)  # the bare render gets the machine to itself
        workers = []
        htmls, steps = capture_html(app, large, BARE_SAMPLES)
        result["bare"] = bare_pdf(htmls, args.bare_repeat, args.workers)
        result["bare"].update(steps, samples=len(htmls))
        with app.app_context():
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()
    finally:
        stop_workers(workers)
        import psycopg
        from psycopg import sql

        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DB_NAME)))
        with contextlib.suppress(Exception):
            Redis.from_url(redis_url).flushdb()
        if pgdata is not None:
            stop_embedded_postgres(pgdata)
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return verdicts(result)


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    big = result.get("large") or result["small"]
    bare = result["bare"]
    result["ratios"] = {
        # The headline: one statement's two jobs in a worker (two workers busy at once) against one bare render
        # of its HTML under the same load (two renders at once): like against like on the same two cores.
        "statement_vs_bare": round(big["statement_ms"] / bare["parallel_ms"], 2),
        "statement_cpu_vs_bare_cpu": round(big["statement_cpu_ms"] / bare["parallel_cpu_ms"], 2),
        # For the record: against a render alone on an otherwise idle machine (not like for like).
        "statement_vs_bare_alone": round(big["statement_ms"] / bare["ms"], 2),
        "with_intake_vs_bare": round((big["statement_ms"] + big["intake_ms"]) / bare["parallel_ms"], 2),
        # Throughput at the same parallelism: the run's wall per statement against bare renders in as many processes.
        "wall_vs_bare_parallel": round(big["wall_ms_per_statement"] / bare["parallel_wall_ms_per_pdf"], 2),
    }
    if result.get("large"):
        result["ratios"]["large_vs_small_busy"] = round(
            result["large"]["statement_ms"] / result["small"]["statement_ms"], 3)
        result["ratios"]["large_vs_small_wall"] = round(
            result["large"]["wall_ms_per_statement"] / result["small"]["wall_ms_per_statement"], 3)
    return result


def _print_run(r: dict[str, Any]) -> None:
    print(f"{r['label']}: {r['wall_s']} s, {r['statements_per_s']} statements/s, {r['statement_ms']} ms "
          f"per statement in a worker (issue {r['issue_ms']} ms + PDF {r['pdf_ms']} ms; then the PDF's intake "
          f"{r['intake_ms']} ms)", flush=True)


def report(result: dict[str, Any]) -> str:
    small, big, bare, r = result["small"], result.get("large"), result["bare"], result["ratios"]
    runs = [small] + ([big] if big else [])
    load = ", ".join(f"{x:.2f}" for x in result["load_at_start"])
    lines = [f"{result['cpus']} CPUs, {result['workers']} rq workers (SimpleWorker), Stripe off; documents: "
             f"{result['documents']}",
             f"load average at the start {load} (anything else running moves every figure; run it twice)", "",
             f"{'':14} {'wall s':>7} {'stmt/s':>7} {'wall ms':>8} {'stmt ms':>8} {'issue':>6} {'PDF':>6} "
             f"{'CPU ms':>7} {'intake':>6} {'util':>5}"]
    for x in runs:
        lines.append(f"{x['label']:14} {x['wall_s']:7.1f} {x['statements_per_s']:7.2f} "
                     f"{x['wall_ms_per_statement']:8.1f} {x['statement_ms']:8.1f} {x['issue_ms']:6.1f} "
                     f"{x['pdf_ms']:6.1f} {x['statement_cpu_ms']:7.1f} {x['intake_ms']:6.1f} "
                     f"{x['worker_utilisation']:5.0%}")
    lines.append("(wall ms: the run's wall time per statement, intake included; stmt ms = issue + PDF job "
                 "in a worker; CPU: the worker's own; intake: the stored PDF's announcement and intake chain "
                 "(preview, text, index); util: workers busy)")
    for x in runs:
        lines.append(f"  {x['label']}: runs {x['run_states']}, {x['kinds']}, {x['lines_per_statement']} lines, "
                     f"PDF {x['pdf_kib']} KiB, job errors {x['errors']}")
    lines += ["",
              f"bare PDF (html_to_pdf on {bare['samples']} statements' HTML x {bare['renders'] // bare['samples']}): "
              f"{bare['ms']} ms mean, {bare['median_ms']} ms median, {bare['cpu_ms']} ms CPU; "
              f"{bare['parallel']} processes at once: {bare['parallel_ms']} ms each "
              f"({bare['parallel_cpu_ms']} ms CPU), "
              f"{bare['parallel_wall_ms_per_pdf']} ms wall per PDF",
              f"  around it, same statements, one process: context + template {bare['context_and_template_ms']} ms; "
              f"documents.pdf_bytes (context, template, render) {bare['pdf_bytes_ms']} ms",
              f"statement / bare PDF, both {result['workers']} at once: {r['statement_vs_bare']:.2f}x (goal <= "
              f"{GOAL_RATIO}x: {'meets' if r['statement_vs_bare'] <= GOAL_RATIO else 'MISSES'} the goal); CPU "
              f"{r['statement_cpu_vs_bare_cpu']:.2f}x; against a render alone {r['statement_vs_bare_alone']:.2f}x; "
              f"with the PDF's intake {r['with_intake_vs_bare']:.2f}x; wall at {result['workers']} in parallel "
              f"{r['wall_vs_bare_parallel']:.2f}x"]
    if big:
        flat = r["large_vs_small_busy"]
        lines.append(f"per statement at {big['tenants']} / at {small['tenants']}: {flat:.3f} in a worker, "
                     f"{r['large_vs_small_wall']:.3f} wall (goal <= {GOAL_FLAT}: "
                     f"{'meets' if max(flat, r['large_vs_small_wall']) <= GOAL_FLAT else 'MISSES'} the goal)")
    rss = result["worker_rss"]
    lines.append(f"peak worker RSS (VmHWM): {max(rss['peak_hwm_mib'])} MiB (each: {rss['peak_hwm_mib']}; "
                 f"after the small run: {rss['after_small_hwm_mib']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000, help="tenants of the large run (default 1000; 0: none)")
    parser.add_argument("--first", type=int, default=FIRST, help="tenants of the small run (default 100)")
    parser.add_argument("--workers", type=int, default=WORKERS, help="rq worker processes (default 2)")
    parser.add_argument("--bare-repeat", type=int, default=BARE_REPEAT, help="bare renders of each sample (3)")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="the bench's own, empty, Redis db (13)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(*args.worker)
        return 0
    result = run(args)
    print()
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

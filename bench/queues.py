#!/usr/bin/env python3
"""Benchmark: "my work" and the queue API at 10,000 and 1,000,000 tasks; take-next against bare SQL.

In one run, on a dedicated database ``portal_bench_queues`` (dropped at the end) with
1,000 tenants:

1. Loads 10,000 tasks (generated in SQL), then times, through the whole Flask stack
   in-process (the test client: gate, session, RLS, ORM, templates; no network):
   ``GET /provider/work`` for a staff member assigned to 20 tenants, the team queue page
   ``GET /provider/queues/data_entry`` (reported, no goal), and
   ``GET /api/v1/tenants/<slug>/tasks?state=open`` with a bearer token, N requests each.
2. Grows the table to 1,000,000 tasks and times the same requests again.
3. Take-next: 8 threads take tasks for ``--seconds`` through ``portal.work.queues.take_next``,
   then 8 threads run the bare SQL statement of a take (``SELECT … FOR UPDATE SKIP LOCKED``
   + ``UPDATE``, one transaction each) on the same table for the same time.

Goals: p95 of the page under 50 ms at 1,000,000 tasks; each p95 within 25 % between 10,000
and 1,000,000; take-next at least 50 % of the bare statement's rate.

    .venv/bin/python bench/queues.py                        # 200 requests per figure, 10 s of takes
    .venv/bin/python bench/queues.py --requests 500 --seconds 20 --json /tmp/queues.json
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "portal_bench_queues"
TENANTS = 1000
STAFF_TENANTS = 20
TAKERS = 8


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _figure(latencies: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p95_ms": round(_percentile(latencies, 0.95) * 1000, 2)}


def seed(owner_url: str, tenants: int) -> None:
    """Tenants, a staff member assigned to the first 20 of them, and an API token's user, straight in SQL."""
    import psycopg

    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("""
            insert into tenants (id, slug, name, status, currency, timezone, locale, enforce_mfa, created_at)
            select gen_random_uuid(), 'bench-' || g, 'Bench client ' || g, 'active', 'VND', 'Asia/Ho_Chi_Minh',
                   'vi', false, now()
            from generate_series(1, %s) g""", (tenants,))


def fixed_tasks(owner_url: str, staff_id: str) -> None:
    """What the measured pages show, the same at every table size: 200 tasks of the bench staff member
    over their 20 tenants, and 100 open tasks in the first tenant's queue (so every page is full).

    Titles are written as plain bytes, which the portal reads as titles written before they were sealed
    (tenants.fields): the pages then skip the decryption a real title costs (a few microseconds each)."""
    import psycopg

    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("""
            with ids as (select array_agg(id order by slug) as tenants from tenants),
                 line as (select id from service_lines where key = 'bookkeeping')
            insert into tasks (id, tenant_id, title, service_line_id, state, priority, due_date, needs_approval,
                               source, assignee_id, created_at, updated_at)
            select gen_random_uuid(), ids.tenants[1 + g %% %s], convert_to('Mine ' || g, 'UTF8'), line.id,
                   (array['in_progress','open','in_review'])[1 + g %% 3], 1 + g %% 4, current_date + (g %% 40) - 10,
                   false, 'manual', %s::uuid, now(), now()
            from generate_series(1, 200) g, ids, line""", (STAFF_TENANTS, staff_id))
        conn.execute("""
            insert into tasks (id, tenant_id, title, service_line_id, state, priority, due_date, needs_approval,
                               source, created_at, updated_at)
            select gen_random_uuid(), (select id from tenants order by slug limit 1), convert_to('Queue ' || g, 'UTF8'),
                   (select id from service_lines where key = 'data_entry'), 'open', 1 + g % 4, current_date + g,
                   false, 'manual', now() - make_interval(secs => g), now()
            from generate_series(1, 100) g""")


def add_tasks(owner_url: str, upto: int) -> None:
    """Grow the tasks table to ``upto`` rows spread over every tenant (unassigned: the queues)."""
    import psycopg

    with psycopg.connect(owner_url, autocommit=True) as conn:
        have = conn.execute("select count(*) from tasks").fetchone()[0]
        if have >= upto:
            return
        conn.execute("""
            with ids as (select array_agg(id order by slug) as tenants, count(*) as n from tenants),
                 lines as (select array_agg(id order by key) as ids from service_lines)
            insert into tasks (id, tenant_id, title, service_line_id, state, priority, due_date, needs_approval,
                               source, assignee_id, created_at, updated_at)
            select gen_random_uuid(), ids.tenants[1 + g %% ids.n], convert_to('Task ' || g, 'UTF8'),
                   lines.ids[1 + g %% 4],
                   (array['open','open','in_progress','in_review','done','done','waiting_on_client'])[1 + g %% 7],
                   1 + g %% 4, current_date + (g %% 90) - 30, false, 'manual',
                   null, now() - make_interval(secs => g), now()
            from generate_series(%s + 1, %s) g, ids, lines""", (have, upto))
        # A table at rest, as in production after autovacuum: otherwise autovacuum wakes up on the
        # fresh rows in the middle of the measurements, and index-only scans lack their visibility map.
        conn.execute("vacuum (analyze) tasks")


def time_requests(client, path: str, n: int, headers: dict | None = None) -> list[float]:
    """Latencies of ``n`` sequential GETs through the whole stack (after 20 warm-up requests)."""
    for _ in range(20):
        assert client.get(path, headers=headers).status_code == 200
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(path, headers=headers)
        out.append(time.perf_counter() - start)
        if r.status_code != 200:
            raise RuntimeError(f"{path} answered {r.status_code}")
    return out


def bare_takes(app_url: str, tenant_ids: list[str], seconds: float) -> int:
    """The bare SQL of a take (as the app role, tenants bound, RLS on), 8 threads: how many in ``seconds``."""
    import psycopg

    count = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    setting = ",".join(tenant_ids)

    def run() -> None:
        with psycopg.connect(app_url) as conn:
            while time.monotonic() < stop:
                with conn.transaction():
                    conn.execute("select set_config('app.tenant_ids', %s, true)", (setting,))
                    row = conn.execute(
                        "select id from tasks where state = 'open' and assignee_id is null "
                        "and tenant_id = any(string_to_array(%s, ',')::uuid[]) "
                        "order by priority, due_date nulls last, created_at limit 1 for update skip locked",
                        (setting,)).fetchone()
                    if row is None:
                        return
                    conn.execute("update tasks set state = 'in_progress', assignee_id = null, updated_at = now() "
                                 "where id = %s", (row[0],))
                with lock:
                    count[0] += 1

    threads = [threading.Thread(target=run) for _ in range(TAKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0]


def service_takes(app, takers: list[Any], seconds: float) -> int:
    """``take_next`` through the service layer by 8 staff members at once: how many in ``seconds``."""
    from portal.extensions import db
    from portal.work.queues import take_next
    from tenants.models import User

    count = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(user_id: Any) -> None:
        with app.app_context():
            user = db.session.get(User, user_id)
            while time.monotonic() < stop:
                if take_next(user) is None:
                    return
                with lock:
                    count[0] += 1

    threads = [threading.Thread(target=run, args=(u,)) for u in takers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from cryptography.fernet import Fernet
    from flask_migrate import upgrade

    from bench.home import redis_url, superuser_url
    from portal import create_app
    from portal.api.tokens import create_token
    from portal.dbsetup import bootstrap
    from portal.extensions import db
    from tenants.context import Scope, bound
    from tenants.lifecycle import assign
    from tenants.models import Tenant, User
    from tenants.policy import Role
    from tests.factories import login, make_person

    tmp = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    su, _pgdata = superuser_url(tmp)
    urls = bootstrap(su, DB_NAME, recreate=True)
    from psycopg.conninfo import make_conninfo

    # Seeding bypasses row-level security (FORCE'd even for the owner): as the superuser.
    owner_dsn = make_conninfo(su, dbname=DB_NAME)
    app_dsn = urls.app.replace("postgresql+psycopg://", "postgresql://")
    result: dict[str, Any] = {}
    try:
        app = create_app({"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": redis_url(tmp),
                          "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
                          "FIELD_KEY": Fernet.generate_key().decode(), "RATELIMIT_ENABLED": False,
                          "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 10}})
        with app.app_context():
            upgrade()
        seed(owner_dsn, TENANTS)
        with app.app_context():
            admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
            tenants = list(db.session.scalars(db.select(Tenant).order_by(Tenant.slug)))
            staff = make_person(Role.STAFF)
            for tenant in tenants[:STAFF_TENANTS]:
                assign(admin, tenant, db.session.get(User, staff.id))
            takers = []
            for i in range(TAKERS):  # each taker works for 50 tenants of their own
                person = make_person(Role.STAFF, mfa=False)
                for tenant in tenants[100 + 50 * i: 150 + 50 * i]:
                    assign(admin, tenant, db.session.get(User, person.id))
                takers.append(person.id)
            member = make_person(Role.CLIENT_ADMIN, tenants[0], mfa=False)
            with bound(Scope(user_id=member.id, tenant_ids=frozenset({tenants[0].id}))):
                token = create_token(db.session.get(User, member.id), tenants[0], "bench", "read")
            slug = tenants[0].slug
            all_ids = [str(t.id) for t in tenants]
        client = app.test_client()
        login(client, staff)
        headers = {"Authorization": f"Bearer {token}"}
        fixed_tasks(owner_dsn, str(staff.id))
        for size in (args.small, args.large):
            started = time.perf_counter()
            add_tasks(owner_dsn, size)
            result[f"load_{size}_s"] = round(time.perf_counter() - started, 1)
            result[f"my_work_{size}"] = _figure(time_requests(client, "/provider/work", args.requests))
            result[f"team_queue_{size}"] = _figure(time_requests(client, "/provider/queues/data_entry", args.requests))
            result[f"queue_api_{size}"] = _figure(time_requests(
                client, f"/api/v1/tenants/{slug}/tasks?state=open&limit=50", args.requests, headers))
        result["take_next_per_s"] = round(service_takes(app, takers, args.seconds) / args.seconds, 1)
        result["bare_take_per_s"] = round(bare_takes(app_dsn, all_ids[100:500], args.seconds) / args.seconds, 1)
    finally:
        import psycopg
        from psycopg import sql

        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DB_NAME)))
        shutil.rmtree(tmp, ignore_errors=True)

    small, large = args.small, args.large
    page, api = result[f"my_work_{large}"], result[f"queue_api_{large}"]
    flat_page = page["p95_ms"] / result[f"my_work_{small}"]["p95_ms"]
    flat_api = api["p95_ms"] / result[f"queue_api_{small}"]["p95_ms"]
    ratio = result["take_next_per_s"] / result["bare_take_per_s"]
    result["verdicts"] = {"page_p95_under_50ms": page["p95_ms"] < 50, "page_flat_within_25pct": flat_page <= 1.25,
                          "api_flat_within_25pct": flat_api <= 1.25, "take_next_ratio": round(ratio, 3),
                          "take_next_at_least_50pct": ratio >= 0.5}
    print(f"{'':28} {'p50 ms':>8} {'p95 ms':>8}")
    for name in (f"my_work_{small}", f"my_work_{large}", f"team_queue_{small}", f"team_queue_{large}",
                 f"queue_api_{small}", f"queue_api_{large}"):
        print(f"{name:28} {result[name]['p50_ms']:8.2f} {result[name]['p95_ms']:8.2f}")
    print(f"\npage p95 at {large:,} tasks: {page['p95_ms']:.1f} ms (goal < 50 ms); "
          f"p95 {large:,} / {small:,}: page {flat_page:.2f}, API {flat_api:.2f} (goal <= 1.25)")
    print(f"take-next: {result['take_next_per_s']}/s through the service vs {result['bare_take_per_s']}/s bare SQL "
          f"= {ratio:.1%} (goal >= 50%)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

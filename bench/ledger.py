#!/usr/bin/env python3
"""Benchmark: posting through the ledger's service against a bare insert, and the reports against their bare
aggregate, with 1,000,000 lines for one tenant and 10,000 lines each for 100 other tenants beside it.

In one run, on a dedicated database ``portal_bench_ledger`` (dropped at the end):

1. Posting, two ways, each against the same lines written bare in SQL as the app role under row-level
   security (the triggers still on): ``--single`` entries (a sale with VAT, 3 lines; its payment, 2) one
   transaction each through ``services.save_draft(post_it=True)`` as the pages' "Save and post" does (the
   checks, the number under the tenant's lock, the audit event, the deferred balance trigger), against one
   INSERT per entry and its lines and a commit; and ``--post`` entries through ``services.post_batch``, 500 a
   transaction (an import), against a bare multi-row INSERT of the same rows 500 a transaction. Throughput in
   lines/s and service / bare (goal, on the batch path: at least 30 %).
2. Load: the rest of the 1,000,000 lines for the big tenant and 10,000 for each of 100 others, bulk inserted
   as the owner (COPY), so the reports read a realistic volume; ``analyze``.
3. Reports, each ``--repeat`` times through ``portal.ledger.reports`` with the tenant bound (the page's
   query, row-level security and all, for the year), against the bare SQL aggregate of the same figures
   (a GROUP BY over the lines with the tenant's id, as the owner): trial balance, profit and loss, balance
   sheet, and the receivables' ageing (open invoices of 200 customers less what payments settled, in five
   columns, against the same GROUP BY over lines and settlements). Median ms and the ratio (goal: within 2x).

    .venv/bin/python bench/ledger.py                          # 2,000 entries posted, 1,000,000 lines
    .venv/bin/python bench/ledger.py --post 500 --lines 200000 --json /tmp/ledger.json
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "portal_bench_ledger"
OTHERS = 100
OTHER_LINES = 10_000
GOAL_POSTING = 0.30
GOAL_REPORT = 2.0
SALE = [("131", 11_000_000, 0), ("5111", 0, 10_000_000), ("33311", 0, 1_000_000)]
PAID = [("1121", 11_000_000, 0), ("131", 0, 11_000_000)]
PARTIES = [uuid.UUID(int=n).bytes[:12] for n in range(1, 201)]  # 200 customers' keys (random bytes in the app)


def _median_ms(run, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def _day(i: int) -> date:
    return date(2026, 1, 1) + timedelta(days=i % 330)


def post_through_service(app, tenant_id, person, entries: int) -> float:  # noqa: ANN001
    """Seconds to post ``entries`` entries (alternately a sale of 3 lines and a payment of 2) through the service."""
    from portal.extensions import db
    from portal.ledger import services
    from tenants.context import Scope, bound
    from tenants.models import Tenant, User

    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=person.role)):
            tenant = db.session.get(Tenant, tenant_id)
            started = time.perf_counter()
            for i in range(entries):
                lines = SALE if i % 2 == 0 else PAID
                services.save_draft(user, tenant, _day(i), [services.LineInput(a, d, c) for a, d, c in lines],
                                    post_it=True)  # saved and posted in one transaction, as the pages do
            return time.perf_counter() - started


BATCH = 500  # entries per post_batch call, and per bare bulk transaction


def post_batches(app, tenant_id, person, entries: int) -> float:  # noqa: ANN001
    """Seconds to post the same kind of entries through ``services.post_batch``, ``BATCH`` at a time."""
    from portal.extensions import db
    from portal.ledger import services
    from tenants.context import Scope, bound
    from tenants.models import Tenant, User

    with app.app_context():
        user = db.session.get(User, person.id)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=person.role)):
            tenant = db.session.get(Tenant, tenant_id)
            started = time.perf_counter()
            for start in range(0, entries, BATCH):
                batch = [services.EntryInput(_day(i), [services.LineInput(a, d, c)
                                                       for a, d, c in (SALE if i % 2 == 0 else PAID)])
                         for i in range(start, min(entries, start + BATCH))]
                services.post_batch(user, tenant, batch)
            return time.perf_counter() - started


def _warm(conn, tenant_id, accounts: dict[str, uuid.UUID]) -> None:  # noqa: ANN001
    """One entry written and rolled back: the new connection's catalogue caches and trigger plans are warm,
    as the app's pooled connections are."""
    entry = uuid.uuid4()
    conn.execute("insert into ledger_entries (id, tenant_id, number, entry_date, state, source, posted_at) "
                 "values (%s, %s, -1, '2026-01-01', 'posted', 'import', now())", (entry, tenant_id))
    conn.execute("insert into ledger_lines (id, tenant_id, entry_id, line_no, account_id, debit, credit) values "
                 "(%s, %s, %s, 1, %s, 1, 0), (%s, %s, %s, 2, %s, 0, 1)",
                 (uuid.uuid4(), tenant_id, entry, accounts["131"], uuid.uuid4(), tenant_id, entry, accounts["5111"]))
    conn.rollback()


def bulk_bare(app_dsn: str, tenant_id, accounts: dict[str, uuid.UUID], entries: int, first_number: int) -> float:  # noqa: ANN001
    """Seconds to insert the same entries bare, ``BATCH`` a transaction (one multi-row INSERT a table), as the
    app role."""
    import psycopg

    with psycopg.connect(app_dsn) as conn:
        conn.execute("select set_config('app.tenant_ids', %s, false)", (str(tenant_id),))
        conn.commit()  # the session's setting outlives the warm-up's rollback
        _warm(conn, tenant_id, accounts)
        started = time.perf_counter()
        for start in range(0, entries, BATCH):
            entry_rows, line_rows = [], []
            for i in range(start, min(entries, start + BATCH)):
                entry = uuid.uuid4()
                entry_rows.append((entry, tenant_id, first_number + i, _day(i)))
                line_rows += [(uuid.uuid4(), tenant_id, entry, n, accounts[a], d, c)
                              for n, (a, d, c) in enumerate(SALE if i % 2 == 0 else PAID, 1)]
            # One multi-row INSERT per table (COPY is refused under row-level security).
            conn.execute("insert into ledger_entries (id, tenant_id, number, entry_date, state, source, posted_at) "
                         "values " + ", ".join(["(%s, %s, %s, %s, 'posted', 'import', now())"] * len(entry_rows)),
                         [v for row in entry_rows for v in row])
            conn.execute("insert into ledger_lines (id, tenant_id, entry_id, line_no, account_id, debit, credit) "
                         "values " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(line_rows)),
                         [v for row in line_rows for v in row])
            conn.commit()
        return time.perf_counter() - started


def post_bare(app_dsn: str, tenant_id, accounts: dict[str, uuid.UUID], entries: int, first_number: int) -> float:  # noqa: ANN001
    """Seconds to write the same entries bare: one INSERT per entry, one multi-row INSERT of its lines, a commit."""
    import psycopg

    with psycopg.connect(app_dsn) as conn:
        conn.execute("select set_config('app.tenant_ids', %s, false)", (str(tenant_id),))
        conn.commit()  # the session's setting outlives the warm-up's rollback
        _warm(conn, tenant_id, accounts)
        started = time.perf_counter()
        for i in range(entries):
            entry = uuid.uuid4()
            lines = SALE if i % 2 == 0 else PAID
            conn.execute("insert into ledger_entries (id, tenant_id, number, entry_date, state, source, posted_at) "
                         "values (%s, %s, %s, %s, 'posted', 'manual', now())",
                         (entry, tenant_id, first_number + i, _day(i)))
            values = [(uuid.uuid4(), tenant_id, entry, n, accounts[a], d, c) for n, (a, d, c) in enumerate(lines, 1)]
            with conn.cursor() as cur:
                cur.executemany("insert into ledger_lines (id, tenant_id, entry_id, line_no, account_id, debit, "
                                "credit) values (%s, %s, %s, %s, %s, %s, %s)", values)
            conn.commit()
        return time.perf_counter() - started


def bulk_load(owner_dsn: str, tenant_id, accounts: dict[str, uuid.UUID], lines: int, first_number: int) -> None:  # noqa: ANN001
    """``lines`` more posted lines for a tenant (sales and payments, balanced), with COPY, as the owner."""
    import psycopg

    entries_buf, lines_buf, settled_buf = io.StringIO(), io.StringIO(), io.StringIO()
    n, i, sale_item = 0, 0, None
    while n < lines:
        entry = uuid.uuid4()
        chosen = SALE if i % 2 == 0 else PAID
        day = _day(i)
        entries_buf.write(f"{entry}\t{tenant_id}\t{first_number + i}\t{day}\tposted\tmanual\t2026-12-01\t"
                          f"{day + timedelta(days=30)}\n")
        for k, (a, d, c) in enumerate(chosen, 1):
            line = uuid.uuid4()
            # COPY's text format: bytea as \\x<hex> (its backslash escaped), NULL as \\N
            party = "\\\\x" + PARTIES[(i // 2) % len(PARTIES)].hex() if a == "131" else "\\N"
            lines_buf.write(f"{line}\t{tenant_id}\t{entry}\t{k}\t{accounts[a]}\t{d}\t{c}\t{party}\n")
            if a == "131" and d:
                sale_item = line
            elif a == "131" and i % 4 == 1:  # half the payments settle the sale before them; the rest are unapplied
                settled_buf.write(f"{uuid.uuid4()}\t{tenant_id}\t{sale_item}\t{line}\t{c}\n")
        n += len(chosen)
        i += 1
    with psycopg.connect(owner_dsn) as conn:
        with conn.cursor() as cur:
            with cur.copy("copy ledger_entries (id, tenant_id, number, entry_date, state, source, posted_at, "
                          "due_date) from stdin") as copy:
                copy.write(entries_buf.getvalue())
            with cur.copy("copy ledger_lines (id, tenant_id, entry_id, line_no, account_id, debit, credit, "
                          "party_key) from stdin") as copy:
                copy.write(lines_buf.getvalue())
            with cur.copy("copy ledger_settlements (id, tenant_id, item_line_id, settling_line_id, amount) "
                          "from stdin") as copy:
                copy.write(settled_buf.getvalue())
        conn.commit()


BARE_TB = """select a.code, sum(l.debit), sum(l.credit) from ledger_lines l
  join ledger_entries e on e.id = l.entry_id and e.state = 'posted' and e.entry_date between %s and %s
  join ledger_accounts a on a.id = l.account_id
  where l.tenant_id = %s group by a.code order by a.code"""
BARE_TYPES = """select a.type, sum(l.debit - l.credit) from ledger_lines l
  join ledger_entries e on e.id = l.entry_id and e.state = 'posted' and e.entry_date <= %s
  join ledger_accounts a on a.id = l.account_id
  where l.tenant_id = %s group by a.type"""

# The same figures as the page: a settlement counts once its payment (for an item) or its invoice (for a
# payment) is posted by the day; the page also leaves out what is reversed by then, which the bare SQL skips.
BARE_AGEING = """with settled as (select s.item_line_id, sum(s.amount) as amount from ledger_settlements s
                 join ledger_lines p on p.id = s.settling_line_id
                 join ledger_entries pe on pe.id = p.entry_id and pe.state = 'posted' and pe.entry_date <= %(d)s
                 where s.tenant_id = %(t)s group by s.item_line_id),
     applied as (select s.settling_line_id, sum(s.amount) as amount from ledger_settlements s
                 join ledger_lines i on i.id = s.item_line_id
                 join ledger_entries ie on ie.id = i.entry_id and ie.state = 'posted' and ie.entry_date <= %(d)s
                 where s.tenant_id = %(t)s group by s.settling_line_id)
select l.party_key, case when %(d)s - coalesce(e.due_date, e.entry_date) <= 0 then 0
                         when %(d)s - coalesce(e.due_date, e.entry_date) <= 30 then 1
                         when %(d)s - coalesce(e.due_date, e.entry_date) <= 60 then 2
                         when %(d)s - coalesce(e.due_date, e.entry_date) <= 90 then 3 else 4 end,
       sum(l.debit - coalesce(s.amount, 0))
  from ledger_lines l join ledger_entries e on e.id = l.entry_id and e.state = 'posted' and e.entry_date <= %(d)s
  left join settled s on s.item_line_id = l.id
  where l.tenant_id = %(t)s and l.account_id = %(a)s and l.debit > 0 and l.debit > coalesce(s.amount, 0)
  group by 1, 2
union all
select l.party_key, -1, sum(l.credit - coalesce(s.amount, 0))
  from ledger_lines l join ledger_entries e on e.id = l.entry_id and e.state = 'posted' and e.entry_date <= %(d)s
  left join applied s on s.settling_line_id = l.id
  where l.tenant_id = %(t)s and l.account_id = %(a)s and l.credit > 0 and l.credit > coalesce(s.amount, 0)
  group by 1"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--post", type=int, default=20_000, help="entries posted in batches, then bare in bulk")
    parser.add_argument("--single", type=int, default=1_000, help="entries posted one a transaction, then bare")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the big tenant in all")
    parser.add_argument("--others", type=int, default=OTHERS)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import psycopg
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from bench.home import redis_url, superuser_url
    from portal import create_app
    from portal.dbsetup import bootstrap
    from portal.extensions import db
    from portal.ledger import open_items, reports, services
    from portal.ledger.models import Account
    from tenants.context import Scope, bound
    from tenants.models import Tenant, User
    from tenants.policy import Role
    from tests.factories import make_person, make_tenant

    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    su, _pgdata = superuser_url(tmp)
    urls = bootstrap(su, DB_NAME, recreate=True)
    owner_dsn = make_conninfo(su, dbname=DB_NAME)  # bulk loads and bare aggregates: row-level security aside
    app_dsn = urls.app.replace("postgresql+psycopg://", "postgresql://")
    result: dict[str, Any] = {}
    try:
        app = create_app({"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": redis_url(tmp),
                          "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
                          "FIELD_KEY": Fernet.generate_key().decode(), "RATELIMIT_ENABLED": False})
        with app.app_context():
            upgrade()
            person = make_person(Role.PROVIDER_ADMIN, mfa=False)
            tenants = [make_tenant() for _ in range(args.others + 1)]
            ids = [t.id for t in tenants]
            charts: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
            for tenant_id in ids:
                with bound(Scope(user_id=person.id, tenant_ids=frozenset({tenant_id}), role=person.role)):
                    services.start_books(db.session.get(User, person.id), db.session.get(Tenant, tenant_id), "vn_tt133")
                    charts[tenant_id] = {a.code: a.id for a in db.session.scalars(db.select(Account))}
        big = ids[0]

        def analyze() -> None:  # each posting phase starts from fresh statistics, as autovacuum keeps them
            with psycopg.connect(owner_dsn, autocommit=True) as conn:
                conn.execute("analyze ledger_entries, ledger_lines")

        one = min(args.post, args.single)
        single_lines = sum(len(SALE if i % 2 == 0 else PAID) for i in range(one))
        analyze()
        single_s = post_through_service(app, big, person, one)
        analyze()
        single_bare_s = post_bare(app_dsn, big, charts[big], one, first_number=10**8)
        batch_lines = sum(len(SALE if i % 2 == 0 else PAID) for i in range(args.post))
        analyze()
        batch_s = post_batches(app, big, person, args.post)
        analyze()
        batch_bare_s = bulk_bare(app_dsn, big, charts[big], args.post, first_number=2 * 10**8)
        result.update({"single_entries": one, "single_lines_per_s": round(single_lines / single_s),
                       "single_bare_lines_per_s": round(single_lines / single_bare_s),
                       "single_ratio": round(single_bare_s / single_s, 3),
                       "entries_posted": args.post, "lines_posted": batch_lines,
                       "service_lines_per_s": round(batch_lines / batch_s),
                       "bare_lines_per_s": round(batch_lines / batch_bare_s),
                       "posting_ratio": round(batch_bare_s / batch_s, 3)})
        started = time.perf_counter()
        done = 2 * (single_lines + batch_lines)
        bulk_load(owner_dsn, big, charts[big], args.lines - done, first_number=3 * 10**8)
        for n, tenant_id in enumerate(ids[1:], start=1):
            bulk_load(owner_dsn, tenant_id, charts[tenant_id], OTHER_LINES, first_number=4 * 10**8 + n * 10**5)
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            conn.execute("analyze")
            total = conn.execute("select count(*) from ledger_lines where tenant_id = %s", (big,)).fetchone()[0]
            everyone = conn.execute("select count(*) from ledger_lines").fetchone()[0]
        result.update({"load_s": round(time.perf_counter() - started, 1), "big_tenant_lines": total,
                       "all_lines": everyone})
        since, until = date(2026, 1, 1), date(2026, 12, 31)
        with app.app_context(), bound(Scope(user_id=person.id, tenant_ids=frozenset({big}), role=person.role)):
            pages = {"trial_balance": lambda: reports.trial_balance(until, since=since),
                     "profit_and_loss": lambda: reports.profit_and_loss(until, since=since),
                     "balance_sheet": lambda: reports.balance_sheet(until),
                     "ageing": lambda: open_items.ageing(db.session.get(Tenant, big), "receivable", until)}
            for name, run in pages.items():
                run()  # warm
                result[f"{name}_ms"] = _median_ms(run, args.repeat)
            check = {r.code: (r.debit, r.credit) for r in reports.trial_balance(until, since=since)}
            owed = open_items.ageing(db.session.get(Tenant, big), "receivable", until)[1].total
        with psycopg.connect(owner_dsn, options="-c jit=off") as conn:  # as the app's connections (config.py)
            bare = {"trial_balance": lambda: conn.execute(BARE_TB, (since, until, big)).fetchall(),
                    "profit_and_loss": lambda: conn.execute(BARE_TB, (since, until, big)).fetchall(),
                    "balance_sheet": lambda: conn.execute(BARE_TYPES, (until, big)).fetchall(),
                    "ageing": lambda: conn.execute(BARE_AGEING, {"t": big, "d": until,
                                                                 "a": charts[big]["131"]}).fetchall()}
            for name, run in bare.items():
                run()
                result[f"{name}_bare_ms"] = _median_ms(run, args.repeat)
            rows = {code: (int(d), int(c)) for code, d, c in conn.execute(BARE_TB, (since, until, big)).fetchall()}
            bare_owed = sum(int(v) * (-1 if b == -1 else 1) for _p, b, v in
                            conn.execute(BARE_AGEING, {"t": big, "d": until, "a": charts[big]["131"]}).fetchall())
        result["same_figures"] = rows == check and owed == bare_owed
    finally:
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DB_NAME)))
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"posting one entry a transaction ({result['single_entries']} entries, as the pages do): service "
          f"{result['single_lines_per_s']} lines/s, bare {result['single_bare_lines_per_s']} lines/s -> "
          f"{result['single_ratio']:.0%} of bare")
    print(f"posting in batches of {BATCH} ({result['entries_posted']} entries, {result['lines_posted']} lines; "
          f"post_batch): service {result['service_lines_per_s']} lines/s, bare bulk insert "
          f"{result['bare_lines_per_s']} lines/s -> {result['posting_ratio']:.0%} of bare (goal >= "
          f"{GOAL_POSTING:.0%}: {'meets' if result['posting_ratio'] >= GOAL_POSTING else 'MISSES'} the goal)")
    print(f"loaded: {result['big_tenant_lines']:,} lines for the big tenant, {result['all_lines']:,} in all "
          f"({result['load_s']} s)")
    for name in ("trial_balance", "profit_and_loss", "balance_sheet", "ageing"):
        page, bare_ms = result[f"{name}_ms"], result[f"{name}_bare_ms"]
        ratio = page / bare_ms if bare_ms else float("inf")
        result[f"{name}_ratio"] = round(ratio, 2)
        print(f"{name:<16} {page:>8} ms  bare aggregate {bare_ms:>8} ms  -> {ratio:.2f}x "
              f"(goal <= {GOAL_REPORT}x: {'meets' if ratio <= GOAL_REPORT else 'MISSES'} the goal)")
    print(f"the report's figures equal the bare aggregate's: {result['same_figures']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Where the time of one signed-in tenant home request goes, in-process (no HTTP server).

Same set-up as bench/home.py (database ``portal_bench``, a tenant, a client member),
then for /healthz and /t/<slug>/: the mean time per request through the whole
Flask stack (test client), the SQL statements one request sends, and a cProfile
of N requests sorted by own time and by cumulative time.

    .venv/bin/python bench/profile_home.py            # 300 requests per endpoint
    .venv/bin/python bench/profile_home.py -n 1000 --top 40
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.home import (  # noqa: E402
    DB_NAME,
    _fernet_key,
    drop_database,
    provision,
    redis_url,
    stop_embedded_postgres,
    superuser_url,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="requests per endpoint (default 300)")
    parser.add_argument("--top", type=int, default=25, help="rows of each profile table")
    args = parser.parse_args()

    import secrets

    from sqlalchemy import event

    from portal import create_app
    from portal.dbsetup import bootstrap
    from portal.extensions import db
    from tenants.models import User
    from tenants.policy import Role
    from tests.factories import Person, login

    tmp = Path(tempfile.mkdtemp(prefix="portal-profile-"))
    su, pgdata = superuser_url(tmp)
    try:
        urls = bootstrap(su, DB_NAME, recreate=True)
        settings = {"DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner,
                    "REDIS_URL": redis_url(tmp), "INSTANCE_PATH": str(tmp / "instance"),
                    "SECRET_KEY": secrets.token_urlsafe(32), "FIELD_KEY": _fernet_key()}
        facts = provision(settings)
        app = create_app(settings)
        with app.app_context():
            uid = db.session.query(User.id).filter_by(email=facts["email"]).scalar()
            db.session.remove()
        client = app.test_client()
        login(client, Person(uid, facts["email"], Role.CLIENT_MEMBER, password=facts["password"]))
        home = f"/t/{facts['slug']}/"
        assert client.get(home).status_code == 200

        # Every SQL statement of a request, with its round-trip time.
        statements: list[list] = []
        with app.app_context():
            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            statements.append([" ".join(statement.split())[:150], time.perf_counter()])

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            statements[-1][1] = time.perf_counter() - statements[-1][1]

        anonymous = app.test_client()
        for label, c, path in (("/healthz (no cookie)", anonymous, "/healthz"),
                               (f"{home} (signed in)", client, home)):
            for _ in range(50):  # warm caches (templates, compiled SQL, pool)
                c.get(path)
            start = time.perf_counter()
            for _ in range(args.n):
                c.get(path)
            mean_ms = (time.perf_counter() - start) / args.n * 1000

            statements.clear()
            for _ in range(args.n):
                c.get(path)
            per_request = len(statements) // args.n
            sql_ms = sum(t for _, t in statements) / args.n * 1000
            first = statements[:per_request]
            by_text: dict[str, list[float]] = {}
            for text, t in statements:
                by_text.setdefault(text, []).append(t)

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.n):
                c.get(path)
            profiler.disable()

            print(f"\n=== GET {label}: {mean_ms:.2f} ms per request in-process (mean of {args.n}); "
                  f"{per_request} SQL statements taking {sql_ms:.2f} ms of it")
            for i, (text, _) in enumerate(first, 1):
                times = by_text[text]
                print(f"  sql {i:>2} ({sum(times) / len(times) * 1000:.3f} ms avg): {text}")
            print("\n--- own time by package (where the CPU goes) ---")
            stats = pstats.Stats(profiler)
            groups: dict[str, float] = {}
            for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
                groups[_package(filename, func)] = groups.get(_package(filename, func), 0) + tottime
            total = sum(groups.values()) or 1
            for name, t in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
                print(f"  {name:<34} {t / args.n * 1000:7.3f} ms/request  {t / total:6.1%}")
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
                print(f"\n--- by {order} ---")
                print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return 0
    finally:
        with contextlib.suppress(Exception):
            drop_database(su)
        if pgdata is not None:
            stop_embedded_postgres(pgdata)
        shutil.rmtree(tmp, ignore_errors=True)


ROOT = Path(__file__).resolve().parent.parent


def _package(filename: str, func: str) -> str:
    """A readable owner for a profiled function: a library, the project, or a C builtin."""
    if filename == "~":
        if "psycopg" in func or "pq" in func:
            return "psycopg (C)"
        return "C builtins " + ("(" + func.split("'")[1] + ")" if "'" in func else "")
    if filename.endswith(".html"):
        return "templates (Jinja, project)"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    with contextlib.suppress(ValueError):
        rel = Path(filename).resolve().relative_to(ROOT)
        return f"project: {rel.parts[0]}"
    return "stdlib: " + Path(filename).stem


if __name__ == "__main__":
    sys.exit(main())

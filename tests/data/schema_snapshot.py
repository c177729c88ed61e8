"""The schema the released portal reads, captured for tests/test_upgrade_compat.py (docs/upgrades.md).

    .venv/bin/python -m tests.data.schema_snapshot            # at the head of the migrations
    .venv/bin/python -m tests.data.schema_snapshot 0027       # at a given revision

Run it when a release ships, on the released commit: it migrates a scratch database (on the machine's
PostgreSQL, or an embedded one) to the revision and writes ``tests/data/schema_prev.json``: for every
table, its columns with their types, and whether the application's role may read it. That is what the
released code can select; the next release's migrations must keep every one of those reads working.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

SNAPSHOT = Path(__file__).with_name("schema_prev.json")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

_COLUMNS = text("""
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
           has_table_privilege(:app, c.oid, 'SELECT')
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm') and a.attnum > 0 and not a.attisdropped
      and c.relname <> 'alembic_version'
    order by c.relname, a.attnum
""")


def schema(owner_url: str, app_role: str = "portal_app") -> dict[str, dict[str, Any]]:
    """{table: {"app_reads": bool, "columns": {column: type}, "required": [NOT NULL columns without default]}}."""
    engine = create_engine(owner_url)
    out: dict[str, dict[str, Any]] = {}
    try:
        with engine.connect() as conn:
            for table, column, type_, not_null, has_default, app_reads in conn.execute(_COLUMNS, {"app": app_role}):
                entry = out.setdefault(table, {"app_reads": bool(app_reads), "columns": {}, "required": []})
                entry["columns"][column] = type_
                if not_null and not has_default:
                    entry["required"].append(column)
    finally:
        for entry in out.values():
            entry["required"].sort()
        engine.dispose()
    return out


@contextmanager
def scratch_database(name: str, migrations: Path = MIGRATIONS) -> Iterator[tuple[Any, Any]]:
    """A new database with the portal's two roles, and an app on it whose migrations are ``migrations``;
    dropped afterwards. Yields (app, urls)."""
    from portal import create_app
    from portal.dbsetup import bootstrap
    from tests.services import postgres_superuser_url, redis_url

    superuser = postgres_superuser_url()
    urls = bootstrap(superuser, name, recreate=True)
    instance = tempfile.mkdtemp(prefix="portal-schema-")
    app = create_app({"TESTING": True, "DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner,
                      "REDIS_URL": redis_url(int(os.environ.get("PORTAL_TEST_REDIS_DB", "15"))),
                      "INSTANCE_PATH": instance, "SECRET_KEY": "x" * 32})
    app.extensions["migrate"].directory = str(migrations)
    try:
        yield app, urls
    finally:
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def capture(revision: str = "head") -> dict[str, Any]:
    from flask_migrate import upgrade

    with scratch_database(f"portal_schema_snapshot_{os.getpid()}") as (app, urls), app.app_context():
        upgrade(revision=revision)
        with create_engine(urls.owner).connect() as conn:
            current = conn.execute(text("select version_num from alembic_version")).scalar_one()
        return {"revision": current, "tables": schema(urls.owner)}


def main(argv: list[str]) -> None:
    snapshot = capture(argv[0] if argv else "head")
    SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT.name}: revision {snapshot['revision']}, {len(snapshot['tables'])} tables")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Zero-downtime upgrades (docs/upgrades.md): the released code keeps working on the new schema.

``tests/data/schema_prev.json`` is the schema at the released revision: every table, its columns and
types, whether the application's role reads it, and its NOT NULL columns without a default (captured by
``tests/data/schema_snapshot.py`` when the release shipped). A fresh database is migrated to that revision,
checked against the snapshot, and the released code's reads (a SELECT of every column it knows, of every
table it may read, as the application's role) run on it; then it is migrated to head and the same reads
run again. What the released code writes must keep working too: no column it leaves out of its INSERTs
may have become NOT NULL without a default, and no column it knows may have changed type (widening a
varchar or an integer excepted). The last test adds a migration that breaks each rule and checks that each
is noticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.data.schema_snapshot import MIGRATIONS, SNAPSHOT, schema, scratch_database

PREVIOUS: dict[str, Any] = json.loads(SNAPSHOT.read_text())


def read_problems(app_url: str, snapshot: dict[str, Any]) -> list[str]:
    """The released code's reads, as the application's role: every column it knows of every table it reads."""
    problems = []
    engine = create_engine(app_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for table, entry in sorted(snapshot["tables"].items()):
                if not entry["app_reads"]:
                    continue
                columns = ", ".join(f'"{c}"' for c in entry["columns"])
                try:
                    with conn.begin():
                        conn.execute(text(f'select {columns} from "{table}" limit 0'))  # noqa: S608 - names from the snapshot
                except DBAPIError as exc:
                    problems.append(f"reading {table}: {str(exc.orig).splitlines()[0]}")
    finally:
        engine.dispose()
    return problems


_VARCHAR = re.compile(r"character varying\((\d+)\)")
_WIDER_INTEGERS = {("smallint", "integer"), ("smallint", "bigint"), ("integer", "bigint")}


def _widens(old: str, new: str) -> bool:
    before, after = _VARCHAR.fullmatch(old), _VARCHAR.fullmatch(new)
    if before and (new in ("text", "character varying") or (after and int(after[1]) >= int(before[1]))):
        return True
    return (old, new) in _WIDER_INTEGERS


def write_problems(previous: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Columns the released code may leave out of its INSERTs that became required; types that changed."""
    problems = []
    for table, entry in sorted(previous["tables"].items()):
        current = now.get(table)
        if current is None:
            continue  # the reads report it
        for column in sorted(set(current["required"]) - set(entry["required"])):
            was = "a new column" if column not in entry["columns"] else "an existing column"
            problems.append(f"writing {table}: {column} is {was} NOT NULL without a default")
        for column, old in entry["columns"].items():
            new = current["columns"].get(column)
            if new is not None and new != old and not _widens(old, new):
                problems.append(f"writing {table}: {column} changed type from {old} to {new}")
    return problems


@dataclass
class Upgrade:
    app: Any
    urls: Any
    at_release: dict[str, Any]
    reads_at_release: list[str]
    reads_at_head: list[str]
    writes_at_head: list[str]


@pytest.fixture(scope="module")
def upgraded():
    """A database at the released revision, checked and read; then at head, read again."""
    with scratch_database(f"portal_test_upgrade_{os.getpid()}") as (app, urls), app.app_context():
        upgrade(revision=PREVIOUS["revision"])
        at_release = schema(urls.owner)
        reads_at_release = read_problems(urls.app, PREVIOUS)
        upgrade()
        head = {"tables": schema(urls.owner)}
        yield Upgrade(app, urls, at_release, reads_at_release, read_problems(urls.app, PREVIOUS),
                      write_problems(PREVIOUS, head["tables"]))


def test_the_snapshot_is_the_schema_of_the_released_revision(upgraded):
    """A released migration edited afterwards (or a stale snapshot) shows here."""
    assert upgraded.at_release == PREVIOUS["tables"]
    assert upgraded.reads_at_release == []
    # Representative: every table the released code may read, tenant data and identity alike.
    reads = {t for t, e in PREVIOUS["tables"].items() if e["app_reads"]}
    assert {"tenants", "users", "memberships", "documents", "tasks", "audit_events", "statements"} <= reads


def test_the_released_code_reads_and_writes_on_the_schema_at_head(upgraded):
    assert upgraded.reads_at_head == []
    assert upgraded.writes_at_head == []


BREAKING = '''"""A release that breaks the rule of docs/upgrades.md on purpose (tests only)."""
from alembic import op
import sqlalchemy as sa

revision = "9999_breaks_the_rule"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("users", "notify_mode", new_column_name="notification_mode")
    op.rename_table("api_tokens", "access_tokens")
    op.add_column("tenants", sa.Column("region", sa.Text(), nullable=False))
    op.alter_column("tenants", "locale", type_=sa.String(5))
    op.alter_column("tenants", "name", type_=sa.String(300))  # widening: compatible


def downgrade():
    raise NotImplementedError
'''


def test_a_migration_breaking_the_rule_is_caught(upgraded, tmp_path):
    from alembic.script import ScriptDirectory

    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(copy)).get_current_head()
    (copy / "versions" / "9999_breaks_the_rule.py").write_text(BREAKING.format(down=head))
    with upgraded.app.app_context():
        upgrade(directory=str(copy))
    now = schema(upgraded.urls.owner)
    reads = read_problems(upgraded.urls.app, PREVIOUS)
    writes = write_problems(PREVIOUS, now)
    assert any(p.startswith("reading users:") and "notify_mode" in p for p in reads), reads
    assert any(p.startswith("reading api_tokens:") for p in reads), reads
    assert "writing tenants: region is a new column NOT NULL without a default" in writes
    assert "writing tenants: locale changed type from character varying(8) to character varying(5)" in writes
    assert not any("tenants: name" in p for p in writes)
    assert len(reads) == 2 and len(writes) == 2, (reads, writes)


def test_the_snapshot_names_a_revision_the_migrations_still_have():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(MIGRATIONS)))
    revision = script.get_revision(PREVIOUS["revision"])
    assert revision is not None
    ancestors = {r.revision for r in script.walk_revisions(base="base", head=script.get_current_head())}
    assert PREVIOUS["revision"] in ancestors

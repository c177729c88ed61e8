"""Citus readiness, read from the live schema: what ``docs/scaling.md`` says about distributing the tenant
tables by ``tenant_id`` must be exactly what the migrated database holds.

Citus distributes a table by one column and enforces a primary key or unique index only when it includes
that column; a foreign key between two distributed tables must include it on both sides (and may not be
ON DELETE SET NULL then); a distributed table may reference a reference table, never the other way round.
So, after the migrations:

- every primary key and unique index of a tenant table (one with a ``tenant_id`` column) that does not
  include ``tenant_id`` is listed in the doc, with its columns, and nothing else is;
- every foreign key between two tenant tables that does not include ``tenant_id`` is listed, with its
  ON DELETE action, and nothing else is;
- every table without ``tenant_id`` is listed with how Citus would hold it (``reference`` or ``local``);
  a tenant table's foreign key to one of them needs it to be a reference table, and none of them may
  reference a tenant table.

A new table, key or foreign key therefore fails here until the doc says what becomes of it. The failure
prints the rows to add (their reasons are for a person to write).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.extensions import db

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"
ON_DELETE = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}

_RELATIONS = """
    select c.oid, c.relname,
           exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id'
                   and not a.attisdropped) as tenant
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind in ('r', 'p')
"""
_COLUMNS = """(select string_agg(a.attname, ', ' order by k.ord) from unnest({keys}) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = {rel} and a.attnum = k.attnum)"""


def _rows(sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def live_keys() -> set[tuple[str, str, str]]:
    """(table, index, its columns) of every primary key and unique index of a tenant table without tenant_id."""
    return set(_rows(f"""
        with rel as ({_RELATIONS})
        select rel.relname, i.relname, {_COLUMNS.format(keys="ix.indkey", rel="rel.oid")}
        from rel join pg_index ix on ix.indrelid = rel.oid join pg_class i on i.oid = ix.indexrelid
        where rel.tenant and ix.indisunique
          and not exists (select 1 from pg_attribute a where a.attrelid = rel.oid and a.attname = 'tenant_id'
                          and a.attnum = any (ix.indkey))"""))  # noqa: S608 - constant fragments of ours


def live_foreign_keys() -> list[tuple[str, str, str, bool, str, str, bool, str]]:
    """(name, table, columns, tenant?, referenced table, its columns, tenant?, ON DELETE) of every foreign key."""
    return _rows(f"""
        with rel as ({_RELATIONS})
        select con.conname, s.relname, {_COLUMNS.format(keys="con.conkey", rel="con.conrelid")}, s.tenant,
               t.relname, {_COLUMNS.format(keys="con.confkey", rel="con.confrelid")}, t.tenant, con.confdeltype
        from pg_constraint con join rel s on s.oid = con.conrelid join rel t on t.oid = con.confrelid
        where con.contype = 'f'""")  # noqa: S608 - constant fragments of ours


def live_tenant_foreign_keys() -> set[tuple[str, str]]:
    """(name, ON DELETE) of every foreign key between two tenant tables that does not include tenant_id."""
    return {(name, ON_DELETE[action]) for name, _s, cols, s_tenant, _t, _rc, t_tenant, action in live_foreign_keys()
            if s_tenant and t_tenant and "tenant_id" not in cols.split(", ")}


def live_global_tables() -> set[str]:
    """The tables without a tenant_id column."""
    return {name for _oid, name, tenant in _rows(_RELATIONS) if not tenant}


def _section(name: str) -> list[list[str]]:
    """The table rows (cells, backticks removed) between ``<!-- citus:NAME -->`` and ``<!-- /citus:NAME -->``."""
    found = re.search(rf"<!-- citus:{name} -->(.*?)<!-- /citus:{name} -->", DOC.read_text(), re.DOTALL)
    assert found, f"docs/scaling.md has no section <!-- citus:{name} -->"
    rows = []
    for line in found.group(1).splitlines():
        cells = [c.strip().replace("`", "") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-: ") and cells[0] not in ("table", "foreign key"):
            rows.append(cells)
    return rows


def _differ(what: str, live: set, doc: set, row) -> str:  # noqa: ANN001 - row: how to print a missing one
    lines = [f"docs/scaling.md and the schema differ on {what}."]
    if live - doc:
        lines += ["In the schema, not in the doc (add these rows, with why and what they become):",
                  *sorted(row(x) for x in live - doc)]
    if doc - live:
        lines += ["In the doc, not in the schema (remove or correct them):", *sorted(map(str, doc - live))]
    return "\n".join(lines)


@pytest.fixture
def schema(app):  # noqa: ANN001, ANN201 - the session's migrated database
    with app.app_context():
        yield
        db.session.remove()


def test_every_tenant_key_without_tenant_id_is_in_the_doc(schema):
    live = live_keys()
    doc = {(cells[0], cells[1], cells[2]) for cells in _section("keys")}
    assert live == doc, _differ("the tenant tables' keys without tenant_id", live, doc,
                                lambda k: f"| `{k[0]}` | `{k[1]}` | `{k[2]}` | TODO | TODO |")
    assert len(live) > 0  # the query reads the schema at all


def test_every_foreign_key_between_tenant_tables_without_tenant_id_is_in_the_doc(schema):
    live = live_tenant_foreign_keys()
    doc = {(cells[0], cells[2]) for cells in _section("fks")}
    details = {name: f"`{s}` ({cols}) → `{t}` ({rcols})" for name, s, cols, _st, t, rcols, _tt, _a in
               live_foreign_keys()}
    assert live == doc, _differ("the foreign keys between tenant tables", live, doc,
                                lambda f: f"| `{f[0]}` | {details[f[0]]} | {f[1]} |")
    assert len(live) > 0


def test_every_table_without_tenant_id_is_in_the_doc_as_a_reference_or_local_table(schema):
    live = live_global_tables()
    kinds = {cells[0]: cells[1].split()[0] for cells in _section("global")}
    assert live == set(kinds), _differ("the tables without tenant_id", live, set(kinds),
                                       lambda t: f"| `{t}` | reference or local: TODO why |")
    assert set(kinds.values()) <= {"reference", "local"}, kinds
    for name, s, _cols, s_tenant, t, _rcols, t_tenant, _a in live_foreign_keys():
        # Citus: a distributed table may reference a reference table (not a local one); nothing else may
        # reference a distributed table.
        if s_tenant and not t_tenant:
            assert kinds[t] == "reference", f"{name}: {s} (a tenant table) references {t}, which the doc keeps local"
        assert t_tenant <= s_tenant, f"{name}: {s} has no tenant_id but references the tenant table {t}"
        if not s_tenant and kinds[s] == "reference":  # copied to every node: what it references must be too
            assert kinds[t] == "reference", f"{name}: the reference table {s} references {t}, kept local"

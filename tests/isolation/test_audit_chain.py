"""The audit chain detects edits and removals; the CLI says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from portal.extensions import db
from tenants import audit
from tenants.context import Scope, bound


def _owner_exec(db_urls, sql: str, **params) -> None:
    engine = create_engine(db_urls.owner)
    with engine.begin() as conn:  # the owner is subject to FORCE'd RLS too: bind the tenant
        if "t" in params:
            conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(params["t"])})
        conn.execute(text(sql), params)
    engine.dispose()


def _write_events(tenant_id, n: int) -> None:
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        for i in range(n):
            audit.record("test.event", audit.SYSTEM, tenant_id=tenant_id, data={"i": i})
        db.session.commit()


def test_chain_links_each_row_to_the_previous(ctx, world):
    _write_events(world.a.id, 3)
    with bound(Scope(tenant_ids=frozenset({world.a.id}))):
        rows = db.session.scalars(db.select(audit.AuditEvent).order_by(audit.AuditEvent.seq)).all()
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert all(r.prev_hash == p.hash for p, r in zip(rows, rows[1:], strict=False))
        assert audit.verify_rows(world.a.slug, rows) == []
        db.session.rollback()


def test_edited_row_is_found(app, ctx, world, db_urls):
    _write_events(world.b.id, 3)
    _owner_exec(db_urls, "update audit_events set data = '{\"i\": 99}' where tenant_id = :t and seq = 2",
                t=world.b.id)
    problems = [p for p in audit.verify_all() if p.chain == world.b.slug]
    assert [(p.seq, "changed" in p.what) for p in problems] == [(2, True)]
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"TAMPERED {world.b.slug} #2" in result.output


def test_removed_row_is_found(ctx, world, db_urls):
    _write_events(world.a.id, 4)
    _owner_exec(db_urls, "delete from audit_events where tenant_id = :t and seq = 3", t=world.a.id)
    problems = [p for p in audit.verify_all() if p.chain == world.a.slug]
    assert any("missing" in p.what for p in problems)
    assert any("does not link" in p.what for p in problems)


def _write_events_by(tenant_id, person, n: int) -> None:
    """``n`` events done by ``person`` (a client user) in the tenant's log."""
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        for i in range(n):
            audit.record("document.viewed", audit.Actor(person.id, person.email, "client"), tenant_id=tenant_id,
                         object_type="document", object_id=f"doc-{i}", data={"i": i})
        db.session.commit()


def _chain_problems(slug: str) -> list[tuple[int, str]]:
    return [(p.seq, p.what) for p in audit.verify_all() if p.chain == slug]


CHANGED = "content was changed after it was written"


@pytest.mark.parametrize(("column", "value"), [("actor_id", "other"), ("actor_label", "someone.else@example.test")])
def test_an_edited_actor_is_found(ctx, world, db_urls, column, value):
    """Whoever can write the table as its owner blames someone else for what a person did."""
    _write_events_by(world.a.id, world["a_client_member"], 3)
    value = world["b_client_admin"].id if value == "other" else value
    _owner_exec(db_urls, f"update audit_events set {column} = :v where tenant_id = :t and seq = 2",  # noqa: S608
                t=world.a.id, v=value)
    assert _chain_problems(world.a.slug) == [(2, CHANGED)]


def _copy(row: audit._ChainRow, **changes) -> audit._ChainRow:
    """A detached copy of ``row`` with ``changes``: what an attacker computes hashes over."""
    model = type(row)
    values = {c.key: getattr(row, c.key) for c in model.__table__.columns}
    return model(**{**values, **changes})


def test_an_edit_with_the_rows_hash_and_the_next_link_recomputed_is_found(ctx, world, db_urls):
    """The minimal rewrite: change row 2, recompute its hash and row 3's link to it, touch nothing else.

    Row 3's own hash covers the link (prev_hash), so row 3 no longer verifies.
    """
    _write_events_by(world.b.id, world["b_client_member"], 4)
    with bound(Scope(tenant_ids=frozenset({world.b.id}))):
        second = db.session.scalars(db.select(audit.AuditEvent).where(audit.AuditEvent.seq == 2)).one()
        forged = _copy(second, data={"i": 99}, object_id="doc-99")
        new_hash, old_hash = forged.compute_hash(), second.hash
        db.session.rollback()
    assert new_hash != old_hash
    _owner_exec(db_urls, "update audit_events set data = '{\"i\": 99}', object_id = 'doc-99', hash = :h "
                         "where tenant_id = :t and seq = 2", t=world.b.id, h=new_hash)
    _owner_exec(db_urls, "update audit_events set prev_hash = :h where tenant_id = :t and seq = 3",
                t=world.b.id, h=new_hash)
    assert _chain_problems(world.b.slug) == [(3, CHANGED)]


# Columns of a chain row that its hash need not cover: the row's own id (nothing refers to it) and the hash.
NOT_HASHED = {"id", "hash"}


def _other(value):  # noqa: ANN001, ANN202
    """A value of the same kind as ``value`` that differs from it."""
    if value is None:
        return "x"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes(b ^ 0xFF for b in value) or b"x"
    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, dict):
        return {**value, "edited": True}
    return f"{value}x"


@pytest.mark.parametrize("model", [audit.AuditEvent, audit.PlatformAuditEvent])
def test_the_hash_covers_every_field_of_the_row_including_the_link(model):
    row = model(seq=7, occurred_at=datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC), actor_id=uuid.uuid4(),
                actor_label="lan@example.test", actor_side="client", action="document.viewed",
                object_type="document", object_id="d1", ip="203.0.113.9", data={"name": "March.pdf"},
                sealed=b"\x01sealed", internal=False, prev_hash=bytes(range(32)))
    if model is audit.AuditEvent:
        row.tenant_id = uuid.uuid4()
    row.hash = row.compute_hash()
    assert _copy(row).compute_hash() == row.hash  # the copy is faithful
    # Two rows identical but for the link to the row before them hash differently.
    assert _copy(row, prev_hash=bytes(32)).compute_hash() != row.hash
    columns = {c.key for c in model.__table__.columns} - NOT_HASHED
    unhashed = [c for c in sorted(columns) if _copy(row, **{c: _other(getattr(row, c))}).compute_hash() == row.hash]
    assert unhashed == []

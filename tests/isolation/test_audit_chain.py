"""The audit chain detects edits and removals; the CLI says so."""

from __future__ import annotations

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

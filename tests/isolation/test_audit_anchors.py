"""Signed checkpoints anchor the audit chains outside the database.

The attacker here is whoever can write the database as its owner: they can edit rows and
recompute every hash after them, or cut the newest rows. Only the checkpoints (signed with
a key the database never holds, stored in object storage) can tell.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import create_engine, select, text

from portal.extensions import db
from portal.trust import anchors
from tenants import audit, signing
from tenants.context import Scope, bound
from tenants.keyring import app_keyring
from tests.factories import login, make_tenant


def _owner(db_urls):  # noqa: ANN202
    return create_engine(db_urls.owner)


def _write(tenant_id, n: int, tag: str) -> None:
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        for i in range(n):
            audit.record("test.event", audit.SYSTEM, tenant_id=tenant_id, data={"tag": tag, "i": i})
        db.session.commit()


def _rows(engine, tenant_id) -> list[dict]:
    with engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant_id)})
        return [dict(r._mapping) for r in conn.execute(text(
            "select * from audit_events where tenant_id = :t order by seq"), {"t": str(tenant_id)})]


def _recompute_from(engine, tenant_id, seq: int, change) -> None:
    """The owner's rewrite: change row ``seq`` and recompute every hash after it, so each row checks."""
    rows = _rows(engine, tenant_id)
    prev = rows[seq - 2]["hash"] if seq > 1 else audit.GENESIS
    with engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant_id)})
        for row in rows[seq - 1:]:
            model = audit.AuditEvent(**{k: v for k, v in row.items()})
            if row["seq"] == seq:
                change(model)
            model.prev_hash = prev
            model.hash = model.compute_hash()
            conn.execute(text("update audit_events set actor_id = :actor, actor_label = :label, "
                              "data = cast(:data as jsonb), sealed = :sealed, prev_hash = :prev, hash = :hash "
                              "where id = :id"),
                         {"actor": model.actor_id, "label": model.actor_label, "data": json.dumps(model.data),
                          "sealed": model.sealed, "prev": prev, "hash": model.hash, "id": row["id"]})
            prev = model.hash


def _problems(tenant) -> list[audit.Problem]:
    problems = audit.verify_all()
    anchors.check_against_checkpoints(problems)
    return [p for p in problems if p.chain == tenant.slug]


def test_a_rewritten_history_that_recomputes_every_hash_is_caught_by_the_checkpoint(ctx, db_urls):
    tenant = make_tenant()
    _write(tenant.id, 6, "before")
    assert anchors.write_checkpoints() >= 1
    engine = _owner(db_urls)
    head = len(_rows(engine, tenant.id))  # tenant.created, then the six

    def forge(row: audit.AuditEvent) -> None:
        row.actor_label, row.sealed, row.data = "someone-else@example.test", None, {"forged": True}

    _recompute_from(engine, tenant.id, 3, forge)
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        rows = db.session.scalars(select(audit.AuditEvent).order_by(audit.AuditEvent.seq)).all()
        assert audit.verify_rows(tenant.slug, rows) == []  # the chain alone cannot tell any more
        db.session.rollback()
    problems = _problems(tenant)
    assert [(p.seq, "rewritten" in p.what) for p in problems] == [(head, True)]
    engine.dispose()


def test_an_attacker_who_changes_the_actor_or_the_link_must_recompute_the_tail_and_is_caught(ctx, db_urls):
    tenant = make_tenant()
    _write(tenant.id, 4, "links")
    anchors.write_checkpoints()
    engine = _owner(db_urls)
    head = len(_rows(engine, tenant.id))
    _recompute_from(engine, tenant.id, 2, lambda row: setattr(row, "actor_id", uuid.uuid4()))
    assert [p.seq for p in _problems(tenant)] == [head]
    engine.dispose()


def test_rows_cut_from_the_end_up_to_the_last_checkpoint_are_caught(ctx, db_urls):
    tenant = make_tenant()
    _write(tenant.id, 5, "cut")
    anchors.write_checkpoints()
    head = 6  # tenant.created, then the five
    with _owner(db_urls).begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant.id)})
        conn.execute(text("delete from audit_events where tenant_id = :t and seq >= 4"), {"t": str(tenant.id)})
    problems = _problems(tenant)
    assert problems and all("cut" in p.what for p in problems)
    assert [p.seq for p in problems] == [head]
    # The whole chain deleted (and the tenant with it, were that possible) is caught the same way.
    with _owner(db_urls).begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant.id)})
        conn.execute(text("delete from audit_events where tenant_id = :t"), {"t": str(tenant.id)})
    assert [p.seq for p in _problems(tenant)] == [head]


def test_rows_after_the_last_checkpoint_are_the_stated_window(ctx, db_urls):
    tenant = make_tenant()
    _write(tenant.id, 3, "window")
    anchors.write_checkpoints()
    _write(tenant.id, 2, "window")  # seq 5 and 6: not checkpointed yet
    with _owner(db_urls).begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant.id)})
        conn.execute(text("delete from audit_events where tenant_id = :t and seq >= 5"), {"t": str(tenant.id)})
    assert _problems(tenant) == []  # docs/security.md states this window (at most one checkpoint interval)


def test_a_forged_or_altered_checkpoint_record_is_reported(app, ctx):
    from portal.documents.services import vault_storage

    tenant = make_tenant()
    _write(tenant.id, 2, "forge")
    anchors.write_checkpoints()
    # Someone with write access to the bucket but not the signing key adds a record of their own.
    forged = signing.sign(app_keyring(), {"type": "audit-checkpoint", "chain": str(tenant.id), "seq": 2,
                                          "head": "00" * 32, "at": "2026-01-01T00:00:00+00:00"})
    forged["signature"]["value"] = forged["signature"]["value"][:-8] + "AAAAAAA="
    vault_storage().put_record(anchors.RECORDS, "9999/forged.json", json.dumps({"checkpoints": [forged]}).encode())
    problems: list[audit.Problem] = []
    anchors.check_against_checkpoints(problems)
    assert any(p.chain == "checkpoints" and "forged.json" in p.what and "altered or forged" in p.what
               for p in problems)
    assert not [p for p in problems if p.chain == tenant.slug]  # the forged claim is not believed


def test_checkpoints_are_written_on_schedule_and_each_verify_and_only_for_chains_that_moved(app, ctx, run_jobs):
    from workers import schedule
    from workers.models import OutboxJob

    tenant = make_tenant()
    _write(tenant.id, 2, "schedule")
    start = db.session.scalar(select(db.func.max(OutboxJob.id))) or 0
    import secrets
    from datetime import UTC, datetime

    schedule.tick(datetime(2200 + secrets.randbelow(700), 5, 5, 10, 3, tzinfo=UTC))
    assert db.session.scalars(select(OutboxJob.name).where(OutboxJob.id > start,
                                                           OutboxJob.name == "audit.checkpoint")).all()
    db.session.commit()
    run_jobs()
    [job] = db.session.scalars(select(OutboxJob).where(OutboxJob.id > start, OutboxJob.name == "audit.checkpoint"))
    assert job.finished_at is not None and job.last_error is None, job.last_error
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        [cp] = db.session.scalars(select(audit.AuditCheckpoint)).all()
        assert cp.seq == 3 and cp.envelope["statement"]["chain"] == str(tenant.id)
        db.session.rollback()
    anchors.write_checkpoints()
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        assert len(db.session.scalars(select(audit.AuditCheckpoint)).all()) == 1  # this one did not move
        db.session.rollback()
    _write(tenant.id, 1, "schedule")
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        seqs = sorted(db.session.scalars(select(audit.AuditCheckpoint.seq)).all())
        db.session.rollback()
    assert seqs == [3, 4], result.output  # verify checkpointed the moved head (other chains' state aside)


def test_the_client_admin_sees_when_the_log_was_anchored_and_can_check_it_with_the_published_key(app, world):
    with app.app_context():
        from tenants.models import Tenant

        tenant = db.session.get(Tenant, world.a.id)
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            audit.record("test.event", audit.SYSTEM, tenant_id=tenant.id, data={"name": "anchored"})
            db.session.commit()
        anchors.write_checkpoints()
    client = app.test_client()
    login(client, world["a_client_admin"])
    page = client.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    assert "checkpointed on" in page and "portal-signing-v1" in page
    envelope = client.get(f"/t/{world.a.slug}/access-log/checkpoint.json").get_json()
    published = app.test_client().get("/keys.json").get_json()["keys"]  # anyone can fetch the keys
    keys = [signing.PublicKey(k["key_id"], k["pem"], k["fingerprint_sha256"]) for k in published]
    statement = signing.verify(envelope, keys)
    assert statement["chain"] == str(world.a.id) and statement["type"] == "audit-checkpoint"
    # A client of another tenant cannot fetch A's checkpoint (the matrix covers the rest).
    other = app.test_client()
    login(other, world["b_client_admin"])
    assert other.get(f"/t/{world.a.slug}/access-log/checkpoint.json").status_code == 404

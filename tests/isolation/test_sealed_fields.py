"""A tenant's free text is sealed with the tenant's own key: ciphertext at rest, bound to its column and tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import StatementError

from portal.extensions import db
from portal.work import services
from portal.work.models import Task
from tenants.context import Scope, bound
from tenants.fields import MAGIC, SealedColumnQuery, seal_for, unseal_for
from tenants.isolation import TenantContextMissing
from tenants.keyring import KeyUnavailable, app_keyring
from tenants.models import Tenant
from tenants.sealed import IntegrityError
from tests.factories import TenantRef, make_tenant


def _raw(db_urls, tenant_id, sql: str, **params):  # noqa: ANN001, ANN202
    engine = create_engine(db_urls.owner)
    with engine.begin() as conn:
        conn.execute(text("select set_config('app.tenant_ids', :t, true)"), {"t": str(tenant_id)})
        rows = conn.execute(text(sql), params).all()
    engine.dispose()
    return rows


def test_a_task_title_is_ciphertext_in_the_database_and_text_in_the_portal(ctx, db_urls):
    tenant = make_tenant()
    with bound(Scope(tenant_ids=frozenset({tenant.id}))):
        task = services.create_task(None, db.session.get(Tenant, tenant.id), title="Quarterly VAT for Hanoi branch",
                                    description="Confidential figures", service_line_key="bookkeeping")
        task_id = task.id
        db.session.expire_all()
        assert db.session.get(Task, task_id).title == "Quarterly VAT for Hanoi branch"
    [(title, description)] = _raw(db_urls, tenant.id, "select title, description from tasks where id = :i",
                                  i=task_id)
    assert bytes(title).startswith(MAGIC) and b"Hanoi" not in bytes(title) and b"Confidential" not in bytes(description)


def test_a_sealed_value_moved_to_another_column_or_tenant_does_not_open(ctx):
    a, b = make_tenant(), make_tenant()
    value = seal_for(a.id, "tasks.title", b"payroll of the directors")
    assert unseal_for("tasks.title", value) == b"payroll of the directors"
    with pytest.raises(IntegrityError):
        unseal_for("task_comments.body", value)  # another column
    forged = MAGIC + b.id.bytes + bytes(value[len(MAGIC) + 16:])  # another tenant's id on a's ciphertext
    with pytest.raises(IntegrityError):
        unseal_for("tasks.title", forged)


def test_writing_a_sealed_column_needs_exactly_one_tenant_and_sql_cannot_compare_it(ctx):
    a, b = make_tenant(), make_tenant()
    with bound(Scope(tenant_ids=frozenset({a.id, b.id}))), pytest.raises(StatementError) as err:
        db.session.add(Task(tenant_id=a.id, title="x", service_line_id=services.service_line("admin").id))
        db.session.flush()
    assert isinstance(err.value.orig, TenantContextMissing)  # (SQLAlchemy wraps what a bind raises)
    db.session.rollback()
    with pytest.raises(SealedColumnQuery):
        select(Task).where(Task.title == "x")
    with pytest.raises(SealedColumnQuery):
        select(Task).order_by(Task.title.desc())


def test_destroying_the_tenant_key_leaves_its_sealed_text_unreadable(ctx):
    tenant = make_tenant()
    value = seal_for(tenant.id, "tasks.title", b"salary review")
    app_keyring().destroy_tenant(tenant.id)
    with pytest.raises(KeyUnavailable):
        unseal_for("tasks.title", value)


def test_text_written_before_sealing_reads_as_it_is_and_portal_data_seal_seals_it(app, db_urls):
    with app.app_context():
        tenant = TenantRef.of(make_tenant())
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            task = services.create_task(None, db.session.get(Tenant, tenant.id), title="sealed already",
                                        service_line_key="admin")
            task_id = task.id
    # A row as an older release wrote it: the title as plain UTF-8.
    _raw(db_urls, tenant.id, "update tasks set title = convert_to('written before sealing', 'UTF8') where id = :i "
                             "returning id", i=task_id)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        assert db.session.get(Task, task_id).title == "written before sealing"
    result = app.test_cli_runner().invoke(args=["data", "seal"])
    assert result.exit_code == 0 and f"{tenant.slug}: 1 values sealed" in result.output
    [(title,)] = _raw(db_urls, tenant.id, "select title from tasks where id = :i", i=task_id)
    assert bytes(title).startswith(MAGIC)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant.id}))):
        assert db.session.get(Task, task_id).title == "written before sealing"
    again = app.test_cli_runner().invoke(args=["data", "seal"])
    assert f"{tenant.slug}:" not in again.output  # nothing left to seal

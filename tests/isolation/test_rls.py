"""Row-level security, tested with the application's own database role."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from portal.extensions import db
from tenants.context import Scope, bound
from tenants.isolation import CrossTenantWrite, TenantContextMissing
from tenants.models import Membership

SET = "select set_config('app.tenant_ids', :t, true)"


@pytest.fixture
def app_engine(app):
    """A separate pool on the app role (pool of one, so connections are reused)."""
    engine = create_engine(app.config["DATABASE_URL"], pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def count(conn, table: str, tenant_id: uuid.UUID) -> int:
    return conn.execute(text(f"select count(*) from {table} where tenant_id = :t"), {"t": tenant_id}).scalar()  # noqa: S608


def test_no_tenant_bound_sees_nothing(app_engine, world):
    with app_engine.begin() as conn:
        assert count(conn, "memberships", world.a.id) == 0
        assert count(conn, "audit_events", world.a.id) == 0
    with app_engine.begin() as conn:  # and the same with a tenant bound: the rows exist
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert count(conn, "memberships", world.a.id) == 3
        assert count(conn, "audit_events", world.a.id) >= 1


def test_tenant_a_cannot_read_or_write_tenant_b(app_engine, world):
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert count(conn, "memberships", world.b.id) == 0
        assert count(conn, "audit_events", world.b.id) == 0
        # UPDATE of B's rows touches nothing: they are invisible.
        moved = conn.execute(text("update memberships set role = 'client_admin' where tenant_id = :b"),
                             {"b": world.b.id}).rowcount
        assert moved == 0
    with pytest.raises(ProgrammingError, match="row-level security"), app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        conn.execute(text("insert into memberships (id, tenant_id, user_id, role, created_at) "
                          "values (:id, :b, :u, 'client_admin', now())"),
                     {"id": uuid.uuid4(), "b": world.b.id, "u": world["a_client_member"].id})
    with pytest.raises(ProgrammingError, match="row-level security"), app_engine.begin() as conn:
        # Moving one of A's rows into B is refused by WITH CHECK.
        conn.execute(text(SET), {"t": str(world.a.id)})
        conn.execute(text("update memberships set tenant_id = :b where tenant_id = :a"),
                     {"a": world.a.id, "b": world.b.id})


def test_pooled_connection_does_not_carry_the_tenant(app_engine, world):
    with app_engine.connect() as conn:
        first = conn.connection.dbapi_connection
        with conn.begin():
            conn.execute(text(SET), {"t": str(world.a.id)})
            assert count(conn, "memberships", world.a.id) == 3
    with app_engine.connect() as conn:
        assert conn.connection.dbapi_connection is first  # the very same pooled connection
        with conn.begin():
            assert conn.execute(text("select current_setting('app.tenant_ids', true)")).scalar() in ("", None)
            assert count(conn, "memberships", world.a.id) == 0


def test_the_app_session_sets_the_scope_per_transaction(ctx, world):
    with bound(Scope(tenant_ids=frozenset({world.a.id}))):
        assert len(db.session.scalars(select(Membership)).all()) == 3
        db.session.commit()
    # Next transaction, nothing bound: even a query that skips the ORM guard sees nothing.
    rows = db.session.scalars(select(Membership).execution_options(rls_only=True)).all()
    assert rows == []
    db.session.rollback()


def test_orm_guard_raises_without_a_tenant(ctx):
    with pytest.raises(TenantContextMissing):
        db.session.scalars(select(Membership)).all()
    db.session.rollback()


def test_orm_refuses_rows_for_another_tenant(ctx, world):
    with bound(Scope(tenant_ids=frozenset({world.a.id}))):
        db.session.add(Membership(tenant_id=world.b.id, user_id=world["a_client_member"].id, role="client_admin"))
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()
        member = db.session.scalars(select(Membership)).first()
        member.tenant_id = world.b.id
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()


def test_app_role_cannot_rewrite_the_audit_log(app_engine, world):
    for statement in ("update audit_events set action = 'x' where tenant_id = :a",
                      "delete from audit_events where tenant_id = :a"):
        with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
            conn.execute(text(SET), {"t": str(world.a.id)})
            conn.execute(text(statement), {"a": world.a.id})
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("delete from platform_audit_events"))


def test_catalog(app, db_urls):
    """Every tenant table is protected; the app role is powerless outside its grants."""
    owner = create_engine(db_urls.owner)
    app_role = make_url(app.config["DATABASE_URL"]).username
    with owner.connect() as conn:
        tables = conn.execute(text("""
            select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (select count(*) from pg_policy p where p.polrelid = c.oid) as policies,
                   (select bool_and(p.polqual is not null and p.polwithcheck is not null)
                      from pg_policy p where p.polrelid = c.oid) as both_clauses
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
            where n.nspname = 'public' and c.relkind in ('r', 'p')
        """)).all()
        assert {t.relname for t in tables} >= {"memberships", "assignments", "api_tokens", "audit_events"}
        for t in tables:
            assert t.relrowsecurity and t.relforcerowsecurity, f"{t.relname}: RLS not enabled and forced"
            assert t.policies >= 1 and t.both_clauses, f"{t.relname}: needs a policy with USING and WITH CHECK"

        role = conn.execute(text("select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles "
                                 "where rolname = :r"), {"r": app_role}).one()
        assert not any(role), f"{app_role} must be NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB"
        owned = conn.execute(text("""
            select relname from pg_class where relowner = (select oid from pg_roles where rolname = :r)
            union all select nspname from pg_namespace where nspowner = (select oid from pg_roles where rolname = :r)
            union all select proname from pg_proc where proowner = (select oid from pg_roles where rolname = :r)
        """), {"r": app_role}).scalars().all()
        assert owned == [], f"{app_role} owns {owned}"
        unsafe_views = conn.execute(text("""
            select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('v', 'm')
              and not coalesce('security_invoker=true' = any(c.reloptions), false)
        """)).scalars().all()
        assert unsafe_views == []
    owner.dispose()


def test_app_role_cannot_change_the_schema(app_engine):
    with pytest.raises(DBAPIError), app_engine.begin() as conn:
        conn.execute(text("alter table memberships disable row level security"))
    with pytest.raises(DBAPIError), app_engine.begin() as conn:
        conn.execute(text("create table sneaky (id int)"))

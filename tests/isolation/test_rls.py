"""Row-level security, tested with the application's own database role."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from portal.extensions import db
from tenants.context import Scope, bound
from tenants.isolation import CrossTenantWrite, TenantContextMissing
from tenants.models import Membership
from tests.api.util import issue_token

SET = "select set_config('app.tenant_ids', :t, true)"
SET_USER = "select set_config('app.user_id', :u, true)"
# Tables whose users may read some rows outside the bound tenants (and never write them).
OWN_ROW_READS = {"memberships", "assignments", "api_tokens", "notifications"}
# Tables a presented secret alone lets one read a row of (tests/intake/test_mail.py tests the address,
# tests/payroll/test_payslip_links.py the payslip link).
WIDER_READS = OWN_ROW_READS | {"intake_mail_addresses", "payroll_payslip_links"}


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
            select c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
            where n.nspname = 'public' and c.relkind in ('r', 'p')
        """)).all()
        assert {t.relname for t in tables} >= {"memberships", "assignments", "api_tokens", "audit_events"}
        # The one provider-level table that names a tenant: the provider's record of its offboarding, which
        # holds none of the tenant's content (counts, key ids, a digest) and must outlive its rows.
        assert [t.relname for t in tables if not t.relrowsecurity] == ["offboardings"]
        for t in (t for t in tables if t.relname != "offboardings"):
            assert t.relrowsecurity and t.relforcerowsecurity, f"{t.relname}: RLS not enabled and forced"
            policies = conn.execute(text("""
                select polname, polcmd, polpermissive, pg_get_expr(polqual, polrelid) as using_,
                       pg_get_expr(polwithcheck, polrelid) as check_
                from pg_policy where polrelid = :t
            """), {"t": t.oid}).all()
            # Every command: the bound tenants only, for the rows it finds (USING) and writes (WITH CHECK).
            writers = [p for p in policies if p.polcmd != "r"]
            assert [(p.polname, p.polcmd) for p in writers] == [("tenant_isolation", "*")], t.relname
            [main] = writers
            for clause in (main.using_, main.check_):
                assert clause and "app.tenant_ids" in clause, f"{t.relname}: {clause}"
                assert all(wider not in clause for wider in ("app.user_id", "app.token_hash", "app.intake_address",
                                                             "app.payslip_link")), f"{t.relname}: {clause}"
            # Anything wider only reads: FOR SELECT, and only where a user must see their own rows.
            readers = {p.polname for p in policies if p.polcmd == "r"}
            assert readers == ({"also_readable"} if t.relname in WIDER_READS else set()), t.relname
            assert all(p.polpermissive for p in policies), t.relname

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


def _own_row(app, world, table: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(user id, row id) of one row of ``table`` that belongs to a person of tenant A, made the way the portal does."""
    from portal.work.models import Notification

    if table == "memberships":
        user = world["a_client_member"].id
    elif table == "assignments":
        user = world["staff"].id  # assigned to tenant A by the world
    elif table == "api_tokens":
        user = world["a_client_member"].id
        issue_token(app, world["a_client_member"], world.a, "write")
    else:
        user = world["staff"].id
        with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
            db.session.add(Notification(tenant_id=world.a.id, user_id=user, kind="assigned"))
            db.session.commit()
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        row = db.session.execute(text(f"select id from {table} where user_id = :u"), {"u": user}).scalar_one()  # noqa: S608
        db.session.rollback()
    return user, row


@pytest.mark.parametrize("table", sorted(OWN_ROW_READS))
def test_own_rows_are_readable_but_never_writable_without_their_tenant_bound(app, app_engine, world, table):
    user, row = _own_row(app, world, table)
    with app_engine.begin() as conn:  # only the user is known, no tenant bound (as before a workspace opens)
        conn.execute(text(SET_USER), {"u": str(user)})
        assert conn.execute(text(f"select id from {table} where user_id = :u"), {"u": user}).scalars().all() == [row]  # noqa: S608
        changed = conn.execute(text(f"update {table} set tenant_id = tenant_id where id = :r"), {"r": row})  # noqa: S608
        assert changed.rowcount == 0
        assert conn.execute(text(f"delete from {table} where user_id = :u"), {"u": user}).rowcount == 0  # noqa: S608
    with app_engine.begin() as conn:  # the row is still there
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert conn.execute(text(f"select count(*) from {table} where id = :r"), {"r": row}).scalar() == 1  # noqa: S608


def test_a_member_cannot_raise_their_own_role_without_the_tenant_bound(app, app_engine, world):
    member = world["a_client_member"].id
    with app_engine.begin() as conn:
        conn.execute(text(SET_USER), {"u": str(member)})
        assert conn.execute(text("update memberships set role = 'client_admin' where user_id = :u"),
                            {"u": member}).rowcount == 0
        # Not into another tenant either: WITH CHECK admits only bound tenants, and none is.
        assert conn.execute(text("update memberships set tenant_id = :b where user_id = :u"),
                            {"u": member, "b": world.b.id}).rowcount == 0
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert conn.execute(text("select role from memberships where user_id = :u"),
                            {"u": member}).scalar_one() == "client_member"


def test_a_presented_token_is_readable_but_not_writable_without_its_tenant_bound(app, app_engine, world):
    raw = issue_token(app, world["a_client_member"], world.a)
    digest = hashlib.sha256(raw.encode()).hexdigest()
    with app_engine.begin() as conn:  # what the bearer lookup has: the presented secret's hash, no tenant
        conn.execute(text("select set_config('app.token_hash', :h, true)"), {"h": digest})
        assert conn.execute(text("select count(*) from api_tokens")).scalar() == 1
        assert conn.execute(text("update api_tokens set scope = 'write', revoked_at = null")).rowcount == 0
        assert conn.execute(text("delete from api_tokens")).rowcount == 0
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert conn.execute(text("select scope from api_tokens where token_hash = decode(:h, 'hex')"),
                            {"h": digest}).scalar_one() == "read"


def _task_with_events(app, world) -> uuid.UUID:
    from portal.work import services
    from tenants.models import Tenant, User
    from tenants.policy import Role

    with app.app_context():
        manager = db.session.get(User, world["manager"].id)
        with bound(Scope(user_id=manager.id, tenant_ids=frozenset({world.a.id}), role=Role.MANAGER)):
            task = services.create_task(manager, db.session.get(Tenant, world.a.id), title="Close March",
                                        service_line_key="bookkeeping", assignee_id=str(world["staff"].id))
            return task.id


def test_app_role_cannot_rewrite_a_tasks_timeline(app, app_engine, world):
    task = _task_with_events(app, world)
    for statement in ("update task_events set kind = 'approved', actor_label = 'someone else' where task_id = :k",
                      "delete from task_events where task_id = :k"):
        with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
            conn.execute(text(SET), {"t": str(world.a.id)})
            conn.execute(text(statement), {"k": task})
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        kinds = conn.execute(text("select kind from task_events where task_id = :k"), {"k": task}).scalars().all()
        assert "created" in kinds and "approved" not in kinds


def test_deleting_a_task_as_the_app_role_still_removes_its_events(app, app_engine, world):
    # The foreign key's ON DELETE CASCADE runs as the table's owner: the app role's missing DELETE
    # on task_events does not stand in its way.
    task = _task_with_events(app, world)
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert conn.execute(text("select count(*) from task_events where task_id = :k"), {"k": task}).scalar() >= 1
        assert conn.execute(text("delete from tasks where id = :k"), {"k": task}).rowcount == 1
        assert conn.execute(text("select count(*) from task_events where task_id = :k"), {"k": task}).scalar() == 0
    with app_engine.begin() as conn:
        conn.execute(text(SET), {"t": str(world.a.id)})
        assert conn.execute(text("select count(*) from task_events where task_id = :k"), {"k": task}).scalar() == 0


def test_app_role_cannot_change_the_schema(app_engine):
    with pytest.raises(DBAPIError), app_engine.begin() as conn:
        conn.execute(text("alter table memberships disable row level security"))
    with pytest.raises(DBAPIError), app_engine.begin() as conn:
        conn.execute(text("create table sneaky (id int)"))

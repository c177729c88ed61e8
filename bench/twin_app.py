"""The portal with a bare twin beside each main list page, for ``bench/pages.py`` (bench only: the product carries
no twin code).

    gunicorn -c infra/gunicorn.conf.py 'bench.twin_app:create_twin_app()'

``create_twin_app`` builds the portal with ``portal.create_app`` and registers one more blueprint, ``twin``, under
``/_twin``: for each list page the same path and the same template, but the rows come from the fewest plain
SELECTs, in autocommit, with no session check, no tenant scope and no audit, as a role that bypasses row-level
security and may only read (``TWIN_DATABASE_URL``, made by ``reader_url``: the owner role will not do, as every
tenant table FORCEs row-level security on its owner too). Whose page it is comes from the query string
(``?as=<user id>``) instead of a session. Each twin reads one header row (the reader's name, role, workspaces and
unread count, the tenant and what the page's panels show) and one statement per list, and renders the real view's
template with a context of the same shape, so that both answers carry the same rows:

=====================================  ====================================  ====================
real page                              twin                                  twin's statements
=====================================  ====================================  ====================
``/t/<slug>/documents``                ``/_twin/t/<slug>/documents``         header + documents
``/t/<slug>/tasks``                    ``/_twin/t/<slug>/tasks``             header + tasks
``/t/<slug>/requests``                 ``/_twin/t/<slug>/requests``          header + requests + items
``/t/<slug>/statements``               ``/_twin/t/<slug>/statements``        header + statements
``/provider/work``                     ``/_twin/provider/work``              header + tasks
=====================================  ====================================  ====================

What both still do: the stack (Flask, the app's before/after-request hooks but the session check, which finds no
cookie), the template and its helpers, a CSRF token in the forms, and unsealing the sealed text they show (task
titles, request texts, the intake address: there is no plaintext to show otherwise). The twins take the unfiltered
first page, as the bench asks for it; the forms shown are those of a client (tasks, requests) and of staff (my
work).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, render_template, request
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

from portal import create_app
from portal.access import public
from portal.api.pagination import encode_cursor
from portal.documents import services as vault
from portal.documents.forms import RequestForm
from portal.documents.panels import Panel
from portal.intake.mail import addresses
from portal.intake.services import Progress
from portal.work import queues
from portal.work.forms import RequestWorkForm
from portal.work.services import CLIENT_STATE, STAFF_STATE
from portal.work.states import FINAL, State
from tenants.fields import unseal_for
from tenants.policy import Role, allowed, is_client
from tenants.reach import SWITCHER_LIMIT

bp = Blueprint("twin", __name__, url_prefix="/_twin")
# Spelled out in the SQL below: tenants.models.LIVE_STATUSES ('active', 'suspended'), portal.work.states.FINAL
# ('done', 'cancelled'); tests/test_bench_pages.py checks that they still say so.

# --- the header: who reads, in which workspace, with the layout's switcher and unread count -------------------

# A client's page: the tenant, the reader's membership, their workspaces (the switcher), their unread count
# over those workspaces, and what the documents page shows besides its list (bytes used, the intake address).
_TENANT_HEAD = text("""
select t.id, t.slug, t.name, t.timezone, t.storage_quota_bytes, u.name as user_name, u.email, m.role,
  (select coalesce(json_agg(json_build_array(s.slug, s.name) order by s.name), '[]') from (
     select o.slug, o.name from tenants o join memberships om on om.tenant_id = o.id
      where om.user_id = u.id and o.status in ('active', 'suspended')
      order by o.name limit :switcher_rows) s) as switcher,
  (select count(*) from notifications n join memberships nm on nm.tenant_id = n.tenant_id and nm.user_id = u.id
     join tenants nt on nt.id = n.tenant_id
    where n.user_id = u.id and n.read_at is null and nt.status in ('active', 'suspended')) as unread,
  case when :documents then (select coalesce(sum(size), 0) from stored_objects
                              where tenant_id = t.id and purpose = 'content') end as used,
  case when :documents then (select local_part from intake_mail_addresses
                              where tenant_id = t.id and retired_at is null) end as mail_local,
  case when :documents then (
    select json_build_array(count(*) filter (where r.state = 'done'), count(*) filter (where r.state = 'failed'),
                            count(*))
      from documents d left join intake_records r on r.document_id = d.id and r.version = d.current_version
     where d.tenant_id = t.id and d.trashed_at is null
       and (m.role <> 'client_member' or d.uploaded_by_id = u.id)) end as intake
from tenants t join memberships m on m.tenant_id = t.id join users u on u.id = m.user_id
where t.slug = :slug and u.id = :user and t.status in ('active', 'suspended')
""")

# A provider person's page: their workspaces (all for a provider admin, else their assignments), the service
# lines, their unread count over those workspaces.
_PROVIDER_HEAD = text("""
with reach as (
  select o.id, o.slug, o.name from tenants o, users u
   where u.id = :user and o.status in ('active', 'suspended')
     and (u.provider_role = 'provider_admin'
          or exists (select 1 from assignments a where a.tenant_id = o.id and a.user_id = u.id)))
select u.name as user_name, u.email, u.provider_role as role,
  (select coalesce(json_agg(json_build_array(id, slug, name) order by name), '[]') from reach) as reach,
  (select coalesce(json_agg(json_build_array(key, name) order by name), '[]') from service_lines) as lines,
  (select count(*) from notifications n where n.user_id = u.id and n.read_at is null
      and n.tenant_id in (select id from reach)) as unread
from users u where u.id = :user and u.provider_role is not null
""")

# --- the lists -------------------------------------------------------------------------------------------------

_DOCUMENTS = text("""
select d.id, d.title, d.category, d.period, d.tags, d.current_version, d.created_at,
       o.preview, o.kind, o.size, up.name as uploader
from documents d
join document_versions v on v.document_id = d.id and v.number = d.current_version
join stored_objects o on o.id = v.object_id
left join users up on up.id = d.uploaded_by_id
where d.tenant_id = :tenant and d.trashed_at is null
  and (:all or d.uploaded_by_id = :user)
order by d.created_at desc, d.id desc
limit :limit
""")

_TASKS = text("""
select t.id, t.title, t.priority, t.state, t.due_date, l.name as line, a.name as assignee
from tasks t join service_lines l on l.id = t.service_line_id left join users a on a.id = t.assignee_id
where t.tenant_id = :tenant
order by t.state in ('done', 'cancelled'), t.due_date asc nulls last, t.priority, t.created_at
limit 200
""")

_REQUESTS = text("""
select r.id, r.title, r.created_at, c.name as created_by,
       count(i.id) as items,
       count(i.id) filter (where i.fulfilled_at is null and i.not_applicable_at is null) as outstanding,
       count(i.id) filter (where i.not_applicable_at is not null) as not_applicable
from document_requests r
left join users c on c.id = r.created_by_id
left join document_request_items i on i.request_id = r.id
where r.tenant_id = :tenant
group by r.id, c.name
order by r.created_at desc, r.id desc
limit 200
""")

_OUTSTANDING = text("""
select request_id, description, category, due_date from document_request_items
where tenant_id = :tenant and fulfilled_at is null and not_applicable_at is null
order by due_date asc nulls last, created_at
limit 500
""")

_STATEMENTS = text("""
select id, month, version, superseded_at, reference, total, paid, currency, payment_state, approval
from statements where tenant_id = :tenant
order by month desc, version desc
""")

_MY_WORK = text("""
select t.id, t.tenant_id, t.title, l.name as line, t.state, t.priority, t.due_date, t.assignee_id
from tasks t join service_lines l on l.id = t.service_line_id
where t.tenant_id = any(:tenants) and t.state not in ('done', 'cancelled')
  and (t.assignee_id = :user or (t.reviewer_id = :user and t.state = 'in_review'))
order by coalesce(t.due_date, :far), t.priority, t.id
limit :limit
""")


# --- helpers ---------------------------------------------------------------------------------------------------

class Reader(SimpleNamespace):
    """A stand-in for ``current_user`` in the layout: signed in, with a name (no session behind it)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True


READER = "portal_bench_reader"
# What the twins read, and all the reader may read.
TABLES = ("tenants", "users", "memberships", "assignments", "notifications", "service_lines", "tasks", "documents",
          "document_versions", "stored_objects", "intake_records", "intake_mail_addresses", "document_requests",
          "document_request_items", "statements")
_ENGINE_LOCK = threading.Lock()


def reader_url(superuser_url: str, database: str) -> str:
    """The URL of a role that may read the twins' tables of ``database`` and bypasses row-level security (created
    if missing, with the superuser): the twins' plain connection."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    su = make_url(superuser_url).set(drivername="postgresql")
    with psycopg.connect(su.set(database=database).render_as_string(hide_password=False), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (READER,)).fetchone():
            conn.execute(sql.SQL("create role {} login bypassrls nosuperuser nocreatedb nocreaterole")
                         .format(sql.Identifier(READER)))
        for grant in ("grant connect on database {db} to {role}", "grant usage on schema public to {role}"):
            conn.execute(sql.SQL(grant).format(db=sql.Identifier(database), role=sql.Identifier(READER)))
        conn.execute(sql.SQL("grant select on {} to {}").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in TABLES), sql.Identifier(READER)))
    url = make_url(superuser_url).set(username=READER, password=None, database=database,
                                      drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def twin_engine(app: Flask | None = None) -> Engine:
    """The twins' engine (``TWIN_DATABASE_URL``), in autocommit, made on first use in each process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    engine = app.extensions.get("twin_engine")
    if engine is None:
        with _ENGINE_LOCK:
            engine = app.extensions.get("twin_engine")
            if engine is None:
                # The app's pool size and server options, no pre-ping: a bare app's plainest connection.
                engine = create_engine(app.config["TWIN_DATABASE_URL"], isolation_level="AUTOCOMMIT",
                                       pool_size=10, max_overflow=10, connect_args={"options": "-c jit=off"})
                app.extensions["twin_engine"] = engine
    return engine


def _reader() -> uuid.UUID:
    try:
        return uuid.UUID(request.args.get("as", ""))
    except ValueError:
        abort(400, description="name the reader: ?as=<user id>")


def _render_as(endpoint: str, template: str, **context: Any) -> str:
    """Render ``template`` as the real view ``endpoint`` does: its blueprint's template helpers and the layout's
    current link follow the request's rule, so the twin's request takes the real page's rule."""
    request.url_rule = next(current_app.url_map.iter_rules(endpoint))
    return render_template(template, **context)


def _tenant_page(conn: Connection, slug: str, *, documents: bool = False) -> SimpleNamespace:
    """The header of a client's page; binds ``g.tenant`` and ``g.role`` (the layout and the helpers read them)."""
    row = conn.execute(_TENANT_HEAD, {"slug": slug, "user": _reader(), "documents": documents,
                                      "switcher_rows": SWITCHER_LIMIT + 1}).mappings().first()
    if row is None:
        abort(404)
    g.tenant = SimpleNamespace(id=row["id"], slug=row["slug"], name=row["name"], timezone=row["timezone"],
                               storage_quota_bytes=row["storage_quota_bytes"])
    g.role = Role(row["role"])
    return SimpleNamespace(**row)


def _layout(head: SimpleNamespace, switcher: list, provider_role: str | None = None) -> dict[str, Any]:
    """What base.html asks of the signed-in person, from the header row instead of the session."""
    unread = int(head.unread)
    return {"current_user": Reader(name=head.user_name, email=head.email, provider_role=provider_role,
                                   is_provider=provider_role is not None),
            "switcher_tenants": lambda: (switcher[:SWITCHER_LIMIT], len(switcher) > SWITCHER_LIMIT),
            "unread_count": lambda: unread}


def _switcher(pairs: list) -> list[SimpleNamespace]:
    return [SimpleNamespace(slug=slug, name=name) for slug, name in pairs]


def _sealed(purpose: str) -> Callable[[bytes | None], str | None]:
    return lambda value: None if value is None else unseal_for(purpose, value).decode()


_task_title = _sealed("tasks.title")


def _state_label(role: Role) -> Callable[[str], str]:
    """``work.services.label`` for ``role`` (it reads the role from the bound scope, which twins have not)."""
    words = CLIENT_STATE if is_client(role) else STAFF_STATE
    return lambda state: str(words[State(state)])


# --- the twins -------------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/documents")
@public
def documents(tenant_slug: str) -> str:
    """Twin of ``documents.index``: the first page of the vault, the usage meter, the upload zone, the mail-in panel."""
    with twin_engine().connect() as conn:
        head = _tenant_page(conn, tenant_slug, documents=True)
        rows = conn.execute(_DOCUMENTS, {"tenant": g.tenant.id, "user": _reader(), "limit": vault.PAGE + 1,
                                         "all": allowed(g.role, "tenant:documents.view_all")}).mappings().all()
    docs = [SimpleNamespace(
        id=r["id"], title=r["title"], category=r["category"], period=r["period"], tags=r["tags"],
        current_version=r["current_version"], created_at=r["created_at"],
        uploaded_by=SimpleNamespace(name=r["uploader"]) if r["uploader"] is not None else None,
        latest=SimpleNamespace(object=SimpleNamespace(preview=r["preview"], kind=r["kind"], size=r["size"])))
        for r in rows[:vault.PAGE]]
    next_cursor = (encode_cursor([docs[-1].created_at.isoformat(), str(docs[-1].id)])
                   if len(rows) > vault.PAGE else None)
    used = int(head.used)
    quota = head.storage_quota_bytes or current_app.config["TENANT_QUOTA_BYTES"]
    panels = []  # in the order their areas registered them (portal.documents.panels)
    if allowed(g.role, "tenant:intake.view") and head.intake[2]:
        panels.append(Panel("intake/_progress.html", {"progress": Progress(*head.intake)}))
    if allowed(g.role, "tenant:mailin.view") and addresses.domain():
        local = _sealed("intake_mail_addresses.local_part")(head.mail_local)
        if allowed(g.role, "tenant:mailin.manage"):  # the admin's senders list: not a twin's reader
                abort(501, description="the twin shows the mail-in panel as a member or approver sees it")
        panels.append(Panel("intake/mail/_address.html", {
            "address": f"{local}@{addresses.domain()}" if local else None, "manage": False, "senders": None,
            "held": None, "me": head.email}))
    return _render_as("documents.index", "documents/index.html", tenant=g.tenant,
                      page=vault.DocumentPage(docs, None), used=used, quota=quota, filtered=False,
                      next_cursor=next_cursor, limit=vault.limit_for(used, quota), panels=panels,
                      **_layout(head, _switcher(head.switcher)))


@bp.route("/t/<tenant_slug>/tasks")
@public
def tasks(tenant_slug: str) -> str:
    """Twin of ``work.task_list`` as a client sees it: the tasks and the "Ask us" form."""
    with twin_engine().connect() as conn:
        head = _tenant_page(conn, tenant_slug)
        rows = conn.execute(_TASKS, {"tenant": g.tenant.id}).mappings().all()
    items = [SimpleNamespace(id=r["id"], title=_task_title(r["title"]), priority=r["priority"], state=r["state"],
                             due_date=r["due_date"], service_line=SimpleNamespace(name=r["line"]),
                             assignee=SimpleNamespace(name=r["assignee"]) if r["assignee"] else None)
             for r in rows]
    if allowed(g.role, "tenant:tasks.create"):  # the manager's forms need the team: not a twin's reader
        abort(501, description="the twin shows the tasks page as a client sees it")
    ask = RequestWorkForm(formdata=None) if allowed(g.role, "tenant:tasks.request") else None
    return _render_as("work.task_list", "work/tasks.html", tenant=g.tenant, tasks=items,
                      done=[s.value for s in FINAL], ask_form=ask, task_form=None, recurring_form=None,
                      templates=[], describe=None, state_label=_state_label(g.role),
                      **_layout(head, _switcher(head.switcher)))


@bp.route("/t/<tenant_slug>/requests")
@public
def requests(tenant_slug: str) -> str:
    """Twin of ``documents.request_list``: what is still needed, then every request with its progress."""
    with twin_engine().connect() as conn:
        head = _tenant_page(conn, tenant_slug)
        rows = conn.execute(_REQUESTS, {"tenant": g.tenant.id}).mappings().all()
        items = conn.execute(_OUTSTANDING, {"tenant": g.tenant.id}).mappings().all()
    title, description = _sealed("document_requests.title"), _sealed("document_request_items.description")
    # The template only counts a request's items: ranges of the right lengths stand in for the lists.
    found = [SimpleNamespace(id=r["id"], title=title(r["title"]), created_at=r["created_at"],
                             created_by=SimpleNamespace(name=r["created_by"]) if r["created_by"] else None,
                             items=range(r["items"]), outstanding=range(r["outstanding"]),
                             not_applicable=range(r["not_applicable"]))
             for r in rows]
    outstanding = [SimpleNamespace(request_id=i["request_id"], description=description(i["description"]),
                                   category=i["category"], due_date=i["due_date"]) for i in items]
    form = RequestForm(formdata=None) if allowed(g.role, "tenant:requests.manage") else None
    return _render_as("documents.request_list", "documents/requests.html", tenant=g.tenant, requests=found,
                      outstanding=outstanding, form=form, **_layout(head, _switcher(head.switcher)))


@bp.route("/t/<tenant_slug>/statements")
@public
def statements(tenant_slug: str) -> str:
    """Twin of ``billing.statement_list``: every statement, newest month first."""
    with twin_engine().connect() as conn:
        head = _tenant_page(conn, tenant_slug)
        rows = conn.execute(_STATEMENTS, {"tenant": g.tenant.id}).mappings().all()
    found = [SimpleNamespace(**r, due=max(0, r["total"] - r["paid"])) for r in rows]
    return _render_as("billing.statement_list", "billing/statements.html", tenant=g.tenant, rows=found,
                      **_layout(head, _switcher(head.switcher)))


@bp.route("/provider/work")
@public
def my_work() -> str:
    """Twin of ``work.my_work``: the person's unfinished tasks over their clients, due first (the first page)."""
    user = _reader()
    with twin_engine().connect() as conn:
        head = conn.execute(_PROVIDER_HEAD, {"user": user}).mappings().first()
        if head is None:
                abort(404)
        head = SimpleNamespace(**head)
        reach = {uuid.UUID(str(tid)): (slug, name) for tid, slug, name in head.reach}
        rows = conn.execute(_MY_WORK, {"tenants": list(reach), "user": user, "far": queues.FAR,
                                       "limit": queues.PAGE + 1}).all()
    g.role = Role(head.role)
    items = [queues.WorkItem(id_, *reach[tenant_id], _task_title(title), line, state, priority, due,
                             "assignee" if assignee == user else "reviewer")
             for id_, tenant_id, title, line, state, priority, due, assignee in rows[:queues.PAGE]]
    last = items[-1] if len(rows) > queues.PAGE else None
    next_cursor = encode_cursor([(last.due_date or queues.FAR).isoformat(), last.priority, str(last.id)]) \
        if last else None
    tenants = [SimpleNamespace(slug=slug, name=name) for slug, name in reach.values()]
    return _render_as("work.my_work", "work/my_work.html", items=items, next_cursor=next_cursor,
                      lines=[SimpleNamespace(key=k, name=n) for k, n in head.lines], tenants=tenants,
                      states=[s.value for s in State if s not in FINAL], state_label=_state_label(g.role),
                      **_layout(head, tenants, provider_role=head.role))


def create_twin_app(config: dict[str, Any] | None = None) -> Flask:
    """The portal (``portal.create_app(config)``) with the twins under ``/_twin``; their database URL is
    ``TWIN_DATABASE_URL`` from ``config`` or the environment (``reader_url``)."""
    app = create_app(config)
    app.config["TWIN_DATABASE_URL"] = app.config.get("TWIN_DATABASE_URL") or os.environ["TWIN_DATABASE_URL"]
    app.register_blueprint(bp)
    return app



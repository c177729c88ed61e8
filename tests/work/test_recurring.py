"""Recurring tasks: each period created exactly once, however often (or seldom) the scheduler runs."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.work.models import Task
from portal.work.recurring import add_template, create_due_tasks
from portal.work.services import WorkError
from tenants.context import for_tenant
from tenants.models import Tenant
from tests.factories import make_tenant


@pytest.fixture
def tenant_id(app):
    with app.app_context():
        return make_tenant().id


def _titles(app, tenant_id) -> list[tuple[str, date]]:
    with app.app_context(), for_tenant(tenant_id):
        return [(t.title, t.due_date) for t in db.session.scalars(select(Task).order_by(Task.due_date))]


def test_monthly_close_runs_twice_and_catches_up_after_downtime_without_skipping(app, tenant_id):
    with app.app_context(), for_tenant(tenant_id):
        add_template(None, db.session.get(Tenant, tenant_id), title="Monthly close", service_line_key="bookkeeping",
                     rule={"kind": "working_day", "n": 5}, since=date(2026, 1, 1), lead_days=0)
        assert create_due_tasks(tenant_id, today=date(2026, 1, 20)) == 1
        assert create_due_tasks(tenant_id, today=date(2026, 1, 20)) == 0  # the scheduler ran twice
        # Down from late January to mid-May: February, March, April and May are each created once.
        assert create_due_tasks(tenant_id, today=date(2026, 5, 15)) == 4
    titles = _titles(app, tenant_id)
    assert [t for t, _d in titles] == [f"Monthly close (2026-0{m})" for m in range(1, 6)]
    # The 5th working day of February 2026 comes after Tết (16-20 February is the holiday).
    assert dict(titles)["Monthly close (2026-02)"] == date(2026, 2, 6)


def test_two_schedulers_at_once_still_create_one_task_per_period(app, tenant_id):
    with app.app_context(), for_tenant(tenant_id):
        add_template(None, db.session.get(Tenant, tenant_id), title="Payroll", service_line_key="payroll",
                     rule={"kind": "day_of_month", "day": 25}, since=date(2026, 1, 1), lead_days=3)
    created: list[int] = []

    def run() -> None:
        with app.app_context(), for_tenant(tenant_id):
            created.append(create_due_tasks(tenant_id, today=date(2026, 6, 30)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(created) == 6  # January to June, once each
    titles = _titles(app, tenant_id)
    assert len(titles) == 6 and len({t for t, _d in titles}) == 6


def test_a_bad_schedule_is_refused_with_a_reason(app, tenant_id):
    with app.app_context(), for_tenant(tenant_id), pytest.raises(WorkError, match="schedule is not valid"):
        add_template(None, db.session.get(Tenant, tenant_id), title="x", service_line_key="admin",
                     rule={"kind": "fortnightly"})


def test_a_manager_adds_recurring_work_on_the_tasks_page(app, world):
    from tests.factories import csrf_token, login

    client = app.test_client()
    login(client, world["manager"])
    url = f"/t/{world.a.slug}/tasks"
    r = client.post(url + "/recurring", data={"csrf_token": csrf_token(client, url), "title": "Payroll run",
                                               "line": "payroll", "kind": "weekday", "number": "2", "weekday": "1",
                                               "lead_days": "5"})
    assert r.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Payroll run" in page and "2nd Tuesday of each month" in page

"""One rule for dates and times: shown, entered and bucketed in the reader's zone (tenants.zones.reader_zone).

Every test here runs on a clock at 18:30 UTC on 31 March 2027, which is already 01:30 on 1 April
in Ho Chi Minh City (and 20:30 on 31 March in Berlin): a page that shows UTC, or a day counted
in UTC, shows the wrong day.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select, update

from portal.documents.models import DocumentRequest, RequestItem
from portal.extensions import db
from portal.work import services, time
from portal.work.models import Notification, Task
from tenants.context import Scope, bound, for_tenant
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person, make_tenant

MOMENT = datetime(2027, 3, 31, 18, 30, tzinfo=UTC)
HCM_TIME = re.compile(r"\b1:3\d(:\d\d)?\sAM")  # 01:3x in Ho Chi Minh City
UTC_TIME = re.compile(r"\b6:3\d(:\d\d)?\sPM")  # 18:3x in UTC
BERLIN_TIME = re.compile(r"\b8:3\d(:\d\d)?\sPM")  # 20:3x in Berlin (summer time from 28 March)


@pytest.fixture
def split_day():
    """The clock where UTC and Ho Chi Minh City are on different days (it keeps ticking)."""
    with time_machine.travel(MOMENT, tick=True):
        yield MOMENT


def _signed_in(app, person):
    client = app.test_client()
    login(client, person)
    return client


def _row(page: str, marker: str) -> str:
    """The first table row carrying `marker` (e.g. `data-person="x@y"`): other tests' rows on a page
    listing the whole provider were written on the real clock, which may read 01:3x or 18:3x too."""
    match = re.search(rf"<tr {marker}.*?</tr>", page, re.S)
    assert match, f"no row with {marker}"
    return match.group(0)


def _notify(app, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    with app.app_context(), for_tenant(tenant_id):
        db.session.add(Notification(tenant_id=tenant_id, user_id=user_id, kind="question"))
        db.session.commit()


def test_a_client_reads_every_page_in_their_companys_zone(app, world, split_day):
    with app.app_context():
        berlin = make_tenant(timezone="Europe/Berlin")
        berliner = make_person(Role.CLIENT_MEMBER, berlin)
        berlin_id = berlin.id
    _notify(app, berlin_id, berliner.id)
    _notify(app, world.a.id, world["a_client_member"].id)
    # Notifications are not a tenant's page: they still show the reader's company's time, not the provider's.
    page = _signed_in(app, berliner).get("/notifications").get_data(as_text=True)
    assert BERLIN_TIME.search(page) and not HCM_TIME.search(page) and not UTC_TIME.search(page)
    page = _signed_in(app, world["a_client_member"]).get("/notifications").get_data(as_text=True)
    assert HCM_TIME.search(page) and not UTC_TIME.search(page)


def test_the_access_log_and_last_sign_in_show_the_tenants_time(app, world, split_day):
    admin = _signed_in(app, world["a_client_admin"])  # signs in now: 01:3x on 1 April, local
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}), role=Role.MANAGER,
                                        user_id=world["manager"].id)):  # an event in the client's log, now
        services.create_task(db.session.get(User, world["manager"].id), db.session.get(Tenant, world.a.id),
                             title="Count the petty cash", service_line_key="admin")
    log = admin.get(f"/t/{world.a.slug}/access-log").get_data(as_text=True)
    assert HCM_TIME.search(log) and not UTC_TIME.search(log)
    users = admin.get(f"/t/{world.a.slug}/users").get_data(as_text=True)
    assert HCM_TIME.search(users) and not UTC_TIME.search(users)


def test_provider_pages_show_the_providers_zone(app, world, split_day):
    with app.app_context():  # a colleague whose last sign-in, read in Ho Chi Minh City, matches UTC_TIME
        colleague = make_person(Role.STAFF)
        db.session.execute(update(User).where(User.id == colleague.id)
                           .values(last_login_at=datetime(2026, 12, 1, 11, 35, tzinfo=UTC)))
        db.session.commit()
    admin = _signed_in(app, world["provider_admin"])
    staff = admin.get("/provider/staff").get_data(as_text=True)
    mine = _row(staff, f'data-person="{world["provider_admin"].email}"')  # last sign-in: just now
    assert HCM_TIME.search(mine) and not UTC_TIME.search(mine)
    newest = _row(admin.get("/provider/audit").get_data(as_text=True), "data-seq=")  # the sign-in, in 2027
    assert HCM_TIME.search(newest) and not UTC_TIME.search(newest)
    # A task opened now waits in the queue "since 1 April" (the provider's day), not 31 March.
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}), role=Role.MANAGER,
                                        user_id=world["manager"].id)):
        services.create_task(db.session.get(User, world["manager"].id), db.session.get(Tenant, world.a.id),
                             title="Count the petty cash", service_line_key="admin")
    queue = _signed_in(app, world["manager"]).get("/provider/queues/admin").get_data(as_text=True)
    assert "Apr 1, 2027" in queue and "Mar 31, 2027" not in queue


def test_overdue_is_counted_on_the_readers_day(app, world, split_day):
    """Due on 31 March: overdue in Ho Chi Minh City already, though UTC's day is still 31 March."""
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}), role=Role.MANAGER,
                                        user_id=world["manager"].id)):
        manager, tenant = db.session.get(User, world["manager"].id), db.session.get(Tenant, world.a.id)
        task = services.create_task(manager, tenant, title="File the March VAT return", service_line_key="bookkeeping",
                                    assignee_id=str(world["staff"].id), due=date(2027, 4, 1))
        request = DocumentRequest(tenant_id=tenant.id, title="March papers", created_by_id=manager.id)
        db.session.add(RequestItem(tenant_id=tenant.id, request=request, position=0, description="Bank statement",
                                   category="bank_statement", due_date=date(2027, 4, 1)))
        db.session.flush()
        # Written as it stood yesterday (the forms refuse a date that has passed).
        db.session.execute(update(Task).where(Task.id == task.id).values(due_date=date(2027, 3, 31)))
        db.session.execute(update(RequestItem).where(RequestItem.request_id == request.id)
                           .values(due_date=date(2027, 3, 31)))
        db.session.commit()
    work = _signed_in(app, world["staff"]).get("/provider/work?overdue=1").get_data(as_text=True)
    assert "File the March VAT return" in work
    requests = _signed_in(app, world["a_client_member"]).get(f"/t/{world.a.slug}/requests").get_data(as_text=True)
    assert "overdue" in requests


def test_dates_already_past_are_refused_with_the_reason(app, world, split_day):
    staff = _signed_in(app, world["staff"])
    url = f"/t/{world.a.slug}/requests"
    form = {"csrf_token": csrf_token(staff, url), "title": "Year-end papers", "items-0-description": "Bank statement",
            "items-0-category": "bank_statement"}
    r = staff.post(url, data={**form, "items-0-due": "2027-03-31"})  # today in UTC, yesterday for the client
    assert r.status_code in (400, 409, 422) and "already passed" in r.get_data(as_text=True)
    r = staff.post(url, data={**form, "items-0-due": "2026-04-01"})  # last year
    assert r.status_code in (400, 409, 422) and "already passed" in r.get_data(as_text=True)
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        assert db.session.scalar(select(DocumentRequest).where(DocumentRequest.created_by_id == world["staff"].id)) \
            is None  # nothing half-made
    assert staff.post(url, data={**form, "items-0-due": "2027-04-01"}).status_code == 302  # the client's today

    manager = _signed_in(app, world["manager"])
    url = f"/t/{world.a.slug}/tasks"
    task = {"csrf_token": csrf_token(manager, url), "title": "Close the books", "line": "bookkeeping"}
    r = manager.post(url, data={**task, "due": "2025-04-01"})  # two years ago
    assert r.status_code in (400, 409, 422) and "already passed" in r.get_data(as_text=True)
    r = manager.post(url, data={**task, "due": "2027-04-01", "assignee": str(world["staff"].id)})
    assert r.status_code == 302
    task_url = r.headers["Location"]
    # The task was opened on 1 April (local): time on an earlier day, or a month before, is refused.
    task_id = task_url.rstrip("/").rsplit("/", 1)[-1]
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}), role=Role.STAFF,
                                        user_id=world["staff"].id)):
        user = db.session.get(User, world["staff"].id)
        for day in ("2027-03-31", "2027-02-15"):
            with pytest.raises(services.WorkError, match="opened on"):
                time.add_entry(user, task_id, day=day, minutes=30, billable=True)
        assert time.add_entry(user, task_id, day="2027-04-01", minutes=30, billable=True).minutes == 30
    # The form offers the reader's today, and no day before the task existed.
    page = staff.get(task_url).get_data(as_text=True)
    assert 'value="2027-04-01" min="2027-04-01" max="2027-04-01"' in page


def test_a_provider_in_another_zone_reads_provider_pages_in_its_own(app, world, split_day):
    app.config["PROVIDER_TIMEZONE"] = "UTC"
    try:
        manager = _signed_in(app, world["manager"])
        staff = _signed_in(app, world["provider_admin"]).get("/provider/staff").get_data(as_text=True)
        mine = _row(staff, f'data-person="{world["provider_admin"].email}"')
        assert UTC_TIME.search(mine) and not HCM_TIME.search(mine)
        # ...while a tenant's page still reads in the tenant's zone (the task's timeline).
        url = f"/t/{world.a.slug}/tasks"
        r = manager.post(url, data={"csrf_token": csrf_token(manager, url), "title": "Payroll for April",
                                    "line": "payroll"})
        page = manager.get(r.headers["Location"]).get_data(as_text=True)
        assert HCM_TIME.search(page) and not UTC_TIME.search(page)
    finally:
        app.config["PROVIDER_TIMEZONE"] = "Asia/Ho_Chi_Minh"

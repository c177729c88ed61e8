"""Document requests: staff ask, the client is told and uploads against each item, reminders go out once."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.documents.models import Document, RequestItem
from portal.documents.requests import send_reminders
from portal.extensions import db
from tenants.context import Scope, bound, for_tenant
from tests.documents import samples
from tests.factories import csrf_token, login


def _create(client, world, *, title: str, items: list[tuple[str, str, str]]):
    url = f"/t/{world.a.slug}/requests"
    data = {"csrf_token": csrf_token(client, url), "title": title, "note": "Thanks!"}
    for i, (description, category, due) in enumerate(items):
        data.update({f"items-{i}-description": description, f"items-{i}-category": category, f"items-{i}-due": due})
    return client.post(url, data=data)


@pytest.fixture
def staff(app, world):
    client = app.test_client()
    login(client, world["staff"])
    return client


def test_staff_ask_the_client_is_emailed_and_fulfils_an_item_by_uploading(app, world, staff, smtp, run_jobs):
    due = (date.today() + timedelta(days=10)).isoformat()
    r = _create(staff, world, title="March documents",
                items=[("March bank statement, Vietcombank", "bank_statement", due),
                       ("Signed labour contracts of new hires", "contract", "")])
    assert r.status_code == 302, r.data[:400]
    request_url = r.headers["Location"]
    run_jobs()
    [mail] = smtp.to(world["a_client_member"].email)[-1:]
    body = mail.get_content()
    assert request_url in body
    assert "Vietcombank" not in body and "March bank statement" not in body  # only a link, no content

    member = app.test_client()
    login(member, world["a_client_member"])
    home = member.get(f"/t/{world.a.slug}/").get_data(as_text=True)
    assert "March bank statement, Vietcombank" in home  # open requests on the client's home page
    page = member.get(request_url).get_data(as_text=True)
    assert "0 of 2 received" in page
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        [item] = [i for i in db.session.scalars(select(RequestItem))  # descriptions are sealed: match here
                  if i.description == "March bank statement, Vietcombank"]
        item_id = item.id
    token = csrf_token(member, request_url)
    r = member.post(f"/t/{world.a.slug}/documents/upload", headers={"Accept": "application/json"},
                    data={"csrf_token": token, "item": str(item_id), "category": "receipt",  # the page's last choice
                          "file": [(io.BytesIO(samples.pdf(5151)), "vcb-march.pdf")]})
    assert r.json["results"][0]["status"] == "stored", r.json
    page = member.get(request_url).get_data(as_text=True)
    assert "1 of 2 received" in page
    outstanding = staff.get(f"/t/{world.a.slug}/requests").get_data(as_text=True)
    assert "Signed labour contracts of new hires" in outstanding
    assert "March bank statement, Vietcombank" not in outstanding.split('data-testid="outstanding"')[1].split(
        "</section>")[0]
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        item = db.session.get(RequestItem, item_id)
        assert item.fulfilled_at is not None and item.document_id is not None
        assert item.category == "bank_statement"
        # Filed as what the item asked for, not as the category the form happened to send.
        assert db.session.get(Document, item.document_id).category == "bank_statement"


def _tenant_requests(app, world) -> tuple[int, int, int]:
    """What tenant A holds: requests, their items, and queued jobs of the tenant (the e-mails to the client)."""
    from sqlalchemy import func

    from portal.documents.models import DocumentRequest
    from workers.models import OutboxJob

    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        return (db.session.scalar(select(func.count()).select_from(DocumentRequest)),
                db.session.scalar(select(func.count()).select_from(RequestItem)),
                db.session.scalar(select(func.count()).select_from(OutboxJob)
                                  .where(OutboxJob.scope_tenant == str(world.a.id))))


def test_a_request_without_items_is_refused_with_a_reason(app, world, staff):
    r = _create(staff, world, title="Nothing", items=[("", "other", "")])
    assert r.status_code == 422
    assert "at least one document" in r.get_data(as_text=True)
    assert _tenant_requests(app, world) == (0, 0, 0)  # nothing asked of the client, nobody e-mailed


def test_clients_cannot_create_requests(app, world):
    member = app.test_client()
    login(member, world["a_client_admin"])
    assert _create(member, world, title="x", items=[("y", "other", "")]).status_code == 403
    assert _tenant_requests(app, world) == (0, 0, 0)


def test_reminders_go_out_once_before_and_once_after_the_due_date(app, world, staff, smtp, run_jobs):
    soon = date.today() + timedelta(days=2)
    _create(staff, world, title="Payroll inputs", items=[("Timesheets for April", "payroll_input", soon.isoformat())])
    run_jobs()
    recipient = world["a_client_admin"].email
    before = len(smtp.to(recipient))
    with app.app_context(), for_tenant(world.a.id):
        assert send_reminders(world.a.id) >= 1
        assert send_reminders(world.a.id) == 0  # the scheduler ran twice: nothing more
    run_jobs()
    reminders = smtp.to(recipient)[before:]
    assert len(reminders) == 1 and soon.isoformat() in reminders[0]["Subject"]
    assert "Timesheets" not in reminders[0].get_content()
    with app.app_context(), for_tenant(world.a.id):
        assert send_reminders(world.a.id, today=soon + timedelta(days=1)) >= 1  # overdue
        assert send_reminders(world.a.id, today=soon + timedelta(days=2)) == 0
    run_jobs()
    overdue = smtp.to(recipient)[before + 1:]
    assert len(overdue) == 1 and "overdue" in overdue[0]["Subject"]


def test_the_scheduler_enqueues_each_period_once(app, world):
    from datetime import UTC, datetime

    from workers.models import OutboxJob
    from workers.schedule import tick

    moment = datetime(2031, 1, 1, 9, 30, tzinfo=UTC)

    def jobs(name: str) -> int:
        return len(db.session.scalars(select(OutboxJob).where(OutboxJob.name == name,
                                                               OutboxJob.scope_tenant == str(world.a.id))).all())

    with app.app_context():
        assert tick(moment) >= 2
        assert (jobs("documents.reminders"), jobs("work.recurring")) == (1, 1)
        assert tick(moment.replace(minute=35)) == 0  # the same hour, the same ten minutes: nothing
        tick(moment.replace(minute=45))  # the same hour: only the ten-minute audit checkpoint comes again
        assert (jobs("documents.reminders"), jobs("work.recurring")) == (1, 1)
        tick(moment.replace(hour=10))  # a new hour: the hourly reminders again; the tenant's day is the same
        assert (jobs("documents.reminders"), jobs("work.recurring")) == (2, 1)
        tick(moment.replace(hour=17))  # midnight in Ho Chi Minh City: the tenant's new day, its recurring tasks
        assert (jobs("documents.reminders"), jobs("work.recurring")) == (3, 2)

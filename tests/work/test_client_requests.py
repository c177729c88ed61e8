"""A client asks for work with attachments; documents are linked to tasks; an answer carries a document."""

from __future__ import annotations

import io

from tests.documents import samples
from tests.factories import csrf_token, login


def _upload(client, world, body: bytes, name: str) -> str:
    url = f"/t/{world.a.slug}/documents"
    r = client.post(url + "/upload", headers={"Accept": "application/json"},
                    data={"csrf_token": csrf_token(client, url), "category": "other",
                          "file": [(io.BytesIO(body), name)]})
    return r.json["results"][0]["url"].rsplit("/", 1)[1]


def test_a_client_asks_for_admin_work_with_attachments_and_staff_take_it(app, world):
    member = app.test_client()
    login(member, world["a_client_member"])
    contract = _upload(member, world, samples.pdf(9191), "labour contract Nguyen.pdf")
    tasks = f"/t/{world.a.slug}/tasks"
    r = member.post(tasks + "/request", data={"csrf_token": csrf_token(member, tasks),
                                              "title": "Register two new employees for social insurance",
                                              "description": "Start date 1 April", "documents": [contract]})
    assert r.status_code == 302
    task_url = r.headers["Location"]
    page = member.get(task_url).get_data(as_text=True)
    assert "labour contract Nguyen.pdf" in page and "Received" in page

    staff = app.test_client()
    login(staff, world["staff"])
    r = staff.post("/provider/work/take", data={"csrf_token": csrf_token(staff, "/provider/work"), "line": "admin"})
    assert r.headers["Location"] == task_url
    assert "labour contract Nguyen.pdf" in staff.get(task_url).get_data(as_text=True)


def test_another_tenants_document_cannot_be_attached(app, world):
    b_admin = app.test_client()
    login(b_admin, world["b_client_admin"])
    url = f"/t/{world.b.slug}/documents"
    r = b_admin.post(url + "/upload", headers={"Accept": "application/json"},
                     data={"csrf_token": csrf_token(b_admin, url), "category": "other",
                           "file": [(io.BytesIO(samples.pdf(9292)), "beta.pdf")]})
    b_doc = r.json["results"][0]["url"].rsplit("/", 1)[1]
    member = app.test_client()
    login(member, world["a_client_member"])
    tasks = f"/t/{world.a.slug}/tasks"
    r = member.post(tasks + "/request", data={"csrf_token": csrf_token(member, tasks), "title": "Sneaky",
                                              "documents": [b_doc]})
    assert r.status_code == 404
    assert "Sneaky" not in member.get(tasks).get_data(as_text=True)  # nothing was created


def test_the_client_attaches_a_document_to_an_answer(app, world):
    manager = app.test_client()
    login(manager, world["manager"])
    tasks = f"/t/{world.a.slug}/tasks"
    task_url = manager.post(tasks, data={"csrf_token": csrf_token(manager, tasks), "title": "Q1 VAT return",
                                         "line": "bookkeeping", "assignee": str(world["staff"].id)}
                            ).headers["Location"]
    staff = app.test_client()
    login(staff, world["staff"])
    token = csrf_token(staff, task_url)
    staff.post(task_url + "/move", data={"csrf_token": token, "move": "start"})
    staff.post(task_url + "/move", data={"csrf_token": token, "move": "ask_client",
                                         "reason": "Please send the March sales ledger"})
    member = app.test_client()
    login(member, world["a_client_member"])
    ledger = _upload(member, world, samples.csv_bytes(12), "sales-march.csv")
    r = member.post(task_url + "/move", data={"csrf_token": csrf_token(member, task_url), "move": "answer",
                                              "reason": "Here it is", "document": ledger})
    assert r.status_code == 302
    page = staff.get(task_url).get_data(as_text=True)
    assert "sales-march.csv" in page and "In progress" in page


def test_invoices_of_a_month_gather_in_that_months_bookkeeping_task(app, world, run_jobs):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.work.models import Task, TaskDocument
    from tenants.context import for_tenant

    member = app.test_client()
    login(member, world["a_client_member"])
    url = f"/t/{world.a.slug}/documents"
    for seed, name in ((9301, "inv-1.pdf"), (9302, "inv-2.pdf")):
        r = member.post(url + "/upload", headers={"Accept": "application/json"},
                        data={"csrf_token": csrf_token(member, url), "category": "invoice", "period": "2031-03",
                              "file": [(io.BytesIO(samples.pdf(seed)), name)]})
        assert r.json["results"][0]["status"] == "stored"
    run_jobs()  # intake's last step routes each new document
    with app.app_context(), for_tenant(world.a.id):
        task = db.session.scalars(select(Task).where(Task.recurrence_key == "upload:bookkeeping:2031-03")).one()
        linked = db.session.scalars(select(TaskDocument).where(TaskDocument.task_id == task.id)).all()
        # In the tenant's language (A is a Vietnamese company), as everyone in the tenant reads it.
        assert task.title == "Kế toán 2031-03: chứng từ cần hạch toán" and task.source == "upload"
        assert len(linked) == 2

    from tenants.models import Tenant

    with app.app_context():
        db.session.get(Tenant, world.a.id).locale = "en"
        db.session.commit()
    r = member.post(url + "/upload", headers={"Accept": "application/json"},
                    data={"csrf_token": csrf_token(member, url), "category": "payroll_input", "period": "2031-03",
                          "file": [(io.BytesIO(samples.pdf(9303)), "hires.pdf")]})
    assert r.json["results"][0]["status"] == "stored"
    run_jobs()
    with app.app_context(), for_tenant(world.a.id):
        task = db.session.scalars(select(Task).where(Task.recurrence_key == "upload:payroll:2031-03")).one()
        assert task.title == "Payroll 2031-03: inputs received"

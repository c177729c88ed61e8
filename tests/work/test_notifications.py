"""Notifications of work events: the right people, e-mails with no content, once, now or in a daily digest."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta

from flask import render_template_string
from flask_login import login_user
from sqlalchemy import func, select

from portal.extensions import db
from portal.work.models import Notification
from portal.work.notify import send_digests, send_due_reminders, send_now, unread_count
from portal.work.services import create_task
from tenants.context import for_tenant
from tenants.models import Tenant, User, utcnow
from tests.factories import csrf_token, login

TITLE = "Reconcile the Vietcombank account for March"
QUESTION = "Who received the 12,500,000 VND transfer on 3 March?"
ANSWER = "Our landlord, Mr Binh: it is the March rent"
SECRET_NOTE = "internal: the director double-booked the rent"
CLIENTS_A = ("a_client_admin", "a_client_approver", "a_client_member")
CLIENTS_B = ("b_client_admin", "b_client_approver", "b_client_member")
# The header's link, as portal/templates/base.html shows it.
HEADER = """{% set unread = unread_count() %}
<a href="{{ url_for('work.notifications') }}">{{ _("Notifications") }}{% if unread %} <span class="badge"
   title="{{ ngettext('%(num)d unread notification', '%(num)d unread notifications', unread) }}">{{ unread }}</span>
{%- endif %}</a>"""


def _as(app, world, key: str):
    client = app.test_client()
    login(client, world[key])
    return client


def _open_task(client, world, **fields) -> str:
    url = f"/t/{world.a.slug}/tasks"
    r = client.post(url, data={"csrf_token": csrf_token(client, url), "title": TITLE, "line": "bookkeeping",
                               "due": "2031-05-01", **fields})
    assert r.status_code == 302, r.data[:300]
    return r.headers["Location"]


def _move(client, task_url: str, move: str, reason: str = "") -> None:
    r = client.post(task_url + "/move", data={"csrf_token": csrf_token(client, task_url), "move": move,
                                              "reason": reason})
    assert r.status_code == 302, r.data[:400]


def _notifications(app, world, user_key: str) -> list[tuple[str, uuid.UUID]]:
    with app.app_context(), for_tenant(world.a.id):
        return [(n.kind, n.task_id) for n in db.session.scalars(
            select(Notification).where(Notification.user_id == world[user_key].id).order_by(Notification.created_at))]


def _assert_no_content(mail, *secrets: str) -> str:
    body = mail.get_content()
    for secret in (TITLE, *secrets):
        assert secret not in body and secret not in mail["Subject"]
    return body


def test_an_assignment_emails_the_assignee_a_link_and_nothing_to_oneself(app, world, smtp, run_jobs):
    manager = _as(app, world, "manager")
    task = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    run_jobs()
    [mail] = smtp.to(world["staff"].email)
    assert mail["Subject"] == f"{world.a.name}: a task was assigned to you"
    body = _assert_no_content(mail)
    assert f"http://localhost{task}" in body and "http://localhost/notifications" in body
    # Saving the same assignee again (a new reviewer only) is no news; assigning oneself never is.
    r = manager.post(task + "/assign", data={"csrf_token": csrf_token(manager, task),
                                             "assignee": str(world["staff"].id), "reviewer": ""})
    assert r.status_code == 302
    _open_task(manager, world, assignee=str(world["manager"].id))
    run_jobs()
    assert len(smtp.to(world["staff"].email)) == 1
    assert smtp.to(world["manager"].email) == [] and _notifications(app, world, "manager") == []


def test_a_question_reaches_the_client_users_and_the_answer_the_assignee_without_content(app, world, smtp,
                                                                                          run_jobs):
    manager = _as(app, world, "manager")
    task = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    staff = _as(app, world, "staff")
    _move(staff, task, "start")
    _move(staff, task, "ask_client", QUESTION)
    run_jobs()
    for key in CLIENTS_A:
        [mail] = smtp.to(world[key].email)
        assert mail["Subject"] == f"{world.a.name}: a question from your accountants"
        assert f"http://localhost{task}" in _assert_no_content(mail, QUESTION)
    for key in CLIENTS_B:
        assert smtp.to(world[key].email) == []

    member = _as(app, world, "a_client_member")
    _move(member, task, "answer", ANSWER)
    run_jobs()
    mails = smtp.to(world["staff"].email)
    assert [m["Subject"] for m in mails] == [f"{world.a.name}: a task was assigned to you",
                                             f"{world.a.name}: the client answered a question"]
    _assert_no_content(mails[-1], QUESTION, ANSWER)
    assert len(smtp.to(world["a_client_member"].email)) == 1  # the answerer is not told of their own answer


def test_approval_needed_reaches_the_approvers_and_the_verdict_the_assignee_and_reviewer(app, world, smtp,
                                                                                         run_jobs):
    manager = _as(app, world, "manager")
    task = _open_task(manager, world, line="payroll", assignee=str(world["staff"].id),
                      reviewer=str(world["manager"].id))
    staff = _as(app, world, "staff")
    _move(staff, task, "start")
    _move(staff, task, "submit")
    run_jobs()
    [review] = smtp.to(world["manager"].email)
    assert review["Subject"] == f"{world.a.name}: a task is ready for your review"
    _move(manager, task, "approve")  # payroll needs the client's word: awaiting approval
    run_jobs()
    for key in ("a_client_admin", "a_client_approver"):
        [mail] = smtp.to(world[key].email)
        assert mail["Subject"] == f"{world.a.name}: a task needs your approval"
        assert f"http://localhost{task}" in _assert_no_content(mail)
    assert smtp.to(world["a_client_member"].email) == []  # members cannot approve

    approver = _as(app, world, "a_client_approver")
    _move(approver, task, "client_approve")
    run_jobs()
    for key in ("staff", "manager"):
        assert smtp.to(world[key].email)[-1]["Subject"] == f"{world.a.name}: the client approved a task"
    assert len(smtp.to(world["a_client_approver"].email)) == 1


def test_a_digest_reader_gets_one_email_a_day_while_others_get_each_at_once(app, world, smtp, run_jobs):
    run_jobs()  # whatever earlier tests left queued runs now, not in the middle of this test
    staff = _as(app, world, "staff")
    settings = staff.post("/notifications/settings", data={"csrf_token": csrf_token(staff, "/notifications"),
                                                           "mode": "sometimes"})
    assert "Choose" in staff.get(settings.headers["Location"]).get_data(as_text=True)
    staff.post("/notifications/settings", data={"csrf_token": csrf_token(staff, "/notifications"),
                                                "mode": "digest"})
    assert 'value="digest" checked' in staff.get("/notifications").get_data(as_text=True)

    manager = _as(app, world, "manager")
    first = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    second = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    _move(staff, first, "start")
    _move(staff, first, "submit")
    run_jobs()
    assert smtp.to(world["staff"].email) == []  # the digest reader: nothing yet
    assert len(smtp.to(world["manager"].email)) == 1  # the immediate reader: the review request at once

    with app.app_context():
        assert send_digests() >= 1
        send_digests()  # the scheduler ran twice: nothing more
    run_jobs()
    [digest] = smtp.to(world["staff"].email)
    assert digest["Subject"] == "Your daily summary: 2 updates"
    body = _assert_no_content(digest)
    assert f"http://localhost{first}" in body and f"http://localhost{second}" in body
    assert body.count("a task was assigned to you") == 2
    assert len(smtp.to(world["manager"].email)) == 1  # already e-mailed: not in a digest again


def test_the_email_job_run_twice_sends_once(app, world, smtp, run_jobs):
    manager = _as(app, world, "manager")
    _open_task(manager, world, assignee=str(world["staff"].id))
    with app.app_context(), for_tenant(world.a.id):
        ids = db.session.scalars(select(Notification.id).where(Notification.user_id == world["staff"].id)).all()
        assert len(ids) == 1
        assert send_now(ids) == 1
        db.session.commit()
        assert send_now(ids) == 0
        db.session.commit()
    run_jobs()  # the queued job runs too, and finds nothing left to send
    assert len(smtp.to(world["staff"].email)) == 1


def _due_tasks(app, world, today: date) -> None:
    with app.app_context(), for_tenant(world.a.id):
        tenant, manager = db.session.get(Tenant, world.a.id), db.session.get(User, world["manager"].id)
        for days in (1, -2, 5):  # due tomorrow, overdue, not yet
            create_task(manager, tenant, title=f"{TITLE} ({days})", service_line_key="bookkeeping",
                        due=today + timedelta(days=days), assignee_id=str(world["staff"].id))


def test_due_soon_and_overdue_reminders_go_to_the_assignee_once_each(app, world, smtp, run_jobs):
    today = date(2031, 3, 10)  # far from the real date: the real scheduler never picks these tasks
    _due_tasks(app, world, today)
    with app.app_context(), for_tenant(world.a.id):
        assert send_due_reminders(world.a.id, today=today) == 2
        assert send_due_reminders(world.a.id, today=today) == 0  # the scheduler ran twice
        assert send_due_reminders(world.a.id, today=today + timedelta(days=1)) == 0  # nothing new
        assert send_due_reminders(world.a.id, today=today + timedelta(days=2)) == 1  # tomorrow's is now overdue
        assert send_due_reminders(world.a.id, today=today + timedelta(days=3)) == 0
    run_jobs()
    subjects = [m["Subject"] for m in smtp.to(world["staff"].email)]
    assert subjects.count(f"{world.a.name}: a task assigned to you is due soon") == 1
    assert subjects.count(f"{world.a.name}: a task assigned to you is overdue") == 2
    for mail in smtp.to(world["staff"].email):
        _assert_no_content(mail)
    assert sorted(k for k, _t in _notifications(app, world, "staff")).count("overdue") == 2


def test_two_reminder_runs_at_once_still_remind_once(app, world):
    today = date(2032, 7, 1)
    _due_tasks(app, world, today)
    made: list[int] = []

    def run() -> None:
        with app.app_context(), for_tenant(world.a.id):
            made.append(send_due_reminders(world.a.id, today=today))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(made) == [0, 0, 0, 2]


def test_the_page_lists_unread_first_with_links_and_marks_all_read(app, world, run_jobs):
    manager = _as(app, world, "manager")
    first = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    second = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    staff = _as(app, world, "staff")
    page = staff.get("/notifications").get_data(as_text=True)
    assert "2 unread notifications" in page and world.a.name in page
    assert page.index(f'href="{second}"') < page.index(f'href="{first}"')  # newest first
    assert page.count('data-unread="1"') == 2 and TITLE not in page
    with app.test_request_context("/"):
        assert "badge" not in render_template_string(HEADER)  # signed out: no count, no query
        login_user(db.session.get(User, world["staff"].id))
        header = render_template_string(HEADER)
        assert 'href="/notifications"' in header and 'title="2 unread notifications">2</span>' in header

    r = staff.post("/notifications/read", data={"csrf_token": csrf_token(staff, "/notifications")})
    assert r.status_code == 302
    page = staff.get("/notifications").get_data(as_text=True)
    assert "0 unread notifications" in page and 'data-unread="1"' not in page
    assert f'href="{first}"' in page and f'href="{second}"' in page  # still listed, read
    with app.app_context():
        assert unread_count(db.session.get(User, world["staff"].id)) == 0
    # A new one comes first again, unread.
    third = _open_task(manager, world, assignee=str(world["staff"].id))
    page = staff.get("/notifications").get_data(as_text=True)
    assert "1 unread notification" in page and page.index(f'href="{third}"') < page.index(f'href="{second}"')


def test_another_users_notifications_never_appear(app, world):
    manager = _as(app, world, "manager")
    task = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    staff = _as(app, world, "staff")
    _move(staff, task, "ask_client", QUESTION)

    admin = _as(app, world, "a_client_admin")
    page = admin.get("/notifications").get_data(as_text=True)
    assert "1 unread notification" in page and "A question from your accountants" in page
    assert "assigned to you" not in page
    staff_page = staff.get("/notifications").get_data(as_text=True)
    assert "1 unread notification" in staff_page and "question from your accountants" not in staff_page
    # Marking read is one's own business: the others' stay unread.
    admin.post("/notifications/read", data={"csrf_token": csrf_token(admin, "/notifications")})
    assert "1 unread notification" in staff.get("/notifications").get_data(as_text=True)
    with app.app_context():
        assert unread_count(db.session.get(User, world["a_client_member"].id)) == 1
    for key in ("b_client_admin", "unassigned_staff"):
        other = _as(app, world, key)
        page = other.get("/notifications").get_data(as_text=True)
        assert "0 unread notifications" in page and task not in page and "Nothing yet" in page


def test_an_internal_comment_notifies_no_client(app, world, smtp, run_jobs):
    manager = _as(app, world, "manager")
    task = _open_task(manager, world, assignee=str(world["staff"].id), reviewer=str(world["manager"].id))
    staff = _as(app, world, "staff")
    token = csrf_token(staff, task)
    staff.post(task + "/comment", data={"csrf_token": token, "body": SECRET_NOTE, "internal": "1"})
    _move(staff, task, "start")
    _move(staff, task, "submit")
    _move(manager, task, "request_changes", SECRET_NOTE)  # an internal note too
    run_jobs()
    for key in CLIENTS_A:
        assert smtp.to(world[key].email) == [] and _notifications(app, world, key) == []
        client = _as(app, world, key)
        assert "0 unread notifications" in client.get("/notifications").get_data(as_text=True)
    for mail in smtp.to(world["staff"].email) + smtp.to(world["manager"].email):
        _assert_no_content(mail, SECRET_NOTE)


def test_the_scheduler_runs_the_digest_once_a_day_for_everyone_and_due_reminders_per_tenant(app, world, smtp,
                                                                                             run_jobs):
    import secrets

    from workers import schedule
    from workers.models import OutboxJob

    run_jobs()  # whatever earlier tests left queued runs now, not in the middle of this test
    # The staff member reads a daily digest and has a task due tomorrow (the real tomorrow: the jobs
    # run as the scheduler's worker runs them, on today's date).
    staff = _as(app, world, "staff")
    staff.post("/notifications/settings", data={"csrf_token": csrf_token(staff, "/notifications"),
                                                "mode": "digest"})
    with app.app_context(), for_tenant(world.a.id):
        create_task(db.session.get(User, world["manager"].id), db.session.get(Tenant, world.a.id), title=TITLE,
                    service_line_key="bookkeeping", due=utcnow().date() + timedelta(days=1),
                    assignee_id=str(world["staff"].id))

    def queued(after: int) -> list[tuple[str, list, str | None]]:
        return [(j.name, j.args, j.scope_tenant) for j in db.session.scalars(
            select(OutboxJob).where(OutboxJob.id > after, OutboxJob.name.in_(("work.digest", "work.due_soon")))
            .order_by(OutboxJob.id))]

    # A day of its own in the coming weeks (no other test ticks it), just after midnight.
    moment = utcnow().replace(hour=0, minute=5, second=0, microsecond=0) + timedelta(days=2 + secrets.randbelow(25))
    with app.app_context():
        start = db.session.scalar(select(func.max(OutboxJob.id))) or 0
        schedule.tick(moment)
        jobs = queued(start)
        assert [j for j in jobs if j[0] == "work.digest"] == [("work.digest", [], None)]  # once, for everyone
        assert [j for j in jobs if j[2] == str(world.a.id)] == [("work.due_soon", [str(world.a.id)], str(world.a.id))]
        later = db.session.scalar(select(func.max(OutboxJob.id)))
        # Later the same day, for the provider (UTC) and for the tenant (Ho Chi Minh City, 23:00):
        # no second digest, no second reminders. (Tenants of other tests, in zones west of UTC, may have begun
        # a new day by then: theirs are not this tenant's.)
        schedule.tick(moment.replace(hour=16))
        assert [j for j in queued(later) if j[2] in (None, str(world.a.id))] == []
        db.session.rollback()
    run_jobs()
    with app.app_context():
        unfinished = db.session.scalars(select(OutboxJob.name).where(
            OutboxJob.id > start, OutboxJob.name.in_(("work.digest", "work.due_soon")),
            OutboxJob.finished_at.is_(None))).all()
        assert unfinished == []
    # The reminder ran before the digest: the one e-mail of the day lists both, and nothing else came.
    [digest] = smtp.to(world["staff"].email)
    assert digest["Subject"] == "Your daily summary: 2 updates"
    body = _assert_no_content(digest)
    assert "a task was assigned to you" in body and "a task assigned to you is due soon" in body

"""Work under concurrency, crashes and people leaving, against the real database.

An approval and a new version at the same moment; a late invoice for a month already done;
a person removed from a client while their timer runs and their task is in progress; a
tenant whose days are not UTC's.
"""

from __future__ import annotations

import threading
import time as clock
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.documents import services as documents
from portal.documents.models import Document
from portal.extensions import db
from portal.work import notify, recurring, services, time
from portal.work.models import Notification, Task, TaskEvent, TimeEntry
from portal.work.states import State
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.lifecycle import assign, unassign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.documents import samples
from tests.factories import TenantRef, make_person, make_tenant


def _as(user_id, tenant_id, role):  # noqa: ANN001, ANN202
    return bound(Scope(user_id=user_id, tenant_ids=frozenset({tenant_id}), role=role))


@pytest.fixture
def team(app):
    """A tenant with a client approver, a manager and a staff member assigned, and a provider admin."""
    with app.app_context():
        tenant = make_tenant()
        people = {"approver": make_person(Role.CLIENT_APPROVER, tenant), "manager": make_person(Role.MANAGER),
                  "staff": make_person(Role.STAFF), "admin": make_person(Role.PROVIDER_ADMIN)}
        admin = db.session.get(User, people["admin"].id)
        for key in ("manager", "staff"):
            assign(admin, db.session.get(Tenant, tenant.id), db.session.get(User, people[key].id))
        return TenantRef.of(tenant), {k: p.id for k, p in people.items()}


def _user(uid) -> User:  # noqa: ANN001
    return db.session.get(User, uid)


def _task_awaiting_approval(app, tenant: TenantRef, ids: dict) -> tuple[str, uuid.UUID, str]:
    """A payroll task whose product (a document) waits for the client's approval; (task, document, sha)."""
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            result = documents.upload(_user(ids["staff"]), t, [samples.pdf(5050)], filename="payslips.pdf",
                                      target=documents.upload_target(_user(ids["staff"])))
            doc_id = result.document.id
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            task = services.create_task(_user(ids["manager"]), t, title="March payroll", service_line_key="payroll",
                                        assignee_id=str(ids["staff"]), reviewer_id=str(ids["manager"]),
                                        needs_approval=True)
            task_id = str(task.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            services.attach_product(_user(ids["staff"]), task_id, str(doc_id))
            services.move(_user(ids["staff"]), t, task_id, "start")
            services.move(_user(ids["staff"]), t, task_id, "submit")
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            services.move(_user(ids["manager"]), t, task_id, "approve")
            sha = db.session.get(Document, doc_id).latest.object.sha256
        return task_id, doc_id, sha


def test_an_approval_and_a_new_version_at_the_same_moment_never_leave_the_old_version_approved(
        app, team, monkeypatch, run_jobs):
    tenant, ids = team
    task_id, doc_id, seen = _task_awaiting_approval(app, tenant, ids)
    approving = threading.Event()
    real = notify.task_event

    def slow(task, event, actor):  # noqa: ANN001, ANN202
        # The approval has read the version it approves; it commits a moment later.
        if event == "client_approve":
            approving.set()
            clock.sleep(0.5)
        return real(task, event, actor)

    monkeypatch.setattr(notify, "task_event", slow)
    errors: list[BaseException] = []

    def approve() -> None:
        with app.app_context(), _as(ids["approver"], tenant.id, Role.CLIENT_APPROVER):
            try:
                services.move(_user(ids["approver"]), db.session.get(Tenant, tenant.id), task_id, "client_approve",
                              seen_sha256=seen)
            except services.Conflict as exc:  # the new version came first: the approval is refused
                errors.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=approve)
    thread.start()
    assert approving.wait(10)
    with app.app_context(), _as(ids["staff"], tenant.id, Role.STAFF):
        result = documents.upload(_user(ids["staff"]), db.session.get(Tenant, tenant.id), [samples.pdf(5051)],
                                  filename="payslips-v2.pdf",
                                  target=documents.upload_target(_user(ids["staff"]), document_id=str(doc_id)))
        assert result.status == "version"
    thread.join(10)
    run_jobs()  # the vault announced the version; the work voids an approval of the older one
    with app.app_context(), _as(ids["manager"], tenant.id, Role.MANAGER):
        task = db.session.get(Task, uuid.UUID(task_id))
        latest = db.session.get(Document, doc_id).latest.object.sha256
        # Never "done, approved exactly this version" beside a version the client did not see.
        assert not (task.state == State.DONE and task.approved_sha256 != latest)
        assert task.state == State.AWAITING_APPROVAL and task.approved_sha256 is None
        assert errors == []  # here the approval committed first, so the new version voided it
        voided = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "task.approval_invalidated",
                                                             AuditEvent.object_id == task_id)).all()
        assert len(voided) == 1


def test_a_late_invoice_for_a_month_already_done_opens_a_follow_up_in_the_queue(app, team, run_jobs):
    tenant, ids = team
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            first = documents.upload(_user(ids["staff"]), t, [samples.pdf(5060)], filename="invoice-1.pdf",
                                     target=documents.upload_target(_user(ids["staff"]), category="invoice",
                                                                    period="2031-04"))
        run_jobs()  # intake routes the new document to its month's task
        with _as(ids["staff"], tenant.id, Role.STAFF):
            month_task = db.session.scalar(select(Task).where(Task.recurrence_key == "upload:bookkeeping:2031-04"))
            assert month_task is not None
            month_id = month_task.id
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            services.move(_user(ids["manager"]), t, str(month_id), "cancel", reason="posted by hand")
        with _as(ids["staff"], tenant.id, Role.STAFF):
            late = documents.upload(_user(ids["staff"]), t, [samples.pdf(5061)], filename="invoice-2.pdf",
                                    target=documents.upload_target(_user(ids["staff"]), category="invoice",
                                                                   period="2031-04"))
            again = documents.upload(_user(ids["staff"]), t, [samples.pdf(5062)], filename="invoice-3.pdf",
                                     target=documents.upload_target(_user(ids["staff"]), category="invoice",
                                                                    period="2031-04"))
            assert first.ok and late.ok and again.ok
        run_jobs()
        with _as(ids["staff"], tenant.id, Role.STAFF):
            tasks = db.session.scalars(select(Task).where(Task.recurrence_key.startswith("upload:bookkeeping:2031-04"))
                                       .order_by(Task.created_at)).all()
            assert [t_.recurrence_key for t_ in tasks] == ["upload:bookkeeping:2031-04",
                                                           "upload:bookkeeping:2031-04#2"]
            follow_up = tasks[1]
            # In the line's queue: open and nobody's; both late invoices in it, none in the finished task.
            assert follow_up.state == State.OPEN and follow_up.assignee_id is None
            from flask_babel import force_locale

            from portal.intake.routing import _BOOKKEEPING_LATE

            with force_locale(t.locale):  # titled in the tenant's language, as the late follow-up
                assert follow_up.title == str(_BOOKKEEPING_LATE) % {"month": "2031-04"}
            linked = {e.data.get("document_id") for e in follow_up.events if e.kind == "document_linked"}
            assert linked == {str(late.document.id), str(again.document.id)}
            db.session.rollback()


def test_a_person_removed_from_a_client_leaves_no_timer_running_and_no_task_stalled(app, team):
    tenant, ids = team
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        other = make_tenant()
        admin = _user(ids["admin"])
        assign(admin, other, _user(ids["staff"]))
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            taken = services.create_task(_user(ids["manager"]), t, title="Register new hires",
                                         service_line_key="admin", assignee_id=str(ids["staff"]))
            review = services.create_task(_user(ids["manager"]), t, title="Check the VAT return",
                                          service_line_key="bookkeeping", assignee_id=str(ids["manager"]),
                                          reviewer_id=str(ids["staff"]))
            taken_id, review_id = str(taken.id), str(review.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            services.move(_user(ids["staff"]), t, taken_id, "start")
            time.start_timer(_user(ids["staff"]), taken_id)
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            services.move(_user(ids["manager"]), t, review_id, "start")
            services.move(_user(ids["manager"]), t, review_id, "submit")

        unassign(_user(ids["admin"]), t, _user(ids["staff"]))  # the managers are told (not whoever did it)

        with _as(ids["manager"], tenant.id, Role.MANAGER):
            running = db.session.scalars(select(TimeEntry).where(TimeEntry.user_id == ids["staff"],
                                                                 TimeEntry.ended_at.is_(None))).all()
            assert running == []  # stopped, with the time it ran
            entry = db.session.scalars(select(TimeEntry).where(TimeEntry.user_id == ids["staff"])).one()
            assert entry.minutes >= 1 and entry.ended_at is not None
            task = db.session.get(Task, uuid.UUID(taken_id))
            assert task.state == State.OPEN and task.assignee_id is None  # back in its line's queue
            assert db.session.get(Task, uuid.UUID(review_id)).reviewer_id is None
            assert any(e.kind == "released" for e in db.session.scalars(select(TaskEvent).where(
                TaskEvent.task_id == task.id)))
            assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "task.released")).all()
            told = db.session.scalars(select(Notification).where(Notification.user_id == ids["manager"],
                                                                 Notification.kind == "released")).all()
            assert len(told) == 2
            db.session.rollback()
        # The person's other client is not blocked by a timer they could not reach any more.
        with _as(ids["staff"], other.id, Role.STAFF):
            elsewhere = services.create_task(_user(ids["staff"]), db.session.get(Tenant, other.id),
                                             title="Other work", service_line_key="admin")
            assert time.start_timer(_user(ids["staff"]), str(elsewhere.id)).stopped is None


@pytest.fixture
def hcm_morning():
    """A clock at 06:30 on 1 March 2026 in Ho Chi Minh City: still 28 February in UTC."""
    moment = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        yield moment


def test_time_is_counted_on_the_tenants_own_days(app, team, hcm_morning):
    tenant, ids = team
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        assert t.timezone == "Asia/Ho_Chi_Minh"
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            task = services.create_task(_user(ids["manager"]), t, title="Early work", service_line_key="admin",
                                        assignee_id=str(ids["staff"]))
            task_id = str(task.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            # A timer from 06:30 to 08:30 on 1 March, local time.
            db.session.add(TimeEntry(tenant_id=tenant.id, task_id=task.id, user_id=ids["staff"],
                                     started_at=hcm_morning, ended_at=hcm_morning + timedelta(hours=2),
                                     minutes=120))
            db.session.commit()
            # "Today" in Ho Chi Minh City is 1 March, though UTC's is 28 February: accepted.
            entry = time.add_entry(_user(ids["staff"]), task_id, day="2026-03-01", minutes=15, billable=True)
            assert entry.started_at == datetime(2026, 2, 28, 17, 0, tzinfo=UTC)  # midnight, local
            with pytest.raises(services.WorkError, match="future"):
                time.add_entry(_user(ids["staff"]), task_id, day="2026-03-02", minutes=15, billable=True)
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            march, february = time.month_totals(2026, 3), time.month_totals(2026, 2)
            assert march.billable == 135 and february.billable == 0
            assert time.today() == date(2026, 3, 1)


def test_recurring_tasks_open_on_the_tenants_date(app, team, hcm_morning, monkeypatch):
    tenant, ids = team
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            recurring.add_template(_user(ids["manager"]), t, title="Cash count", service_line_key="admin",
                                   rule={"kind": "day_of_month", "day": 2}, since=date(2026, 2, 1), lead_days=1)
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            # Due Monday 2 March, opened a day before: 1 March has begun in the tenant's city, not in UTC.
            assert recurring.create_due_tasks(tenant.id) >= 1
            keys = db.session.scalars(select(Task.recurrence_key).where(Task.source == "recurring")).all()
            assert any(k.endswith(":2026-03") for k in keys), keys


def test_work_is_in_the_audit_log_and_only_what_the_client_may_see_is_in_its_access_log(app, team):
    from tests.factories import login

    tenant, ids = team
    with app.app_context():
        t = db.session.get(Tenant, tenant.id)
        with _as(ids["manager"], tenant.id, Role.MANAGER):
            task = services.create_task(_user(ids["manager"]), t, title="Audited work", service_line_key="admin",
                                        assignee_id=str(ids["staff"]))
            task_id = str(task.id)
        with _as(ids["staff"], tenant.id, Role.STAFF):
            services.move(_user(ids["staff"]), t, task_id, "start")
            services.comment(_user(ids["staff"]), task_id, "for the client")
            services.comment(_user(ids["staff"]), task_id, "secret internal note", internal=True)
            time.add_entry(_user(ids["staff"]), task_id, day=time.today().isoformat(), minutes=20, billable=True)
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            rows = db.session.scalars(select(AuditEvent).where(AuditEvent.object_id == task_id)
                                      .order_by(AuditEvent.seq)).all()
            seen = [(e.action, e.internal) for e in rows]
            db.session.rollback()
    assert seen == [("task.created", False), ("task.assigned", True), ("task.moved", False),
                    ("task.commented", False), ("task.commented", True), ("time.logged", True)]
    # The client admin's access log shows the work, never the internal note or the time; the manager's all.
    with app.app_context():
        admin = make_person(Role.CLIENT_ADMIN, db.session.get(Tenant, tenant.id))
        manager = _person(ids["manager"], Role.MANAGER)
    client = app.test_client()
    login(client, admin)
    shown = client.get(f"/t/{tenant.slug}/access-log").get_data(as_text=True)
    assert shown.count('data-action="task.commented"') == 1 and 'data-action="task.created"' in shown
    assert 'data-action="time.logged"' not in shown and 'data-action="task.assigned"' not in shown
    provider = app.test_client()
    login(provider, manager)
    full = provider.get(f"/t/{tenant.slug}/access-log").get_data(as_text=True)
    assert full.count('data-action="task.commented"') == 2 and 'data-action="time.logged"' in full


def _person(user_id, role):  # noqa: ANN001, ANN202
    """The factories' Person of an existing user (their password; provider roles' TOTP secret re-enrolled)."""
    import pyotp

    from tenants.fields import seal
    from tests.factories import Person

    secret = pyotp.random_base32()
    user = db.session.get(User, user_id)
    user.totp_secret_enc = seal(secret)
    db.session.commit()
    return Person(user.id, user.email, role, totp_secret=secret)

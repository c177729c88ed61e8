"""Closing a month with the client: in review, a second person, the client's approval bound to the report's
hash, the books moving in between, and a reopening that voids the approval (real PostgreSQL, rq jobs)."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import select

from portal.documents.models import DocumentVersion, StoredObject
from portal.extensions import db
from portal.ledger import closing, reports, services
from portal.ledger.models import Period
from portal.work import services as work
from portal.work.models import Task
from portal.work.states import IllegalMove
from tenants.audit import AuditEvent
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import make_person
from tests.ledger.test_ledger import DAY, PURCHASE, SALE, as_person, books, post

NOVEMBER = date(2026, 11, 1)


def _reviewer(app, world):  # noqa: ANN001, ANN202
    with app.app_context():
        manager = make_person(Role.MANAGER)
        assign(db.session.get(User, world.admin.id), db.session.get(Tenant, world.id), db.session.get(User, manager.id))
        db.session.commit()
        return manager


def _report_sha(period: Period) -> str:
    return db.session.scalar(select(StoredObject.sha256).join(DocumentVersion, DocumentVersion.object_id ==
                                                              StoredObject.id)
                             .where(DocumentVersion.document_id == period.report_id)
                             .order_by(DocumentVersion.number.desc()).limit(1))


def test_a_month_closes_when_the_client_approves_its_report_as_it_is_and_not_before(app, run_jobs):
    world, = (books(app),)
    manager = _reviewer(app, world)
    with app.app_context(), as_person(world, world.staff) as (staff, tenant):
        post(world, world.staff, SALE)
        with pytest.raises(services.LedgerError, match="someone else"):
            closing.start(staff, tenant, NOVEMBER, str(staff.id))
        period = closing.start(staff, tenant, NOVEMBER, str(manager.id))
        assert period.state == "in_review" and period.task_id is not None
        task_id, first_sha = str(period.task_id), _report_sha(period)
        assert first_sha == hashlib.sha256(closing.report_csv(NOVEMBER)).hexdigest()
        post(world, world.staff, PURCHASE)  # the books move while in review: the report is written again
        period = services.period_of(NOVEMBER)
        second_sha = _report_sha(period)
        assert second_sha != first_sha
        work.move(staff, tenant, task_id, "submit")
    run_jobs()
    with app.app_context(), as_person(world, manager) as (reviewer, tenant):
        work.move(reviewer, tenant, task_id, "approve")  # the second person's review
    with app.app_context(), as_person(world, world.client) as (client, tenant):
        assert db.session.get(Task, task_id).state == "awaiting_approval"
        with pytest.raises(work.Conflict):  # approving the report as it was before the purchase
            work.move(client, tenant, task_id, "client_approve", seen_sha256=first_sha)
        db.session.rollback()
        work.move(client, tenant, task_id, "client_approve", seen_sha256=second_sha)
    run_jobs()  # task.done reaches the ledger
    with app.app_context(), as_person(world, world.staff) as (staff, tenant):
        period = services.period_of(NOVEMBER)
        assert period.state == "closed"
        assert period.closed_hash == services.month_hash(reports.trial_balance(date(2026, 11, 30), since=NOVEMBER))
        with pytest.raises(services.LedgerError, match="is closed"):
            post(world, world.staff, SALE)
        assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "ledger.month_closed"))


def test_reopening_voids_the_clients_approval_of_the_month(app, run_jobs):
    world = books(app)
    manager = _reviewer(app, world)
    with app.app_context(), as_person(world, world.staff) as (staff, tenant):
        post(world, world.staff, SALE)
        task_id = str(closing.start(staff, tenant, NOVEMBER, str(manager.id)).task_id)
        work.move(staff, tenant, task_id, "submit")
    with app.app_context(), as_person(world, manager) as (reviewer, tenant):
        work.move(reviewer, tenant, task_id, "approve")
    with app.app_context(), as_person(world, world.client) as (client, tenant):
        work.move(client, tenant, task_id, "client_approve", seen_sha256=_report_sha(services.period_of(NOVEMBER)))
    run_jobs()
    with app.app_context(), as_person(world, world.admin) as (admin, tenant):
        assert services.period_of(NOVEMBER).state == "closed"
        services.reopen_month(admin, tenant, DAY, "A supplier invoice arrived late")
    run_jobs()  # the report's new version is announced
    with app.app_context(), as_person(world, world.staff) as (staff, tenant):
        task = db.session.get(Task, task_id)
        assert task.state == "in_progress" and task.approved_sha256 is None  # back to work, approval void
        assert services.period_of(NOVEMBER).state == "open"
        post(world, world.staff, PURCHASE)  # the late invoice
        # Closing again goes through a second person's review and the client's approval once more.
        assert closing.start(staff, tenant, NOVEMBER, str(manager.id)).state == "in_review"
        work.move(staff, tenant, task_id, "submit")
    with app.app_context(), as_person(world, world.client) as (client, tenant):
        with pytest.raises(IllegalMove):  # not before the second person's review
            work.move(client, tenant, task_id, "client_approve",
                      seen_sha256=_report_sha(services.period_of(NOVEMBER)))
        db.session.rollback()
    with app.app_context(), as_person(world, manager) as (reviewer, tenant):
        work.move(reviewer, tenant, task_id, "approve")
    with app.app_context(), as_person(world, world.client) as (client, tenant):
        work.move(client, tenant, task_id, "client_approve", seen_sha256=_report_sha(services.period_of(NOVEMBER)))
    run_jobs()
    with app.app_context(), as_person(world, world.staff):
        period = services.period_of(NOVEMBER)
        assert period.state == "closed"
        assert period.closed_hash == services.month_hash(reports.trial_balance(date(2026, 11, 30), since=NOVEMBER))
        actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == world.id)))
        assert {"ledger.month_reopened", "task.reopened"} <= actions

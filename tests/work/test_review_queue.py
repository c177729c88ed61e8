"""The review queue: work sent to review without a reviewer waits for any second person of the team,
who takes it (never the one who did the work), one taker per review even when they click together."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.work import queues, services
from portal.work.models import Task, TaskEvent
from tenants.audit import AuditEvent
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person


def _as(app, person, tenant_id, fn):
    with app.app_context():
        user = db.session.get(User, person.id)
        role = Role(user.provider_role)
        with bound(Scope(user_id=user.id, tenant_ids=frozenset({tenant_id}), role=role)):
            return fn(user, db.session.get(Tenant, tenant_id))


def _submitted_without_reviewer(app, world, worker_key: str = "staff", title: str = "Reconcile March bank") -> str:
    """A task the worker started and sent to review without naming anyone to check it."""
    worker = world[worker_key]
    task_id = _as(app, world["manager"], world.a.id, lambda u, t: str(services.create_task(
        u, t, title=title, service_line_key="bookkeeping", assignee_id=str(worker.id)).id))
    for move in ("start", "submit"):
        _as(app, worker, world.a.id, lambda u, t, m=move: services.move(u, t, task_id, m))
    return task_id


def _task(app, world, task_id) -> Task:
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        task = db.session.get(Task, task_id)
        db.session.expunge(task)
        return task


def test_work_sent_to_review_without_a_reviewer_waits_in_the_review_queue(app, world):
    task_id = _submitted_without_reviewer(app, world)
    task = _task(app, world, task_id)
    assert task.state == "in_review" and task.reviewer_id is None
    assert task.worked_by_id == world["staff"].id
    lines = _as(app, world["manager"], world.a.id, lambda u, _t: queues.queue_overview(u))
    assert {line.key: line.reviews for line in lines}["bookkeeping"] == 1


def test_the_person_who_did_the_work_is_never_handed_its_review(app, world):
    task_id = _submitted_without_reviewer(app, world)
    # The worker asks for the next review: their own is the only one, so there is none for them.
    assert _as(app, world["staff"], world.a.id, lambda u, _t: queues.take_next_review(u)) is None
    with pytest.raises(services.Conflict, match="four eyes"):
        _as(app, world["staff"], world.a.id, lambda u, _t: services.take_review(u, task_id))
    # A manager takes it, is its reviewer, and approves it.
    taken = _as(app, world["manager"], world.a.id, lambda u, _t: queues.take_next_review(u, "bookkeeping"))
    assert taken is not None and str(taken.id) == task_id
    task = _task(app, world, task_id)
    assert task.reviewer_id == world["manager"].id
    assert _as(app, world["manager"], world.a.id,
               lambda u, t: services.move(u, t, task_id, "approve").state) == "done"
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        kinds = db.session.scalars(select(TaskEvent.kind).where(TaskEvent.task_id == task.id)
                                   .order_by(TaskEvent.at, TaskEvent.id)).all()
        assert "review_taken" in kinds
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "task.review_taken",
                                                            AuditEvent.object_id == task_id)).one()
        assert audit.actor_id == world["manager"].id


def test_a_review_someone_took_first_cannot_be_taken_again(app, world):
    task_id = _submitted_without_reviewer(app, world)
    _as(app, world["manager"], world.a.id, lambda u, _t: services.take_review(u, task_id))
    other = make_person_assigned(app, world)
    with pytest.raises(services.Conflict, match="not waiting for a reviewer"):
        _as(app, other, world.a.id, lambda u, _t: services.take_review(u, task_id))
    assert _task(app, world, task_id).reviewer_id == world["manager"].id


def make_person_assigned(app, world):
    """Another staff member who works for tenant A."""
    with app.app_context():
        person = make_person(Role.STAFF)
        admin = db.session.get(User, world["provider_admin"].id)
        assign(admin, db.session.get(Tenant, world.a.id), db.session.get(User, person.id))
        return person


def test_reviewers_taking_at_once_each_get_a_different_review(app, world):
    task_ids = {_submitted_without_reviewer(app, world, title=f"Payroll check {i}") for i in range(6)}
    reviewers = [world["manager"]] + [make_person_assigned(app, world) for _ in range(5)]
    got: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def take(person) -> None:
        try:
            barrier.wait(30)
            taken = _as(app, person, world.a.id, lambda u, _t: queues.take_next_review(u))
            got.append(str(taken.id) if taken else "")
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(p,)) for p in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(got) == sorted(task_ids)  # six reviews, six reviewers, nobody twice
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        reviewers_of = dict(db.session.execute(select(Task.id, Task.reviewer_id)
                                               .where(Task.id.in_(task_ids))).all())
    assert len(set(reviewers_of.values())) == len(reviewers)


def test_staff_of_another_client_never_see_nor_take_the_review(app, world):
    task_id = _submitted_without_reviewer(app, world)
    outsider = world["unassigned_staff"]  # works for no client
    with app.app_context():
        assert queues.take_next_review(db.session.get(User, outsider.id)) is None
    client = app.test_client()
    login(client, outsider)
    token = csrf_token(client, "/provider/work")
    r = client.post(f"/t/{world.a.slug}/tasks/{task_id}/review", data={"csrf_token": token})
    assert r.status_code in (403, 404)
    assert _task(app, world, task_id).reviewer_id is None


def test_the_task_page_offers_review_it_to_a_second_person_only(app, world):
    task_id = _submitted_without_reviewer(app, world)
    url = f"/t/{world.a.slug}/tasks/{task_id}"
    worker = app.test_client()
    login(worker, world["staff"])
    mine = worker.get(url).data
    assert b'data-testid="take-review"' not in mine and b'data-testid="in-review-queue"' in mine
    manager = app.test_client()
    login(manager, world["manager"])
    page = manager.get(url).data
    assert b'data-testid="take-review"' in page
    r = manager.post(f"{url}/review", data={"csrf_token": csrf_token(manager, url)})
    assert r.status_code == 302
    page = manager.get(url).data.decode()
    assert 'data-testid="take-review"' not in page and 'data-testid="in-review-queue"' not in page
    with app.app_context():
        name = db.session.get(User, world["manager"].id).name
    assert f"Reviewer: {name}" in page  # named as the reviewer now
    # A second click (another tab) says the review is taken, without an error page.
    r = manager.post(f"{url}/review", data={"csrf_token": csrf_token(manager, url)})
    assert r.status_code == 409 and b"not waiting for a reviewer" in r.data

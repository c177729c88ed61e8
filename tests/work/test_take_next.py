"""Take-next under concurrency: 8 takers, 2,300 tasks, each handed out once, only within the taker's tenants."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from portal.extensions import db
from portal.work.models import ServiceLine, Task
from portal.work.queues import take_next
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import User
from tenants.policy import Role
from tests.factories import make_person, make_tenant


def _fill(tenant_id, line_id, n: int) -> set:
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        tasks = [Task(tenant_id=tenant_id, title=f"Invoice batch {i}", service_line_id=line_id,
                      priority=1 + i % 4) for i in range(n)]
        db.session.add_all(tasks)
        db.session.commit()
        return {t.id for t in tasks}


def test_eight_takers_never_get_the_same_task_nor_another_tenants(app):
    with app.app_context():
        a, b = make_tenant(), make_tenant()
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        takers_a = [make_person(Role.STAFF) for _ in range(6)]
        takers_b = [make_person(Role.STAFF) for _ in range(2)]
        for person in takers_a:
            assign(admin, a, db.session.get(User, person.id))
        for person in takers_b:
            assign(admin, b, db.session.get(User, person.id))
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == "data_entry"))
        tasks_a, tasks_b = _fill(a.id, line, 2000), _fill(b.id, line, 300)
        a_id, b_id = a.id, b.id

    taken: list[tuple] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(person) -> None:
        try:
            with app.app_context():
                user = db.session.get(User, person.id)
                while (task := take_next(user, "data_entry")) is not None:
                    with lock:
                        taken.append((task.id, task.tenant_id, person.id))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in takers_a + takers_b]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    counts = Counter(task_id for task_id, _t, _p in taken)
    assert set(counts) == tasks_a | tasks_b  # every task handed out…
    assert max(counts.values()) == 1  # …exactly once
    a_people, b_people = {p.id for p in takers_a}, {p.id for p in takers_b}
    assert all((tenant == a_id and who in a_people) or (tenant == b_id and who in b_people)
               for _task, tenant, who in taken)
    assert len({who for _t, _tn, who in taken}) >= 4  # really concurrent: several takers got work
    with app.app_context(), bound(Scope(tenant_ids=frozenset({a_id, b_id}))):
        states = Counter(db.session.scalars(select(Task.state).where(Task.id.in_(list(counts)))))
        assert states == {"in_progress": len(counts)}


def test_a_task_assigned_to_someone_else_is_never_handed_out(app):
    with app.app_context():
        tenant = make_tenant()
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        owner, taker = make_person(Role.STAFF), make_person(Role.STAFF)
        for person in (owner, taker):
            assign(admin, tenant, db.session.get(User, person.id))
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == "data_entry"))
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            # Still open (not started yet), but it is the owner's: the most urgent and the oldest.
            theirs = Task(tenant_id=tenant.id, title="Owner's urgent batch", service_line_id=line, priority=1,
                          assignee_id=owner.id)
            db.session.add(theirs)
            db.session.commit()
            waiting = _fill(tenant.id, line, 1)
            theirs_id = theirs.id

        user = db.session.get(User, taker.id)
        first = take_next(user, "data_entry")
        assert first is not None and {first.id} == waiting  # the unassigned one, though less urgent
        assert take_next(user, "data_entry") is None
        assert take_next(user) is None  # nor from the queue of every line
        with bound(Scope(tenant_ids=frozenset({tenant.id}))):
            db.session.expire_all()
            task = db.session.get(Task, theirs_id)
            assert (task.assignee_id, task.state) == (owner.id, "open")

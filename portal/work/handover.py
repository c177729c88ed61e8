"""What a person leaves behind in a tenant they lose access to: handed back, in the same transaction.

``tenants.lifecycle`` announces a removed assignment (``assignment_removed``); this listens.
Their timer running there is stopped (capped like any forgotten timer), the tasks they had
taken go back to their line's queue (``release``), and reviews waiting for them lose their
reviewer; each change is on the task's timeline and in the tenant's audit log, and the
tenant's managers are told. Nothing stalls unseen with someone who can no longer open it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.work import notify
from portal.work.models import Task, TimeEntry
from portal.work.services import add_event, record
from portal.work.states import FINAL, State
from portal.work.time import stop_entry
from tenants.lifecycle import assignment_removed
from tenants.models import Assignment, Tenant, User, utcnow
from tenants.policy import Role


def hand_over(tenant: Tenant, *, user: User, actor: User | None, ip: str | None = None, **_: Any) -> None:
    """Stop ``user``'s timer in ``tenant`` and give back their tasks there (the tenant is bound)."""
    running = db.session.scalar(select(TimeEntry).where(TimeEntry.user_id == user.id, TimeEntry.ended_at.is_(None))
                                .with_for_update(of=TimeEntry))
    if running is not None:
        stop_entry(running, actor, why=f"{user.name} no longer works for this client")
    managers = list(db.session.scalars(select(Assignment.user_id).join(User, User.id == Assignment.user_id)
                                       .where(User.provider_role == Role.MANAGER.value)))
    tasks = db.session.scalars(select(Task).where(Task.state.not_in([s.value for s in FINAL]),
                                                  (Task.assignee_id == user.id) | (Task.reviewer_id == user.id))
                               .with_for_update(of=Task))
    for task in tasks:
        source = State(task.state)
        if task.assignee_id == user.id:
            task.assignee_id = None
            if source == State.IN_PROGRESS:
                task.state = State.OPEN
        if task.reviewer_id == user.id:
            task.reviewer_id = None
        task.updated_at = utcnow()
        add_event(task, actor, "released", source=source, target=State(task.state), person=user.name)
        record("task.released", actor, task, ip=ip, person=user.name)
        notify.notify(task, "released", managers, actor_id=actor.id if actor else None)


def init_app() -> None:
    """Listen for removed assignments (weakly referenced receivers would be collected: keep a strong one)."""
    assignment_removed.connect(hand_over, weak=False)

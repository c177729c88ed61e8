"""Work over several tenants: "my work", the team queues per service line, and take-next.

Everything here reads through ``tenants.reach.across_tenants``: only the tenants the
person is assigned to (every tenant for provider admins) are bound, row-level security
enforces it, and each read is recorded once in the platform log. Results leave as plain
values, never ORM rows, so nothing outlives the cross-tenant scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import lazyload

from portal.extensions import commit_keeping_loaded, db
from portal.work import notify
from portal.work.models import ServiceLine, Task
from portal.work.services import PAGE, add_event, claim_review, record, service_line, service_lines
from portal.work.states import FINAL, State
from tenants.models import Tenant, User, utcnow
from tenants.reach import Reachable, across_tenants, visible_tenants
from tenants.zones import reader_today

FAR = date(9999, 12, 31)  # no due date sorts last, and a cursor needs a value
WAITING = (Task.state == State.OPEN) & Task.assignee_id.is_(None)  # in a queue: open and nobody's


# --- take the next task ----------------------------------------------------------------------

@dataclass(frozen=True)
class Taken:
    """The task a taker received (plain values: the cross-tenant scope ends with the take)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    title: str


# The task and its tenant's slug in one round trip; no relationship is loaded (a take changes
# three columns and appends one event), which keeps the locked transaction short.
_TAKE = (select(Task, Tenant.slug).join(Tenant, Tenant.id == Task.tenant_id)
         .where(WAITING)
         .order_by(Task.priority, Task.due_date.asc().nulls_last(), Task.created_at)
         .options(lazyload("*")).limit(1).with_for_update(skip_locked=True, of=Task))


def take_next(actor: User, line_key: str | None = None) -> Taken | None:
    """Hand the most urgent open, unassigned task of the actor's tenants to the actor, and start it.

    ``FOR UPDATE SKIP LOCKED``: concurrent takers each get a different task and
    never wait on each other; only tenants the actor is assigned to are searched
    (``across_tenants`` binds exactly those, and row-level security enforces it).
    """
    line = service_line(line_key) if line_key else None
    with across_tenants(actor, "take next task", record=False) as reach:
        if not reach:
            return None
        query = _TAKE.where(Task.service_line_id == line.id) if line is not None else _TAKE
        found = db.session.execute(query).first()
        if found is None:
            db.session.rollback()
            return None
        task, slug = found
        task.assignee_id, task.state, task.updated_at = actor.id, State.IN_PROGRESS, utcnow()
        if task.reviewer_id == actor.id:
            task.reviewer_id = None  # four eyes: a manager names another reviewer
        add_event(task, actor, "taken", source=State.OPEN, target=State.IN_PROGRESS)
        notify.task_event(task, "assigned", actor)
        record("task.taken", actor, task, internal=True)  # in its own tenant's log (see across_tenants)
        taken = Taken(task.id, task.tenant_id, slug, task.title)
        db.session.commit()
        return taken


# --- take the next review --------------------------------------------------------------------

# Work sent to review without a named reviewer waits in its line's review queue.
AWAITING_REVIEW = (Task.state == State.IN_REVIEW) & Task.reviewer_id.is_(None)
_TAKE_REVIEW = (select(Task, Tenant.slug).join(Tenant, Tenant.id == Task.tenant_id)
                .where(AWAITING_REVIEW).order_by(Task.priority, Task.updated_at)
                .options(lazyload("*")).limit(1).with_for_update(skip_locked=True, of=Task))


def take_next_review(actor: User, line_key: str | None = None) -> Taken | None:
    """Make the actor the reviewer of the longest-waiting review of their tenants that they did not work on.

    Like take-next: ``FOR UPDATE SKIP LOCKED`` hands each review to one person, and only
    the actor's tenants are searched; the person who did the work is never handed it.
    """
    line = service_line(line_key) if line_key else None
    with across_tenants(actor, "take next review", record=False) as reach:
        if not reach:
            return None
        query = _TAKE_REVIEW.where(Task.worked_by_id.is_distinct_from(actor.id))
        if line is not None:
            query = query.where(Task.service_line_id == line.id)
        found = db.session.execute(query).first()
        if found is None:
            db.session.rollback()
            return None
        task, slug = found
        claim_review(actor, task)
        taken = Taken(task.id, task.tenant_id, slug, task.title)
        db.session.commit()
        return taken


# --- my work ---------------------------------------------------------------------------------

class _Due:
    due_date: date | None

    @property
    def overdue(self) -> bool:
        return self.due_date is not None and self.due_date < reader_today()


@dataclass(frozen=True)
class WorkItem(_Due):
    """A task as "my work" lists it."""

    id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    title: str
    line: str
    state: str
    priority: int
    due_date: date | None
    role: str  # assignee | reviewer


class MyWork(NamedTuple):
    """A page of "my work", the key after its last row (None on the last page), and the clients where the
    person has unfinished work, by name (the page's client filter: not every client a provider admin reaches)."""

    items: list[WorkItem]
    next_key: tuple[date, int, uuid.UUID] | None
    clients: list[Reachable]


def _listed(mine: ColumnElement[bool], chosen: uuid.UUID | None, line_key: str | None, state: str | None,
            overdue: bool, after: tuple[date, int, uuid.UUID] | None, limit: int) -> list:
    """My tasks in the page's order, narrowed by the filters: one more than ``limit``, to tell whether more follow."""
    due = Task.due_date
    # Columns, not rows: a list needs none of a task's relationships.
    query = (select(Task.id, Task.tenant_id, Task.title, ServiceLine.name, Task.state, Task.priority,
                    Task.due_date, Task.assignee_id)
             .join(ServiceLine, ServiceLine.id == Task.service_line_id)
             .where(mine)
             .order_by(func.coalesce(due, FAR), Task.priority, Task.id))
    if chosen is not None:
        query = query.where(Task.tenant_id == chosen)
    if line_key:
        query = query.where(Task.service_line_id == service_line(line_key).id)
    if state:
        query = query.where(Task.state == State(state))
    if overdue:
        query = query.where(due < reader_today())
    if after:
        query = query.where(tuple_(func.coalesce(due, FAR), Task.priority, Task.id) > tuple_(*after))
    return db.session.execute(query.limit(limit + 1)).all()


def my_work(actor: User, *, tenant_slug: str | None = None, line_key: str | None = None,
            state: str | None = None, overdue: bool = False,
            after: tuple[date, int, uuid.UUID] | None = None, limit: int = PAGE,
            ip: str | None = None) -> MyWork:
    """The actor's unfinished tasks (to do or to review) across their tenants: due date, then priority."""
    tenants = {t.id: t for t in visible_tenants(actor)}
    chosen = next((t.id for t in tenants.values() if t.slug == tenant_slug), None) if tenant_slug else None
    mine = (Task.state.not_in([s.value for s in FINAL])
            & ((Task.assignee_id == actor.id) | ((Task.reviewer_id == actor.id) & (Task.state == State.IN_REVIEW))))
    rows, with_work = [], set()
    # The whole reach, even for one client: the filter offers every client with work of this person's.
    with across_tenants(actor, "my work", ip=ip) as reach:
        if reach:  # no client: nothing to read
            with_work = set(db.session.scalars(select(Task.tenant_id).where(mine).distinct()))
            if chosen is not None or not tenant_slug:  # a client unknown or out of reach has nothing to show
                rows = _listed(mine, chosen, line_key, state, overdue, after, limit)
        items = [WorkItem(id_, tenants[tenant_id].slug, tenants[tenant_id].name, title, line, state_, priority, due_,
                          "assignee" if assignee_id == actor.id else "reviewer")
                 for id_, tenant_id, title, line, state_, priority, due_, assignee_id in rows[:limit]]
    commit_keeping_loaded()  # the read's record; the signed-in person stays loaded for the page
    last = items[-1] if len(rows) > limit else None
    # The chosen client stays in the filter when its last task of mine is done, so the page says what it shows.
    clients = [t for t in tenants.values() if t.id in with_work or t.slug == tenant_slug]
    return MyWork(items, ((last.due_date or FAR), last.priority, last.id) if last else None, clients)


# --- team queues -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LineQueue:
    """One service line's queue over the person's clients: what waits, how urgent, how late; and the
    reviews waiting for a second person."""

    id: uuid.UUID
    key: str
    name: str
    waiting: int
    urgent: int
    overdue: int
    next_due: date | None
    reviews: int = 0


def _waiting_counts(line_id: uuid.UUID | None = None) -> dict[uuid.UUID, tuple[int, int, int, date | None]]:
    """Per line (or for one), over the bound tenants: waiting, urgent, overdue, and the next due date."""
    query = (select(Task.service_line_id, func.count(), func.count().filter(Task.priority == 1),
                    func.count().filter(Task.due_date < reader_today()), func.min(Task.due_date))
             .where(WAITING).group_by(Task.service_line_id))
    if line_id is not None:
        query = query.where(Task.service_line_id == line_id)
    return {row[0]: tuple(row[1:]) for row in db.session.execute(query)}


def _review_counts() -> dict[uuid.UUID, int]:
    """Per line, over the bound tenants: the reviews waiting for someone to take them."""
    return dict(db.session.execute(select(Task.service_line_id, func.count()).where(AWAITING_REVIEW)
                                   .group_by(Task.service_line_id)).all())


def _line_queue(line: ServiceLine, counts: dict, reviews: dict | None = None) -> LineQueue:
    return LineQueue(line.id, line.key, line.name, *counts.get(line.id, (0, 0, 0, None)),
                     reviews=(reviews or {}).get(line.id, 0))


def queue_overview(actor: User, *, ip: str | None = None) -> list[LineQueue]:
    """Every service line with the open, unassigned tasks of the actor's clients (one audited read)."""
    with across_tenants(actor, "team queues", ip=ip) as reach:
        counts = _waiting_counts() if reach else {}
        reviews = _review_counts() if reach else {}
    lines = [_line_queue(line, counts, reviews) for line in service_lines()]
    db.session.commit()  # the recorded read
    return lines


@dataclass(frozen=True)
class QueueItem(_Due):
    """A waiting task as its team queue lists it, in the order take-next hands them out."""

    id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    title: str
    priority: int
    due_date: date | None
    created_at: datetime


QueueKey = tuple[int, date, datetime, uuid.UUID]


def queue_page(actor: User, line_key: str, *, after: QueueKey | None = None, limit: int = PAGE,
               ip: str | None = None) -> tuple[LineQueue | None, list[QueueItem], QueueKey | None]:
    """One line's waiting tasks over the actor's clients, most urgent first (take-next's order).

    Returns the line with its counts (None when no such line), a page of tasks and the key of the next page.
    """
    found = db.session.scalar(select(ServiceLine).where(ServiceLine.key == line_key))
    if found is None:
        return None, [], None
    tenants = {t.id: t for t in visible_tenants(actor)}
    order = (Task.priority, func.coalesce(Task.due_date, FAR), Task.created_at, Task.id)
    with across_tenants(actor, "team queue", ip=ip) as reach:
        counts = _waiting_counts(found.id) if reach else {}
        query = (select(Task.id, Task.tenant_id, Task.title, Task.priority, Task.due_date, Task.created_at)
                 .where(WAITING, Task.service_line_id == found.id).order_by(*order))
        if after:
            query = query.where(tuple_(*order) > tuple_(*after))
        rows = db.session.execute(query.limit(limit + 1)).all() if reach else []
    line = _line_queue(found, counts)
    db.session.commit()  # the recorded read
    items = [QueueItem(id_, tenants[tid].slug, tenants[tid].name, title, priority, due, created)
             for id_, tid, title, priority, due, created in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return line, items, (last.priority, last.due_date or FAR, last.created_at, last.id) if last else None

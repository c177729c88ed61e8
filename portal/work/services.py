"""Rules of the work: create tasks, move them through the state machine, review, ask, comment, queues.

Shared by the pages and the API. Inside one tenant the caller (the gate) has
bound the tenant; queues over several tenants go through ``tenants.reach.across_tenants``.
Every change is an event on the task's timeline; client approvals are also in the
tenant's audit log. Internal comments and events never reach a client: the
``for_client`` readers are the only way client-facing code reads a task's history.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import defer, lazyload, selectinload
from werkzeug.exceptions import NotFound

from portal.documents.models import Document, DocumentVersion, StoredObject
from portal.documents.services import get_document
from portal.extensions import db
from portal.work import notify
from portal.work.models import ServiceLine, Task, TaskComment, TaskDocument, TaskEvent
from portal.work.states import FINAL, NEEDS_REASON, WHO, IllegalMove, State, allowed_moves, next_state
from tenants import audit
from tenants.context import current_scope
from tenants.lookups import parse_id
from tenants.models import Assignment, Tenant, User, utcnow
from tenants.policy import APPROVER_ROLES, CLIENT_ROLES, Role, is_client
from tenants.zones import today_in

PRIORITIES = {1: _l("Urgent"), 2: _l("High"), 3: _l("Normal"), 4: _l("Low")}
PAGE = 50

# What a client reads for each state: plain words, no internal vocabulary.
CLIENT_STATE = {
    State.OPEN: _l("Received"),
    State.IN_PROGRESS: _l("We are working on it"),
    State.IN_REVIEW: _l("We are working on it"),
    State.AWAITING_APPROVAL: _l("Waiting for your approval"),
    State.WAITING_ON_CLIENT: _l("Waiting for you"),
    State.DONE: _l("Done"),
    State.CANCELLED: _l("Cancelled"),
}
STAFF_STATE = {
    State.OPEN: _l("Open"),
    State.IN_PROGRESS: _l("In progress"),
    State.IN_REVIEW: _l("In review"),
    State.AWAITING_APPROVAL: _l("Awaiting client approval"),
    State.WAITING_ON_CLIENT: _l("Waiting on client"),
    State.DONE: _l("Done"),
    State.CANCELLED: _l("Cancelled"),
}
MOVE_LABELS = {
    "start": _l("Start"), "submit": _l("Send to review"), "ask_client": _l("Ask the client"),
    "answer": _l("Answer"), "approve": _l("Approve the work"), "request_changes": _l("Request changes"),
    "client_approve": _l("Approve"), "client_reject": _l("Reject"), "cancel": _l("Cancel the task"),
    "release": _l("Put back in the queue"),
}
CAPACITY_LABELS = {"assignee": _l("the person the task is assigned to"), "reviewer": _l("its reviewer"),
                   "manager": _l("a manager"), "client": _l("the client"),
                   "approver": _l("a client admin or approver")}


class WorkError(ValueError):
    """A refusal the user can act on; ``status`` is the HTTP status to answer with."""

    status = 422


class Conflict(WorkError):
    status = 409


class NotYours(WorkError):
    status = 403


def _role() -> Role | None:
    return current_scope().role


def label(state: str) -> str:
    """The state in words for whoever is reading (plain words for clients)."""
    return str((CLIENT_STATE if is_client(_role()) else STAFF_STATE)[State(state)])


def illegal_message(exc: IllegalMove) -> str:
    """Which moves are possible from here, in words."""
    moves = ", ".join(str(MOVE_LABELS[m]) for m in exc.allowed) or _("none: the task is finished")
    return _("This task is %(state)s; from here the possible moves are: %(moves)s.",
             state=str(STAFF_STATE[exc.state]).lower(), moves=moves)


# --- reading ---------------------------------------------------------------------------

def service_lines() -> list[ServiceLine]:
    return list(db.session.scalars(select(ServiceLine).order_by(ServiceLine.name)))


def service_line(key: str) -> ServiceLine:
    line = db.session.scalar(select(ServiceLine).where(ServiceLine.key == key))
    if line is None:
        raise WorkError(_("Choose a service line: %(lines)s.", lines=", ".join(s.key for s in service_lines())))
    return line


def get_task(task_id: uuid.UUID | str, *, lock: bool = False) -> Task:
    """A task of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    key = parse_id(task_id)
    # Lock only the task's row (``of``): its people are joined in, on the nullable side of an outer join.
    task = db.session.get(Task, key, with_for_update={"of": Task} if lock else None, populate_existing=lock)
    if task is None:
        raise NotFound()
    return task


# Who works on a task and who reviews it is the provider's business: these lines are for its staff only.
STAFFING_EVENTS = frozenset({"assigned", "taken", "released", "review_taken"})


def _client_sees(event: TaskEvent) -> bool:
    if event.internal or event.kind in STAFFING_EVENTS:
        return False
    # A move between two states a client reads alike ("We are working on it → We are working on it") says nothing.
    return not (event.kind == "moved" and event.from_state and event.to_state
                and str(CLIENT_STATE[State(event.from_state)]) == str(CLIENT_STATE[State(event.to_state)]))


def events_for(task: Task) -> list[TaskEvent]:
    """The timeline as the current reader may see it: clients without internal events, the provider's
    staffing, or moves that change nothing they can see."""
    if not is_client(_role()):
        return list(task.events)
    return [e for e in task.events if _client_sees(e)]


def comments_for(task: Task) -> list[TaskComment]:
    """Comments the current reader may see (clients: never internal ones)."""
    return [c for c in task.comments if not (c.internal and is_client(_role()))]


def tenant_tasks(limit: int = 200) -> list[Task]:
    """The bound tenant's tasks, unfinished first by due date (for the list: without the description, which it
    does not show and which would be unsealed for each task, nor the reviewer)."""
    query = (select(Task).options(defer(Task.description), lazyload(Task.reviewer))
             .order_by(Task.state.in_([s.value for s in FINAL]), Task.due_date.asc().nulls_last(),
                       Task.priority, Task.created_at))
    return list(db.session.scalars(query.limit(limit)))


def task_page(*, state: str | None = None, line_key: str | None = None, unassigned: bool = False,
              after: tuple[str, str] | None = None, limit: int = PAGE) -> tuple[list[Task], tuple | None]:
    """The bound tenant's tasks newest first, by keyset (created_at, id) so deep pages stay fast."""
    query = select(Task).options(selectinload(Task.product)).order_by(Task.created_at.desc(), Task.id.desc())
    if state:
        try:
            query = query.where(Task.state == State(state))
        except ValueError:
            raise WorkError(_("Unknown state; use one of %(states)s.", states=", ".join(State))) from None
    if line_key:
        query = query.where(Task.service_line_id == service_line(line_key).id)
    if unassigned:
        query = query.where(Task.assignee_id.is_(None))
    if after:
        try:
            key = (datetime.fromisoformat(after[0]), uuid.UUID(after[1]))
        except ValueError:
            raise WorkError(_("The cursor is not valid; start from the first page.")) from None
        query = query.where(tuple_(Task.created_at, Task.id) < tuple_(*key))
    rows = list(db.session.scalars(query.limit(limit + 1)))
    page = rows[:limit]
    return page, (page[-1].created_at, page[-1].id) if len(rows) > limit else None


# --- creating and assigning -------------------------------------------------------------

def open_keyed_task(tenant_id: uuid.UUID, line: ServiceLine, key: str, *, title: str, source: str,
                    priority: int = 3, due: date | None = None, **event_data: object) -> uuid.UUID | None:
    """Open the one task of ``key`` (a recurring period, an upload month) unless it exists already.

    ``ON CONFLICT DO NOTHING`` on the tenant's unique key: two schedulers, or two uploads, at the
    same moment still open one task. Returns the new task's id, or None when it existed.
    """
    task_id, now = uuid.uuid4(), utcnow()
    inserted = db.session.execute(
        insert(Task).values(id=task_id, tenant_id=tenant_id, title=title, service_line_id=line.id,
                            priority=priority, due_date=due, source=source, state=State.OPEN,
                            needs_approval=line.needs_approval, recurrence_key=key, created_at=now, updated_at=now)
        .on_conflict_do_nothing(constraint="uq_tasks_recurrence").returning(Task.id)).scalar()
    if inserted is None:
        return None
    db.session.add(TaskEvent(tenant_id=tenant_id, task_id=task_id, actor_label="system", kind="created",
                             to_state=State.OPEN, data={"source": source, **event_data}))
    return task_id


def _staff_of(user_id: uuid.UUID | str | None) -> User | None:
    """A provider person who may work on the bound tenant (assigned, or a provider admin), or a clear refusal."""
    if not user_id:
        return None
    try:
        user = db.session.get(User, uuid.UUID(str(user_id)))
    except ValueError:
        user = None
    if user is None or not user.provider_role or not user.is_active:
        raise WorkError(_("Choose someone of the provider's team."))
    if user.provider_role != Role.PROVIDER_ADMIN and not db.session.scalar(
            select(Assignment.id).where(Assignment.user_id == user.id)):
        raise WorkError(_("%(name)s is not assigned to this client; assign them first.", name=user.name))
    return user


def team() -> list[User]:
    """The provider people who may be given the bound tenant's work (as ``_staff_of`` accepts them), each
    once, by name: the managers and staff assigned to it, and the provider admins."""
    # The assignments are read on their own so that the ORM's tenant filter applies: it does not reach a
    # joined table, and row-level security also shows a person their own assignments to other tenants.
    assigned = set(db.session.scalars(select(Assignment.user_id)))
    return list(db.session.scalars(
        select(User).where(User.is_active.is_(True), User.provider_role.is_not(None),
                           (User.provider_role == Role.PROVIDER_ADMIN.value) | User.id.in_(assigned))
        .order_by(User.name)))


def add_event(task: Task, actor: User | None, kind: str, *, source: str | None = None, target: str | None = None,
              internal: bool = False, **data: object) -> None:
    """Append a line to the task's timeline (who, what, when); commits with the caller's change."""
    db.session.add(TaskEvent(tenant_id=task.tenant_id, task=task, actor_id=actor.id if actor else None,
                             actor_label=actor.name if actor else "system", kind=kind, from_state=source,
                             to_state=target, internal=internal, data=data))


def record(action: str, actor: User | None, task: Task, *, internal: bool = False, ip: str | None = None,
           **data: object) -> None:
    """Write a task's change to its tenant's audit log (the client's access log, unless ``internal``:
    the provider's staffing, internal notes and time are not the client's to read)."""
    if task.id is None:
        db.session.flush()
    audit.record(action, audit.Actor.of(actor), tenant_id=task.tenant_id, object_type="task", object_id=task.id,
                 ip=ip, internal=internal, data={"name": task.title, **data})


def create_task(actor: User | None, tenant: Tenant, *, title: str, service_line_key: str,
                description: str | None = None, priority: int = 3, due: date | None = None,
                assignee_id: str | None = None, reviewer_id: str | None = None,
                needs_approval: bool | None = None, source: str = "manual",
                recurrence_key: str | None = None) -> Task:
    """Open a task for the bound tenant; without an assignee it waits in its line's queue."""
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise WorkError(_("Give the task a title of at most 200 characters."))
    if priority not in PRIORITIES:
        raise WorkError(_("Priority must be 1 (urgent) to 4 (low)."))
    if due is not None and due < today_in(ZoneInfo(tenant.timezone)):
        # Born overdue, it would jump every queue; the client's day decides what "past" means.
        raise WorkError(_("The due date %(date)s has already passed: give today or a later day.",
                          date=format_date(due)))
    line = service_line(service_line_key)
    assignee, reviewer = _staff_of(assignee_id), _staff_of(reviewer_id)
    if assignee and reviewer and assignee.id == reviewer.id:
        raise Conflict(_("The reviewer must be someone other than the person doing the work."))
    task = Task(tenant_id=tenant.id, title=title, description=(description or "").strip() or None,
                service_line_id=line.id, priority=priority, due_date=due,
                needs_approval=line.needs_approval if needs_approval is None else needs_approval,
                source=source, assignee_id=assignee.id if assignee else None,
                reviewer_id=reviewer.id if reviewer else None, created_by_id=actor.id if actor else None,
                recurrence_key=recurrence_key)
    db.session.add(task)
    add_event(task, actor, "created", target=State.OPEN, source_kind=source)
    notify.task_event(task, "assigned", actor)  # first: it reads the assignee's change before any query flushes
    record("task.created", actor, task, line=line.key, source=source)
    if assignee or reviewer:
        record("task.assigned", actor, task, internal=True, assignee=assignee.name if assignee else None,
               reviewer=reviewer.name if reviewer else None)
    db.session.commit()
    return task


def assign(actor: User, tenant: Tenant, task_id: str, *, assignee_id: str | None, reviewer_id: str | None) -> Task:
    """Give a task to someone and name its reviewer (managers); four eyes hold here too."""
    task = get_task(task_id, lock=True)
    if task.state in FINAL:
        raise Conflict(_("This task is finished; it cannot be reassigned."))
    assignee, reviewer = _staff_of(assignee_id), _staff_of(reviewer_id)
    if reviewer and (reviewer.id == (assignee.id if assignee else None) or reviewer.id == task.worked_by_id):
        raise Conflict(_("The reviewer must be someone other than the person doing the work."))
    task.assignee_id = assignee.id if assignee else None
    task.reviewer_id = reviewer.id if reviewer else None
    task.updated_at = utcnow()
    add_event(task, actor, "assigned", assignee=assignee.name if assignee else None,
              reviewer=reviewer.name if reviewer else None)
    notify.task_event(task, "assigned", actor)  # first: it reads the assignee's change before any query flushes
    record("task.assigned", actor, task, internal=True, assignee=assignee.name if assignee else None,
           reviewer=reviewer.name if reviewer else None)
    db.session.commit()
    return task


# --- moving ------------------------------------------------------------------------------

# Besides moves (portal.work.states.WHO): which capacities may attach a task's work product, and link
# documents to it.
ATTACH_PRODUCT = frozenset({"assignee", "manager"})
LINK_DOCUMENT = frozenset({"assignee", "reviewer", "manager", "client"})


def _role_capacities() -> set[str]:
    role = _role()
    out: set[str] = set()
    if role in (Role.PROVIDER_ADMIN, Role.MANAGER):
        out.add("manager")
    if role in CLIENT_ROLES:
        out.add("client")
    if role in APPROVER_ROLES:
        out.add("approver")
    return out


def capacities(actor: User, task: Task) -> set[str]:
    """What the actor is to this task: assignee, reviewer, manager, client, approver."""
    out = _role_capacities()
    if task.assignee_id == actor.id:
        out.add("assignee")
    if task.reviewer_id == actor.id:
        out.add("reviewer")
    return out


def moves_for(actor: User, task: Task) -> list[str]:
    """The moves the state machine allows from the task's state that this person may make."""
    mine = capacities(actor, task)
    return [m for m in allowed_moves(task.state) if WHO[m] & mine]


def may_approve() -> bool:
    """Whether the current person gives their company's word on work (the approval inbox's buttons)."""
    return bool(WHO["client_approve"] & _role_capacities())


def move(actor: User, tenant: Tenant, task_id: str, move_name: str, *, reason: str | None = None,
         seen_sha256: str | None = None, ip: str | None = None) -> Task:
    """Make one move of the state machine, by the person the table allows, with a reason where needed."""
    task = get_task(task_id, lock=True)  # two clicks, two people: one wins, the other sees the new state
    source = State(task.state)
    if move_name not in WHO:
        raise IllegalMove(source, move_name)
    target = next_state(source, move_name, needs_approval=task.needs_approval, resume=task.resume_state)
    if move_name == "answer" and target == State.IN_PROGRESS and task.assignee_id is None:
        target = State.OPEN  # nobody works on it any more (released while it waited): back to its queue
    allowed_by = WHO[move_name]
    if not allowed_by & capacities(actor, task):
        raise NotYours(_("Only %(who)s can do this.", who=_(" or ").join(str(CAPACITY_LABELS[w])
                                                                          for w in sorted(allowed_by))))
    reason = (reason or "").strip()
    if move_name in NEEDS_REASON and not reason:
        raise WorkError(_("Say why (or what you need): the other side reads it."))
    if move_name == "submit":
        # Without a named reviewer the task waits in its line's review queue, where any eligible second
        # person takes it (queues.take_next_review); a named reviewer must be someone else (four eyes).
        if task.reviewer_id == actor.id:
            task.reviewer_id = None
        task.worked_by_id = actor.id
    if move_name in ("approve", "request_changes") and actor.id == task.worked_by_id:
        raise Conflict(_("You did this work, so someone else must review it (four eyes)."))
    if move_name == "ask_client":
        task.resume_state = source
        db.session.add(TaskComment(tenant_id=task.tenant_id, task=task, author_id=actor.id, body=reason,
                                   kind="question"))
    elif move_name == "answer":
        task.resume_state = None
        db.session.add(TaskComment(tenant_id=task.tenant_id, task=task, author_id=actor.id, body=reason,
                                   kind="answer"))
    elif reason:
        db.session.add(TaskComment(tenant_id=task.tenant_id, task=task, author_id=actor.id, body=reason,
                                   internal=move_name == "request_changes"))
    if move_name == "release":
        task.assignee_id = None
    task.state = target
    task.updated_at = utcnow()
    if target == State.DONE:
        task.done_at = task.updated_at
    add_event(task, actor, "moved", source=source, target=target, move=move_name,
              internal=move_name == "request_changes")
    if move_name == "client_approve":
        _approve(actor, task, seen_sha256)
    if move_name in ("client_approve", "client_reject"):
        record(f"task.{'approved' if move_name == 'client_approve' else 'rejected'}", actor, task, ip=ip)
    else:
        record("task.moved", actor, task, ip=ip, internal=move_name == "request_changes", move=move_name,
               source=str(source), target=str(target))
    notify.task_event(task, move_name, actor)
    if target == State.DONE:  # finished work may be drawn for a second check, in this transaction
        from portal import events
        from portal.work import quality  # here: quality builds on this module

        quality.draw(task)
        events.announce("task.done", task.tenant_id, task.id)  # areas whose work it was finish theirs
    db.session.commit()
    return task


def comment(actor: User, task_id: str, body: str, *, internal: bool = False) -> TaskComment:
    """Add a comment; only the provider's people may write internal ones."""
    task = get_task(task_id)  # another tenant's task: 404 before anything else is looked at
    body = (body or "").strip()
    if not body or len(body) > 5000:
        raise WorkError(_("Write a comment of at most 5000 characters."))
    if internal and is_client(_role()):
        raise NotYours(_("Only the provider's people can write internal notes."))
    note = TaskComment(tenant_id=task.tenant_id, task=task, author_id=actor.id, body=body, internal=internal)
    db.session.add(note)
    add_event(task, actor, "commented", internal=internal)
    record("task.commented", actor, task, internal=internal)
    db.session.commit()
    return note


# --- documents on a task, and work the client asks for -----------------------------------

def take_review(actor: User, task_id: str, *, ip: str | None = None) -> Task:
    """Take the review of a task waiting in its line's review queue (anyone of the provider's team
    who did not do the work: four eyes); a review someone took first answers Conflict."""
    task = get_task(task_id, lock=True)
    if is_client(_role()):
        raise NotYours(_("Only the provider's people review work."))
    if not waits_for_reviewer(task):
        raise Conflict(_("This task is not waiting for a reviewer any more."))
    if actor.id == task.worked_by_id:
        raise Conflict(_("You did this work, so someone else must review it (four eyes)."))
    claim_review(actor, task, ip=ip)
    db.session.commit()
    return task


def waits_for_reviewer(task: Task) -> bool:
    """Whether the task sits in its line's review queue: sent to review, nobody named to review it."""
    return task.state == State.IN_REVIEW and task.reviewer_id is None


def claim_review(actor: User, task: Task, *, ip: str | None = None) -> None:
    """Make ``actor`` the reviewer of a task waiting in the review queue (its row locked by the caller)."""
    task.reviewer_id, task.updated_at = actor.id, utcnow()
    add_event(task, actor, "review_taken")
    record("task.review_taken", actor, task, internal=True, ip=ip)


def link_document(actor: User, task_id: str, document_id: str) -> Task:
    """Link a vault document to a task: the people on it, a manager, or the client (an attachment)."""
    task = get_task(task_id)
    if not LINK_DOCUMENT & capacities(actor, task):
        raise NotYours(_("Only the people working on this task or the client can attach documents to it."))
    document = get_document(actor, document_id)  # one the actor may see, in this tenant
    exists = db.session.scalar(select(TaskDocument.id).where(TaskDocument.task_id == task.id,
                                                             TaskDocument.document_id == document.id))
    if exists is None:
        db.session.add(TaskDocument(tenant_id=task.tenant_id, task_id=task.id, document_id=document.id))
        add_event(task, actor, "document_linked", document_id=str(document.id))
        record("task.document_linked", actor, task, document=document.title)
    db.session.commit()
    return task


def linked_documents(task: Task) -> list[TaskDocument]:
    """The documents linked to a task, oldest link first; one in the trash is not listed (until restored)."""
    return list(db.session.scalars(select(TaskDocument).join(Document, Document.id == TaskDocument.document_id)
                                   .where(TaskDocument.task_id == task.id, Document.trashed_at.is_(None))
                                   .order_by(TaskDocument.added_at)))


def request_work(actor: User, tenant: Tenant, *, title: str, description: str | None,
                 document_ids: list[str]) -> Task:
    """A client asks for admin work ("register two new employees for social insurance"), with attachments."""
    for document_id in document_ids:  # every attachment must be theirs to see, before anything is created
        get_document(actor, document_id)
    task = create_task(actor, tenant, title=title, service_line_key="admin", description=description,
                       source="client_request")
    for document_id in document_ids:
        link_document(actor, str(task.id), document_id)
    return task


# --- the work product and the client's approval ---------------------------------------------

def product_version(task: Task) -> DocumentVersion | None:
    """The current version of the task's work product, if it has one."""
    return task.product.latest if task.product is not None else None


def attach_product(actor: User, task_id: str, document_id: str) -> Task:
    """Attach a vault document as the work product the client will approve (the assignee or a manager)."""
    task = get_task(task_id, lock=True)
    if not ATTACH_PRODUCT & capacities(actor, task):
        raise NotYours(_("Only the person the task is assigned to or a manager can attach its work product."))
    if task.state in FINAL:
        raise Conflict(_("This task is finished; reopen the work before changing what the client approves."))
    product = get_document(actor, document_id)
    task.product_id = product.id
    add_event(task, actor, "product_attached", document=str(task.product_id))
    record("task.product_attached", actor, task, document=product.title)
    db.session.commit()
    return task


def _approve(actor: User, task: Task, seen_sha256: str | None) -> None:
    """Record exactly what the client approved: the SHA-256 of the product version they saw.

    The product's row is locked as the vault locks it to add a version: a version uploaded at
    the same moment either commits first (and is what this reads, so the approval of the older
    one is refused) or waits for this approval, which the new version's announcement then voids
    (``product_changed``).
    """
    current = None
    if task.product_id is not None:
        db.session.get(Document, task.product_id, with_for_update={"of": Document}, populate_existing=True)
        current = db.session.scalar(
            select(StoredObject.sha256).join(DocumentVersion, DocumentVersion.object_id == StoredObject.id)
            .where(DocumentVersion.document_id == task.product_id).order_by(DocumentVersion.number.desc()).limit(1))
    if current is not None:
        if seen_sha256 != current:
            raise Conflict(_("The work product changed since you opened it. Look at the new version, then "
                             "approve it."))
        task.approved_sha256 = current
    task.approved_by_id, task.approved_at = actor.id, utcnow()


def product_changed(document_id: uuid.UUID, sha256: str, actor: User | None = None) -> int:
    """A work product got a new version: approvals of other content no longer count; returns how many.

    Called when the vault announces a new version (``vault_links.version_added``, a job after the
    upload's commit). Each such task goes back to the client for approval, on its timeline and in
    the audit log.
    """
    tasks = db.session.scalars(select(Task).where(Task.product_id == document_id,
                                                  Task.approved_sha256.is_not(None),
                                                  Task.approved_sha256 != sha256).with_for_update(of=Task))
    count = 0
    for task in tasks:
        source = task.state
        task.state, task.done_at, task.updated_at = State.AWAITING_APPROVAL, None, utcnow()
        task.approved_sha256 = task.approved_by_id = task.approved_at = None
        add_event(task, actor, "approval_invalidated", source=source, target=State.AWAITING_APPROVAL)
        notify.task_event(task, "approve", actor)  # back in the approvers' inbox: tell them
        record("task.approval_invalidated", actor, task)
        count += 1
    return count


def approval_inbox() -> list[Task]:
    """What needs the client's word in the bound tenant, oldest first."""
    return list(db.session.scalars(select(Task).options(selectinload(Task.product))
                                   .where(Task.state == State.AWAITING_APPROVAL)
                                   .order_by(Task.updated_at)))

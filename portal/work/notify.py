"""Notifications of work events: a row per person in the portal, and an e-mail now or in the day's digest.

``task_event`` is called by ``portal.work.services`` in the transaction of the change:
it writes one ``Notification`` per recipient in the task's tenant (never to the person
who acted) and, for people who want e-mails as things happen, enqueues ``work.notify``
to run after the commit. People who chose the digest get one e-mail a day (``work.digest``).
Every sender claims its rows with ``UPDATE … WHERE emailed_at IS NULL RETURNING``, so a job
that runs twice (or two workers at once) e-mails each notification once.

E-mails carry no confidential content: what happened ("a question from your accountants")
and a link to the portal; never a task's title, a comment or a document's name. Internal
comments are not an event here at all, so they never reach a client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, bindparam, func, inspect, select, text, true, update

from portal import mail
from portal.extensions import db
from portal.work.models import Notification, Task
from portal.work.states import FINAL, State
from tenants.context import Scope, bound
from tenants.models import Membership, Tenant, User, new_id, utcnow
from tenants.policy import APPROVER_ROLES, CLIENT_ROLES, SEES_ALL_TENANTS
from tenants.reach import own_rows, visible_tenants
from tenants.zones import tenant_zone, today_in

MODES = ("immediate", "digest")
# What happened, as the recipient reads it: the whole content of the e-mail, with a link.
WHAT = {
    "assigned": _l("a task was assigned to you"),
    "review": _l("a task is ready for your review"),
    "question": _l("a question from your accountants"),
    "answer": _l("the client answered a question"),
    "approval_needed": _l("a task needs your approval"),
    "approved": _l("the client approved a task"),
    "rejected": _l("the client did not approve a task"),
    "due_soon": _l("a task assigned to you is due soon"),
    "overdue": _l("a task assigned to you is overdue"),
    "released": _l("a task went back to its queue: the person on it no longer works for this client"),
    "rework": _l("work of yours was sent back after a quality check"),
    # Statements paid through Stripe, and reminders (portal.billing): what happened, never an amount.
    "statement_paid": _l("a statement was paid"),
    "statement_payment_failed": _l("a statement's card payment failed"),
    "statement_refunded": _l("a statement's payment was refunded"),
    "statement_charge_disputed": _l("a card payment of a statement was disputed"),
    "statement_overdue": _l("a statement is overdue: please pay it"),
    "uploads_suspended": _l("uploads are paused until the overdue statements are paid"),
}
# A move of the state machine → the notification it makes (``approve`` only when it needs the client).
_ON_MOVE = {"submit": "review", "ask_client": "question", "answer": "answer", "client_approve": "approved",
            "client_reject": "rejected"}
DIGEST_LINES = 50  # a longer digest ends with "and N more" and the link to the notifications page
# Rows of someone now on "immediate" that no immediate job will send (they were on the digest when
# it happened) go out with the next digest once they are this old (a younger row may still have its job).
STRAGGLER_AFTER = timedelta(hours=1)


# --- making notifications --------------------------------------------------------------------

def task_event(task: Task, event: str, actor: User | None) -> list[Notification]:
    """Notify the people ``event`` concerns: "assigned", or the name of the move just made.

    Called before the service commits; the rows and the e-mail job commit (or roll back) with it.
    """
    if event == "assigned":
        # Only a change of assignee is news (assign() also saves an unchanged assignee with a new reviewer).
        # Read before anything else: a query would autoflush and clear the attribute's history.
        if not inspect(task).attrs.assignee_id.history.has_changes():
            return []
        kind = "assigned"
    elif event == "approve":
        kind = "approval_needed" if task.state == State.AWAITING_APPROVAL else None
    else:
        kind = _ON_MOVE.get(event)
    if kind is None:
        return []
    return notify(task, kind, _recipients(task, kind), actor_id=actor.id if actor else None)


def _recipients(task: Task, kind: str) -> list[uuid.UUID | None]:
    if kind in ("assigned", "due_soon", "overdue"):
        return [task.assignee_id]
    if kind == "answer":
        if task.assignee_id:
            return [task.assignee_id]
        asked = [c.author_id for c in task.comments if c.kind == "question"]  # nobody on it: whoever asked
        return asked[-1:]
    if kind == "review":
        return [task.reviewer_id]
    if kind in ("approved", "rejected"):
        return [task.assignee_id, task.reviewer_id]
    roles = APPROVER_ROLES if kind == "approval_needed" else CLIENT_ROLES  # "question": every client user
    return list(db.session.scalars(select(Membership.user_id).where(
        Membership.tenant_id == task.tenant_id, Membership.role.in_([r.value for r in roles]))))


def notify(task: Task, kind: str, user_ids: Iterable[uuid.UUID | None], *,
           actor_id: uuid.UUID | None = None) -> list[Notification]:
    """One notification per person (not the actor) in the task's tenant; e-mail now for "immediate" people."""
    if task.id is None:
        db.session.flush()  # a new task gets its id
    return notify_people(task.tenant_id, kind, user_ids, task_id=task.id, actor_id=actor_id)


def notify_people(tenant_id: uuid.UUID, kind: str, user_ids: Iterable[uuid.UUID | None], *,
                  task_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None) -> list[Notification]:
    """One notification of ``kind`` per active person (not the actor) in the tenant, about a task or (no
    ``task_id``) about the page ``PAGES[kind]``; e-mailed now for people on "immediate"."""
    from workers import enqueue

    wanted = [u for u in dict.fromkeys(user_ids) if u and u != actor_id]
    if not wanted:
        return []
    people = db.session.scalars(select(User).where(User.id.in_(wanted), User.is_active.is_(True),
                                                   User.password_hash.is_not(None)).order_by(User.id)).all()
    rows = [Notification(id=new_id(), tenant_id=tenant_id, user_id=p.id, kind=kind, task_id=task_id)
            for p in people]
    db.session.add_all(rows)
    now = [n.id for n, p in zip(rows, people, strict=True) if p.notify_mode != "digest"]
    if now:
        enqueue("work.notify", *now, tenant_id=tenant_id)
    return rows


# --- e-mail ------------------------------------------------------------------------------------

def _base() -> str:
    # Built by hand: jobs have no request to build URLs from.
    return current_app.config["BASE_URL"].rstrip("/")


# Notifications about something other than a task (a statement, …): the page of the tenant their link
# leads to, by kind. Other areas add their kinds here and to ``WHAT`` when they start.
PAGES: dict[str, str] = {
    # portal.billing (Stripe payments, reminders): the statements page of the tenant.
    "statement_paid": "statements", "statement_payment_failed": "statements", "statement_refunded": "statements",
    "statement_charge_disputed": "statements", "statement_overdue": "statements", "uploads_suspended": "statements",
}


def task_link(tenant_slug: str, task_id: uuid.UUID | None, kind: str | None = None) -> str:
    """Where a notification's link leads: its task, its area's page, else the notifications page."""
    if task_id:
        return f"{_base()}/t/{tenant_slug}/tasks/{task_id}"
    if kind in PAGES:
        return f"{_base()}/t/{tenant_slug}/{PAGES[kind]}"
    return f"{_base()}/notifications"


def _headline(tenant: Tenant, kind: str) -> str:
    return _("%(company)s: %(what)s", company=tenant.name, what=str(WHAT.get(kind, kind)))


def send_now(notification_ids: Iterable[uuid.UUID | str]) -> int:
    """Job: e-mail each of these notifications to its person, once; returns how many were sent.

    Runs with the notifications' tenant bound. Someone who switched to the digest since
    is left to the digest (the claim only takes rows of people on "immediate").
    """
    ids = [uuid.UUID(str(i)) for i in notification_ids]
    immediate = select(User.id).where(User.notify_mode != "digest", User.is_active.is_(True))
    claimed = db.session.execute(
        update(Notification).where(Notification.id.in_(ids), Notification.emailed_at.is_(None),
                                   Notification.user_id.in_(immediate))
        .values(emailed_at=utcnow())
        .returning(Notification.user_id, Notification.tenant_id, Notification.kind, Notification.task_id)
        .execution_options(synchronize_session=False)).all()
    for user_id, tenant_id, kind, task_id in claimed:
        user, tenant = db.session.get(User, user_id), db.session.get(Tenant, tenant_id)
        with force_locale(user.locale or "en"):
            subject = _headline(tenant, kind)
            body = _("%(what)s.\n\nOpen it in the portal:\n%(link)s\n\n"
                     "You get an e-mail each time something happens. To get one summary a day instead, "
                     "change it on your notifications page:\n%(settings)s\n",
                     what=subject, link=task_link(tenant.slug, task_id, kind), settings=f"{_base()}/notifications")
        mail.send(user.email, subject[:200], body)
    return len(claimed)


def send_digests(now: datetime | None = None) -> int:
    """Job: one e-mail per person with notifications not e-mailed yet, listing what happened; returns how many.

    Provider-wide (a person's notifications come from every tenant they work in), so it
    is scheduled once a day, not per tenant. Finding who has something pending reads only
    user ids, with every tenant bound (the system's own read); each person's rows are then
    claimed with only that person and the tenants they can reach bound, and committed on
    their own, so a failure half-way sends nobody anything twice.
    """
    now = now or utcnow()
    tenant_ids = frozenset(db.session.scalars(select(Tenant.id)))
    if not tenant_ids:
        return 0
    with bound(Scope(tenant_ids=tenant_ids)):
        pending = db.session.scalars(select(Notification.user_id).where(Notification.emailed_at.is_(None))
                                     .distinct()).all()
    db.session.commit()
    return sum(_digest(user_id, now) for user_id in pending)


def _digest(user_id: uuid.UUID, now: datetime) -> int:
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return 0
    tenants = {t.id: t for t in visible_tenants(user)}
    if not tenants:
        return 0
    due = [Notification.user_id == user.id, Notification.emailed_at.is_(None)]
    if user.notify_mode != "digest":
        due.append(Notification.created_at < now - STRAGGLER_AFTER)
    with bound(Scope(user_id=user.id, tenant_ids=frozenset(tenants))):
        rows = db.session.execute(
            update(Notification).where(*due).values(emailed_at=now)
            .returning(Notification.tenant_id, Notification.kind, Notification.task_id, Notification.created_at)
            .execution_options(synchronize_session=False)).all()
        if rows:
            rows = sorted(rows, key=lambda r: r.created_at)
            with force_locale(user.locale or "en"):
                subject = ngettext("Your daily summary: %(num)d update", "Your daily summary: %(num)d updates",
                                   len(rows))
                lines = [f"- {_headline(tenants[r.tenant_id], r.kind)}\n"
                         f"  {task_link(tenants[r.tenant_id].slug, r.task_id, r.kind)}" for r in rows[:DIGEST_LINES]]
                more = len(rows) - DIGEST_LINES
                if more > 0:
                    lines.append(ngettext("…and %(num)d more.", "…and %(num)d more.", more))
                body = (_("Here is what happened in the portal since your last summary:") + "\n\n"
                        + "\n".join(lines) + "\n\n"
                        + _("See all your notifications, or get an e-mail each time instead:\n%(link)s\n",
                            link=f"{_base()}/notifications"))
            mail.send(user.email, subject, body)
        db.session.commit()
    return 1 if rows else 0


def send_due_reminders(tenant_id: uuid.UUID | str, today: date | None = None) -> int:
    """Job: tell assignees of tasks due tomorrow (or today) and of overdue ones, once per task and kind.

    The notification itself is the record that the reminder went out: a task with a
    "due_soon" (or "overdue") row for its assignee gets no second one. A transaction-level
    advisory lock per tenant makes two runs at once take turns, so the second sees the first's
    rows. Returns how many notifications were made.
    """
    tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
    if tenant is None or not tenant.is_active:
        return 0
    today = today or today_in(tenant_zone(tenant.id))  # the tenant's own day
    db.session.execute(text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                       {"key": f"work.due_soon:{tenant.id}"})
    tasks = db.session.scalars(select(Task).where(
        Task.tenant_id == tenant.id, Task.assignee_id.is_not(None), Task.due_date <= today + timedelta(days=1),
        Task.state.not_in([s.value for s in FINAL])).order_by(Task.due_date, Task.id)).all()
    if not tasks:
        return 0
    sent = set(db.session.execute(select(Notification.task_id, Notification.user_id, Notification.kind).where(
        Notification.task_id.in_([t.id for t in tasks]), Notification.kind.in_(("due_soon", "overdue")))).all())
    made = 0
    for task in tasks:
        kind = "overdue" if task.due_date < today else "due_soon"
        if (task.id, task.assignee_id, kind) not in sent:
            made += len(notify(task, kind, [task.assignee_id]))
    db.session.commit()
    return made


# --- in the portal -----------------------------------------------------------------------------

def _reachable_ids(user: User) -> list[uuid.UUID] | None:
    """The tenants ``user`` can still open (``tenants.reach.visible_tenants``, read once per request); None for
    every tenant (no need to list them)."""
    if user.provider_role in SEES_ALL_TENANTS:
        return None
    return [t.id for t in visible_tenants(user)]


def _reachable(user: User) -> ColumnElement[bool]:
    """Rows of tenants ``user`` can still open."""
    ids = _reachable_ids(user)
    return true() if ids is None else Notification.tenant_id.in_(ids)


# Built once: the header's badge counts on every page, and building a statement costs as much as running it.
_UNREAD_ALL = (select(func.count()).select_from(Notification)
               .where(Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))
               .execution_options(rls_only=True))
_UNREAD_REACHABLE = _UNREAD_ALL.where(Notification.tenant_id.in_(bindparam("tenant_ids", expanding=True)))


def unread_count(user: User) -> int:
    """How many of the user's notifications are unread, in tenants they can still open (one indexed count; no
    tenant bound)."""
    with own_rows(user):
        ids = _reachable_ids(user)
        if ids is None:
            return db.session.scalar(_UNREAD_ALL, {"user_id": user.id}) or 0
        return db.session.scalar(_UNREAD_REACHABLE, {"user_id": user.id, "tenant_ids": ids}) or 0


@dataclass(frozen=True)
class Item:
    """A notification as the notifications page lists it (plain values)."""

    id: uuid.UUID
    what: str
    tenant_name: str
    tenant_slug: str
    task_id: uuid.UUID | None
    created_at: datetime
    unread: bool
    page: str | None = None  # for a notification about something other than a task: its page in the tenant


def notifications_for(user: User, limit: int = 100) -> list[Item]:
    """The user's notifications across their tenants, unread first, newest first."""
    with own_rows(user):
        rows = db.session.execute(
            select(Notification, Tenant.name, Tenant.slug).join(Tenant, Tenant.id == Notification.tenant_id)
            .where(Notification.user_id == user.id, _reachable(user))
            .order_by(Notification.read_at.is_not(None), Notification.created_at.desc(), Notification.id)
            .limit(limit).execution_options(rls_only=True)).all()
        return [Item(n.id, str(WHAT.get(n.kind, n.kind)), name, slug, n.task_id, n.created_at, n.read_at is None,
                     PAGES.get(n.kind)) for n, name, slug in rows]


def mark_all_read(user: User) -> int:
    """Mark every notification of the user read; returns how many.

    A write must pass row-level security's WITH CHECK, which admits only bound tenants:
    the user and exactly the tenants they can reach are bound for it.
    """
    reach = frozenset(t.id for t in visible_tenants(user))
    if not reach:
        return 0
    with bound(Scope(user_id=user.id, tenant_ids=reach)):
        count = db.session.execute(
            update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
            .values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        db.session.commit()
    return count


def set_mode(user: User, mode: str) -> None:
    """Choose how notifications arrive by e-mail: "immediate" or "digest" (raises ValueError otherwise)."""
    if mode not in MODES:
        raise ValueError(mode)
    user.notify_mode = mode
    db.session.commit()

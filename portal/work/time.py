"""Time spent on tasks (provider people only) and the managers' view of their team's load.

Time entries belong to one tenant, like their task. A running timer is an entry
without ``ended_at``; a person has at most one, whatever the tenant (the partial
unique index ``uq_time_entries_running``). Starting a timer stops the running one
first, wherever it runs: in the bound tenant it is found directly; elsewhere only
through ``tenants.reach.across_tenants``, and only when the database says one exists.

Clients never see time: the routes are refused to client roles by the
authorisation table, and ``task_time`` is the only reader the task page uses.
A tenant's time is counted in the tenant's own days and months (``tenants.zones``),
whoever is looking, so its totals (and what it is billed) never depend on the viewer; the
team's load, over several clients, in the provider's.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import case, func, select, text
from sqlalchemy.dialects.postgresql import insert
from werkzeug.exceptions import NotFound

from portal.extensions import db
from portal.work.kpi import BadMonth, Month
from portal.work.models import Task, TimeEntry
from portal.work.services import Conflict, NotYours, WorkError, get_task
from portal.work.states import FINAL, State
from tenants import audit
from tenants.context import current_tenant_id
from tenants.isolation import TenantContextMissing
from tenants.lookups import parse_id
from tenants.models import Assignment, User, new_id, utcnow
from tenants.reach import across_tenants, visible_tenants
from tenants.zones import provider_zone, start_of_day, tenant_zone, today_in

MAX_MINUTES = 1440  # one manual entry: at most a day
# A timer left running (overnight, over a weekend) must not bill days: it is logged up to this much,
# and the person is told, so they can add a manual entry if they really worked longer.
MAX_TIMER_MINUTES = 12 * 60
MAX_NOTE = 300
_OPEN = Task.state.not_in([s.value for s in FINAL])
# One person's timer clicks run one after the other (a double click, two tabs): the second sees the first.
_PERSON_LOCK = text("select pg_advisory_xact_lock(hashtextextended(:key, 0))")


# --- calendars ------------------------------------------------------------------------------
# A tenant's time is bucketed in the tenant's own days (its month is what it is billed for); the
# team's load, over several clients, in the provider's (tenants.zones).

def _zone_of(task: Task) -> ZoneInfo:
    return tenant_zone(task.tenant_id)


def minutes_between(started: datetime, ended: datetime) -> int:
    """Whole minutes, rounded up, at least one: a started minute counts."""
    return max(1, math.ceil((ended - started).total_seconds() / 60))


def hours_minutes(minutes: int | None) -> str:
    """``95`` → ``1:35`` (hours and minutes, as the tables show them)."""
    minutes = minutes or 0
    return f"{minutes // 60}:{minutes % 60:02d}"


# --- timers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stopped:
    """A timer that was stopped (plain values: it may belong to another tenant)."""

    task_id: uuid.UUID
    task_title: str
    minutes: int
    capped: bool = False  # ran longer than MAX_TIMER_MINUTES: logged as that much


@dataclass(frozen=True)
class Started:
    """What starting a timer did: ``already`` when it was running on this task (a double click)."""

    entry_id: uuid.UUID
    already: bool = False
    stopped: Stopped | None = None


def _lock_person(actor: User) -> None:
    db.session.execute(_PERSON_LOCK, {"key": f"timer:{actor.id}"})


def _running_here(actor: User) -> TimeEntry | None:
    """The actor's running timer, if it runs in the bound tenant(s)."""
    return db.session.scalar(select(TimeEntry).where(TimeEntry.user_id == actor.id, TimeEntry.ended_at.is_(None))
                             .with_for_update(of=TimeEntry))


def _audit(action: str, actor: User | None, entry: TimeEntry, **data: object) -> None:
    # Time is the provider's own business: in the tenant's log, never in the client's access log.
    audit.record(action, audit.Actor.of(actor), tenant_id=entry.tenant_id, object_type="task",
                 object_id=entry.task_id, internal=True, data=data)


def stop_entry(entry: TimeEntry, actor: User | None = None, *, why: str | None = None) -> Stopped:
    """End a running entry now (audited); flushed at once, while its tenant is bound."""
    entry.ended_at = utcnow()
    entry.minutes = minutes_between(entry.started_at, entry.ended_at)
    capped = entry.minutes > MAX_TIMER_MINUTES
    if capped:
        entry.minutes = MAX_TIMER_MINUTES
        entry.ended_at = entry.started_at + timedelta(minutes=MAX_TIMER_MINUTES)
    title = db.session.scalar(select(Task.title).where(Task.id == entry.task_id)) or ""
    _audit("time.timer_stopped", actor, entry, minutes=entry.minutes, capped=capped, **({"why": why} if why else {}))
    db.session.flush()
    return Stopped(entry.task_id, title, entry.minutes, capped)


def _insert_running(actor: User, task: Task, billable: bool) -> uuid.UUID | None:
    """Insert a running timer, or None when one already runs somewhere (the unique index says so)."""
    stmt = (insert(TimeEntry)
            .values(id=new_id(), tenant_id=task.tenant_id, task_id=task.id, user_id=actor.id,
                    started_at=utcnow(), billable=billable)
            .on_conflict_do_nothing(index_elements=[TimeEntry.user_id], index_where=TimeEntry.ended_at.is_(None))
            .returning(TimeEntry.id))
    return db.session.execute(stmt).scalar_one_or_none()


def start_timer(actor: User, task_id: str, *, billable: bool = True, ip: str | None = None) -> Started:
    """Start the actor's timer on a task of the bound tenant, stopping the one that runs (in any tenant).

    Starting twice on the same task keeps the one running timer (``already``).
    """
    task = get_task(task_id)  # another tenant's task: 404 before anything else
    if task.state in FINAL:
        raise Conflict(_("This task is finished, so a timer cannot run on it. Add the time as a manual entry "
                         "instead."))
    _lock_person(actor)
    stopped = None
    running = _running_here(actor)
    if running is not None:
        if running.task_id == task.id:
            db.session.commit()
            return Started(running.id, already=True)
        stopped = stop_entry(running, actor)
    entry_id = _insert_running(actor, task, billable)
    if entry_id is None:
        # A timer runs in another of the actor's tenants: find it there (recorded), stop it, start again.
        with across_tenants(actor, "stop the running timer to start another", ip=ip):
            running = _running_here(actor)
            if running is not None and running.task_id != task.id:
                stopped = stop_entry(running, actor)
        if running is not None and running.task_id == task.id:  # started on this task meanwhile
            db.session.commit()
            return Started(running.id, already=True)
        if running is None:
            db.session.rollback()
            raise Conflict(_("A timer of yours is still running for a client you no longer work for. Removing "
                             "someone from a client stops their timer there: ask a manager to assign you to that "
                             "client and remove you again, then start this one."))
        entry_id = _insert_running(actor, task, billable)
        if entry_id is None:  # cannot happen under the person's lock; refuse rather than guess
            db.session.rollback()
            raise Conflict(_("Another timer of yours started at the same moment. Reload the page and try again."))
    audit.record("time.timer_started", audit.Actor.of(actor), tenant_id=task.tenant_id, object_type="task",
                 object_id=task.id, internal=True, data={"billable": billable}, ip=ip)
    db.session.commit()
    return Started(entry_id, stopped=stopped)


def stop_timer(actor: User, task_id: str) -> Stopped | None:
    """Stop the actor's timer on this task; None when none runs here (already stopped: a double click)."""
    task = get_task(task_id)
    _lock_person(actor)
    running = _running_here(actor)
    if running is None or running.task_id != task.id:
        db.session.commit()
        return None
    stopped = stop_entry(running, actor)
    db.session.commit()
    return stopped


# --- manual entries ------------------------------------------------------------------------

def add_entry(actor: User, task_id: str, *, day: str | None, minutes: str | int | None, billable: bool,
              note: str | None = None) -> TimeEntry:
    """Log time done on a day (1 to 1440 minutes, billable or not, with an optional note)."""
    task = get_task(task_id)
    try:
        on = date.fromisoformat(str(day or "").strip())
    except ValueError:
        raise WorkError(_("Give the day the work was done as YYYY-MM-DD.")) from None
    zone = _zone_of(task)
    if on > today_in(zone):
        raise WorkError(_("That day is in the future. Log time for today or an earlier day."))
    opened = task.created_at.astimezone(zone).date()
    if on < opened:
        raise WorkError(_("This task was opened on %(date)s: log time from that day on.", date=format_date(opened)))
    try:
        amount = int(str(minutes if minutes is not None else "").strip())
    except ValueError:
        amount = 0
    if not 1 <= amount <= MAX_MINUTES:
        raise WorkError(_("Give the time in whole minutes, from 1 to %(max)d (a full day). Split longer work "
                          "over several days.", max=MAX_MINUTES))
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise WorkError(_("Keep the note to at most %(max)d characters.", max=MAX_NOTE))
    started = start_of_day(on, zone)
    entry = TimeEntry(tenant_id=task.tenant_id, task_id=task.id, user_id=actor.id, started_at=started,
                      ended_at=started + timedelta(minutes=amount), minutes=amount, billable=billable, note=note)
    db.session.add(entry)
    db.session.flush()
    _audit("time.logged", actor, entry, day=on.isoformat(), minutes=amount, billable=billable)
    db.session.commit()
    return entry


def delete_entry(actor: User, entry_id: str) -> uuid.UUID:
    """Delete one of the actor's own entries in the bound tenant (a running one too); returns its task's id."""
    entry = db.session.get(TimeEntry, parse_id(entry_id), with_for_update=True)
    if entry is None:
        raise NotFound()
    if entry.user_id != actor.id:
        raise NotYours(_("You can delete only your own time entries. Ask the person who logged it."))
    task_id = entry.task_id
    _audit("time.deleted", actor, entry, minutes=entry.minutes)
    db.session.delete(entry)
    db.session.commit()
    return task_id


# --- reading: one task, one month -------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """Billable and non-billable minutes of one person or one task."""

    key: uuid.UUID
    name: str
    billable: int = 0
    non_billable: int = 0

    @property
    def total(self) -> int:
        return self.billable + self.non_billable


@dataclass(frozen=True)
class EntryRow:
    """One time entry as a list shows it."""

    id: uuid.UUID
    user_id: uuid.UUID
    person: str
    day: date
    started_at: datetime
    minutes: int | None
    billable: bool
    note: str | None
    running: bool


class _PeopleTotals:
    """Billable and non-billable minutes summed over ``people``."""

    people: list[Line]

    @property
    def billable(self) -> int:
        return sum(p.billable for p in self.people)

    @property
    def non_billable(self) -> int:
        return sum(p.non_billable for p in self.people)


@dataclass(frozen=True)
class TaskTime(_PeopleTotals):
    """The time of one task: the reader's running timer, entries, and totals per person."""

    running: EntryRow | None
    entries: list[EntryRow]
    people: list[Line]
    can_start: bool


def task_time(actor: User, task: Task, *, limit: int = 100) -> TaskTime:
    """The time logged on a task of the bound tenant, newest first (callers check the reader is provider staff)."""
    rows = db.session.execute(select(TimeEntry, User.name).join(User, User.id == TimeEntry.user_id)
                              .where(TimeEntry.task_id == task.id)
                              .order_by(TimeEntry.started_at.desc(), TimeEntry.id)).all()
    zone = _zone_of(task)
    entries = [EntryRow(e.id, e.user_id, name, e.started_at.astimezone(zone).date(), e.started_at, e.minutes,
                        e.billable, e.note, e.ended_at is None) for e, name in rows]
    totals: dict[uuid.UUID, list] = {}
    for e in entries:
        if e.minutes is None:
            continue
        line = totals.setdefault(e.user_id, [e.person, 0, 0])
        line[1 if e.billable else 2] += e.minutes
    people = sorted((Line(k, v[0], v[1], v[2]) for k, v in totals.items()), key=lambda p: (-p.total, p.name))
    running = next((e for e in entries if e.running and e.user_id == actor.id), None)
    return TaskTime(running, entries[:limit], people, task.state not in FINAL)


@dataclass(frozen=True)
class MonthTotals(_PeopleTotals):
    """One tenant's minutes in one month: per person, per task, and in all (billable and not)."""

    tenant_id: uuid.UUID
    year: int
    month: int
    people: list[Line] = field(default_factory=list)
    tasks: list[Line] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.billable + self.non_billable


def _bound_zone() -> ZoneInfo:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("a tenant's month needs exactly one tenant bound")
    return tenant_zone(tenant_id)


def today() -> date:
    """Today in the bound tenant's calendar."""
    return today_in(_bound_zone())


def parse_month(raw: str | None) -> Month:
    """``"2031-05"``; the bound tenant's current month when empty; a clear refusal (422) otherwise."""
    try:
        return Month.parse(raw, Month.of(today_in(_bound_zone())))
    except BadMonth as err:
        raise WorkError(str(err)) from None


def month_totals(year: int, month: int) -> MonthTotals:
    """The bound tenant's finished time in a month (running timers do not count yet), for pages and billing.

    Exactly one tenant must be bound (a request's gate, or ``tenants.context.for_tenant`` in a job).
    An entry counts in the month it started.
    """
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise TenantContextMissing("month_totals needs exactly one tenant bound")
    month_, zone = Month(year, month), tenant_zone(tenant_id)
    start, end = start_of_day(month_.start, zone), start_of_day(month_.end, zone)
    billable = func.coalesce(func.sum(case((TimeEntry.billable, TimeEntry.minutes), else_=0)), 0)
    non_billable = func.coalesce(func.sum(case((TimeEntry.billable, 0), else_=TimeEntry.minutes)), 0)
    where = (TimeEntry.tenant_id == tenant_id, TimeEntry.minutes.is_not(None),
             TimeEntry.started_at >= start, TimeEntry.started_at < end)
    people = [Line(uid, name, int(b), int(n)) for uid, name, b, n in db.session.execute(
        select(TimeEntry.user_id, User.name, billable, non_billable).join(User, User.id == TimeEntry.user_id)
        .where(*where).group_by(TimeEntry.user_id, User.name).order_by(User.name))]
    tasks = sorted((Line(tid, title, int(b), int(n)) for tid, title, b, n in db.session.execute(
        select(TimeEntry.task_id, Task.title, billable, non_billable).join(Task, Task.id == TimeEntry.task_id)
        .where(*where).group_by(TimeEntry.task_id, Task.title))), key=lambda line: line.name.casefold())
    return MonthTotals(tenant_id, year, month, people, tasks)


# --- the managers' load view ---------------------------------------------------------------------

@dataclass(frozen=True)
class PersonLoad:
    """One provider person's load across the viewer's clients."""

    user_id: uuid.UUID
    name: str
    open: int
    due_this_week: int
    minutes_this_week: int
    overdue: int
    to_review: int
    share: int  # percent of all the open, assigned tasks listed


@dataclass(frozen=True)
class OverdueTask:
    """An unfinished task past its due date (plain values: read across tenants)."""

    id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    title: str
    assignee: str | None
    due_date: date


@dataclass(frozen=True)
class TeamLoad:
    """The load page: people, overdue tasks, the week they are counted in and how many clients."""

    people: list[PersonLoad]
    overdue: list[OverdueTask]
    week_start: date
    week_end: date
    clients: int


def team_load(actor: User, *, ip: str | None = None, overdue_limit: int = 200) -> TeamLoad:
    """Per provider person of the actor's clients: open, due this week, overdue, reviews waiting, time this week.

    One recorded cross-tenant read (``across_tenants``, reason "team load"); never
    more than the actor's own reach. People are those assigned to the clients plus
    anyone who has open work or logged time there; most overdue first, then most open.
    """
    tenants = {t.id: t for t in visible_tenants(actor)}
    zone = provider_zone()
    now = today_in(zone)
    monday = now - timedelta(days=now.weekday())
    sunday = monday + timedelta(days=6)
    week_from, week_to = start_of_day(monday, zone), start_of_day(monday + timedelta(days=7), zone)
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overdue: list[OverdueTask] = []
    with across_tenants(actor, "team load", only=tenants, ip=ip) as reach:
        if reach:
            due = Task.due_date
            for uid, open_, week, late in db.session.execute(
                    select(Task.assignee_id, func.count(),
                           func.count().filter(due.between(monday, sunday)), func.count().filter(due < now))
                    .where(_OPEN, Task.assignee_id.is_not(None)).group_by(Task.assignee_id)):
                counts[uid].update(open=open_, week=week, overdue=late)
            for uid, waiting in db.session.execute(
                    select(Task.reviewer_id, func.count()).where(Task.state == State.IN_REVIEW,
                                                                 Task.reviewer_id.is_not(None))
                    .group_by(Task.reviewer_id)):
                counts[uid]["review"] = waiting
            for uid, minutes in db.session.execute(
                    select(TimeEntry.user_id, func.sum(TimeEntry.minutes))
                    .where(TimeEntry.minutes.is_not(None), TimeEntry.started_at >= week_from,
                           TimeEntry.started_at < week_to).group_by(TimeEntry.user_id)):
                counts[uid]["minutes"] = int(minutes or 0)
            for uid in db.session.scalars(select(Assignment.user_id).distinct()):
                counts[uid]  # noqa: B018 - assigned people are listed even with nothing to do
            for task in db.session.scalars(select(Task).where(_OPEN, due < now)
                                           .order_by(due, Task.priority, Task.id).limit(overdue_limit)):
                tenant = tenants[task.tenant_id]
                overdue.append(OverdueTask(task.id, tenant.slug, tenant.name, task.title,
                                           task.assignee.name if task.assignee else None, task.due_date))
    db.session.commit()  # the recorded read
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(list(counts)),
                                                                     User.provider_role.is_not(None))).all())
    total_open = sum(c["open"] for uid, c in counts.items() if uid in names)
    people = [PersonLoad(uid, names[uid], c["open"], c["week"], c["minutes"], c["overdue"], c["review"],
                         round(c["open"] * 100 / total_open) if total_open else 0)
              for uid, c in counts.items() if uid in names]
    people.sort(key=lambda p: (-p.overdue, -p.open, p.name.lower()))
    return TeamLoad(people, overdue, monday, sunday, len(tenants))

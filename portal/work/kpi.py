"""KPIs of the provider's work: turnaround, on-time rate, rework, backlog, throughput, waiting, requests,
and the error rate of the quality checks (``portal.work.quality``).

Pure reading over the tenants the caller has bound: one tenant (the gate, on a
tenant's page) or several (``tenants.reach.across_tenants``, on the provider's
page). Nothing here binds tenants itself, and every query goes through the ORM,
so tenant isolation (the ORM criteria and row-level security) applies as usual.

A month is a calendar month on each tenant's own clock (``Tenant.timezone``): a
task finished at 23:30 on 31 March in Hanoi counts for March, and it is on time
when its local finishing date is on or before its due date. "Now" figures
(backlog, questions waiting, documents outstanding) do not depend on the month.
Results are plain values: no ORM row leaves the scope it was read in.

The error rate is the share of the tasks whose quality check finished in the month that
had findings (minor or major); the major rate counts major findings only. By person means
by who did the work (as it was when the task was drawn), and only the provider sees it.

The medians are PostgreSQL's ``percentile_cont`` (linear interpolation between
the two middle values), the same for p90.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import Date, Float, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert

from portal.documents.models import RequestItem
from portal.extensions import db
from portal.work.models import QualityCheck, ServiceLine, ServiceTarget, Task, TaskEvent
from portal.work.services import WorkError, service_line
from portal.work.states import FINAL, State
from tenants import audit
from tenants.context import current_scope
from tenants.models import Tenant, User, utcnow

REVIEW_MOVES = ("approve", "request_changes")
_MONTH = re.compile(r"(\d{4})-(\d{2})")


# --- the month ---------------------------------------------------------------------------------

class BadMonth(ValueError):
    """``?month=`` is not a month (answered 400 with an example of what works)."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def current(cls, timezone: str = "UTC", now: datetime | None = None) -> Month:
        """This month on ``timezone``'s clock."""
        return cls.of((now or utcnow()).astimezone(ZoneInfo(timezone)).date())

    @classmethod
    def parse(cls, raw: str | None, default: Month) -> Month:
        """``YYYY-MM`` (``default`` when empty); anything else raises ``BadMonth`` saying what works."""
        value = (raw or "").strip()
        if not value:
            return default
        match = _MONTH.fullmatch(value)
        if match is None or not 1 <= int(match[2]) <= 12 or not 1900 <= int(match[1]) <= 9998:
            raise BadMonth(_("Give the month as YYYY-MM, for example %(example)s.", example=default.key))
        return cls(int(match[1]), int(match[2]))

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month (exclusive)."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)


def _local(ts):  # noqa: ANN001, ANN202 - a timestamptz column on its tenant's wall clock (needs Tenant joined)
    return func.timezone(Tenant.timezone, ts)


def _in(month: Month, ts):  # noqa: ANN001, ANN202
    local = _local(ts)
    return (local >= datetime.combine(month.start, time())) & (local < datetime.combine(month.end, time()))


# --- the figures ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Turnaround:
    """Tasks of one service line (or all: ``key`` None) finished in the month."""

    key: str | None
    name: str
    done: int
    median_days: float | None
    p90_days: float | None
    with_due: int  # of ``done``, those that had a due date
    on_time: int  # of ``with_due``, those finished on or before it

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.with_due if self.with_due else None


@dataclass(frozen=True)
class TenantRow:
    id: uuid.UUID
    slug: str
    name: str
    backlog: int = 0  # unfinished now
    done: int = 0  # finished in the month
    waiting: int = 0  # waiting on the client now
    waiting_since: datetime | None = None  # since when the oldest of them waits
    reviews: int = 0  # review decisions in the month (approve + request changes)
    changes_requested: int = 0
    requests_resolved: int = 0  # requested documents received in the month
    requests_outstanding: int = 0  # not received yet, now
    requests_overdue: int = 0  # of those, past their due date


@dataclass(frozen=True)
class PersonRow:
    """A provider person's backlog now and throughput in the month; ``user_id`` None is the queue."""

    user_id: uuid.UUID | None
    name: str | None
    backlog: int = 0
    done: int = 0


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class ErrorRate:
    """Quality checks finished in the month (of a line, a person, a tenant, or all): how many found something."""

    key: str | None
    name: str | None
    checked: int = 0
    with_findings: int = 0  # minor or major
    major: int = 0

    @property
    def error_rate(self) -> float | None:
        """Share of checked tasks with findings (minor or major)."""
        return _rate(self.with_findings, self.checked)

    @property
    def major_rate(self) -> float | None:
        """Share of checked tasks with a major finding."""
        return _rate(self.major, self.checked)


@dataclass(frozen=True)
class Quality:
    """The error rates of the month: overall, by service line, by tenant (id) and by who did the work."""

    overall: ErrorRate
    lines: list[ErrorRate] = field(default_factory=list)
    tenants: dict[uuid.UUID, ErrorRate] = field(default_factory=dict)
    people: list[ErrorRate] = field(default_factory=list)  # key: the person's id; None: nobody recorded

    @classmethod
    def empty(cls) -> Quality:
        return cls(ErrorRate(None, _("All services")))


@dataclass(frozen=True)
class Report:
    month: Month
    now: datetime
    lines: list[Turnaround]
    overall: Turnaround
    tenants: list[TenantRow]
    people: list[PersonRow] = field(default_factory=list)
    quality: Quality = field(default_factory=Quality.empty)

    def _sum(self, name: str) -> int:
        return sum(getattr(t, name) for t in self.tenants)

    backlog = property(lambda self: self._sum("backlog"))
    done = property(lambda self: self._sum("done"))
    waiting = property(lambda self: self._sum("waiting"))
    reviews = property(lambda self: self._sum("reviews"))
    changes_requested = property(lambda self: self._sum("changes_requested"))
    requests_resolved = property(lambda self: self._sum("requests_resolved"))
    requests_outstanding = property(lambda self: self._sum("requests_outstanding"))
    requests_overdue = property(lambda self: self._sum("requests_overdue"))

    @property
    def rework_rate(self) -> float | None:
        """Share of review decisions in the month that sent the work back."""
        return _rate(self.changes_requested, self.reviews)

    @property
    def oldest_wait(self) -> timedelta | None:
        since = [t.waiting_since for t in self.tenants if t.waiting_since is not None]
        return self.now - min(since) if since else None

    def for_client(self) -> Report:
        """The same report without the provider's internal figures: review outcomes, its people's workload."""
        return replace(self, people=[], tenants=[replace(t, reviews=0, changes_requested=0) for t in self.tenants],
                       quality=replace(self.quality, people=[]))

    def waited(self, row: TenantRow) -> timedelta | None:
        return self.now - row.waiting_since if row.waiting_since is not None else None


def _turnaround_query(month: Month):  # noqa: ANN202
    days = cast(func.extract("epoch", Task.done_at - Task.created_at), Float) / 86400.0
    has_due = Task.due_date.is_not(None)
    on_time = has_due & (cast(_local(Task.done_at), Date) <= Task.due_date)
    return (select(func.count(),
                   func.percentile_cont(0.5).within_group(days),
                   func.percentile_cont(0.9).within_group(days),
                   func.count().filter(has_due), func.count().filter(on_time))
            .select_from(Task).join(Tenant, Tenant.id == Task.tenant_id)
            .where(Task.state == State.DONE, Task.done_at.is_not(None), _in(month, Task.done_at)))


def turnaround(month: Month) -> tuple[list[Turnaround], Turnaround]:
    """Per service line and overall: finished tasks, median and p90 days (created → done), on time."""
    query = _turnaround_query(month)
    by_line = db.session.execute(
        query.add_columns(ServiceLine.key, ServiceLine.name).join(ServiceLine, ServiceLine.id == Task.service_line_id)
        .group_by(ServiceLine.id).order_by(ServiceLine.name))
    lines = [Turnaround(key, name, n, median, p90, due, ok) for n, median, p90, due, ok, key, name in by_line]
    n, median, p90, due, ok = db.session.execute(query).one()
    return lines, Turnaround(None, _("All services"), n, median, p90, due, ok)


def _tenant_rows(month: Month, now: datetime) -> list[TenantRow]:
    ids = sorted(current_scope().tenant_ids)
    if not ids:
        return []
    rows: dict[uuid.UUID, dict] = {
        tid: {"id": tid, "slug": slug, "name": name}
        for tid, slug, name in db.session.execute(select(Tenant.id, Tenant.slug, Tenant.name)
                                                  .where(Tenant.id.in_(ids)).order_by(Tenant.name))}

    last_ask = (select(func.max(TaskEvent.at))
                .where(TaskEvent.task_id == Task.id, TaskEvent.to_state == State.WAITING_ON_CLIENT)
                .correlate(Task).scalar_subquery())
    waiting = Task.state == State.WAITING_ON_CLIENT
    tasks = (select(Task.tenant_id,
                    func.count().filter(Task.state.not_in([s.value for s in FINAL])),
                    func.count().filter(Task.state == State.DONE, _in(month, Task.done_at)),
                    func.count().filter(waiting),
                    func.min(func.coalesce(last_ask, Task.updated_at)).filter(waiting))
             .join(Tenant, Tenant.id == Task.tenant_id).group_by(Task.tenant_id))
    for tid, backlog, done, n_waiting, since in db.session.execute(tasks):
        rows[tid].update(backlog=backlog, done=done, waiting=n_waiting, waiting_since=since)

    move = TaskEvent.data["move"].astext
    reviews = (select(TaskEvent.tenant_id, func.count(), func.count().filter(move == "request_changes"))
               .join(Tenant, Tenant.id == TaskEvent.tenant_id)
               .where(TaskEvent.kind == "moved", move.in_(REVIEW_MOVES), _in(month, TaskEvent.at))
               .group_by(TaskEvent.tenant_id))
    for tid, n, changes in db.session.execute(reviews):
        rows[tid].update(reviews=n, changes_requested=changes)

    open_item = RequestItem.is_open  # neither received nor answered "not applicable"
    today = cast(func.timezone(Tenant.timezone, literal(now)), Date)
    requests = (select(RequestItem.tenant_id,
                       func.count().filter(_in(month, RequestItem.fulfilled_at)),
                       func.count().filter(open_item),
                       func.count().filter(open_item, RequestItem.due_date < today))
                .join(Tenant, Tenant.id == RequestItem.tenant_id).group_by(RequestItem.tenant_id))
    for tid, resolved, outstanding, overdue in db.session.execute(requests):
        rows[tid].update(requests_resolved=resolved, requests_outstanding=outstanding, requests_overdue=overdue)
    return [TenantRow(**row) for row in rows.values()]


def _people(month: Month) -> list[PersonRow]:
    """Backlog by assignee now; throughput by who did the work (else the assignee) in the month."""
    backlog = dict(db.session.execute(select(Task.assignee_id, func.count())
                                      .where(Task.state.not_in([s.value for s in FINAL]))
                                      .group_by(Task.assignee_id)).all())
    who = func.coalesce(Task.worked_by_id, Task.assignee_id)
    done = dict(db.session.execute(select(who, func.count()).join(Tenant, Tenant.id == Task.tenant_id)
                                   .where(Task.state == State.DONE, _in(month, Task.done_at))
                                   .group_by(who)).all())
    ids = (set(backlog) | set(done)) - {None}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    rows = [PersonRow(uid, names.get(uid), backlog.get(uid, 0), done.get(uid, 0)) for uid in set(backlog) | set(done)]
    # People by name, the queue (nobody) last.
    return sorted(rows, key=lambda r: (r.user_id is None, (r.name or "").lower()))


def error_rates(month: Month) -> Quality:
    """Quality checks finished in the month (on each tenant's clock): how many, how many found something
    (minor or major), how many something major; overall, by line, by tenant and by who did the work."""
    finding = QualityCheck.finding
    query = (select(func.count(), func.count().filter(finding.in_(("minor", "major"))),
                    func.count().filter(finding == "major"))
             .select_from(QualityCheck).join(Tenant, Tenant.id == QualityCheck.tenant_id)
             .where(QualityCheck.state == "done", _in(month, QualityCheck.checked_at)))
    overall = ErrorRate(None, _("All services"), *db.session.execute(query).one())
    if not overall.checked:
        return Quality(overall)
    by_line = (query.add_columns(ServiceLine.key, ServiceLine.name).join(Task, Task.id == QualityCheck.task_id)
               .join(ServiceLine, ServiceLine.id == Task.service_line_id)
               .group_by(ServiceLine.id).order_by(ServiceLine.name))
    lines = [ErrorRate(key, name, n, found, major) for n, found, major, key, name in db.session.execute(by_line)]
    tenants = {tid: ErrorRate(str(tid), None, n, found, major) for n, found, major, tid in
               db.session.execute(query.add_columns(QualityCheck.tenant_id).group_by(QualityCheck.tenant_id))}
    who = db.session.execute(query.add_columns(QualityCheck.worked_by_id).group_by(QualityCheck.worked_by_id)).all()
    ids = {uid for *_n, uid in who} - {None}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    people = sorted((ErrorRate(str(uid) if uid else None, names.get(uid), n, found, major)
                     for n, found, major, uid in who), key=lambda r: (r.key is None, (r.name or "").lower()))
    return Quality(overall, lines, tenants, people)


def report(month: Month, *, now: datetime | None = None) -> Report:
    """Every figure for the bound tenants (none bound: an empty report, nothing is queried)."""
    now = now or utcnow()
    if not current_scope().tenant_ids:
        return Report(month, now, [], Turnaround(None, _("All services"), 0, None, None, 0, 0), [])
    lines, overall = turnaround(month)
    return Report(month, now, lines, overall, _tenant_rows(month, now), _people(month), error_rates(month))


# --- promises: the provider's targets beside the results (one tenant) -------------------------------

@dataclass(frozen=True)
class Promise:
    key: str
    name: str
    target_days: int | None
    target_on_time: int | None  # percent
    result: Turnaround | None

    @property
    def turnaround_met(self) -> bool | None:
        if self.target_days is None or self.result is None or self.result.median_days is None:
            return None
        return self.result.median_days <= self.target_days

    @property
    def on_time_met(self) -> bool | None:
        rate = self.result.on_time_rate if self.result is not None else None
        if self.target_on_time is None or rate is None:
            return None
        return rate * 100 >= self.target_on_time


def targets() -> dict[str, tuple[int, int]]:
    """The bound tenant's targets: service line key → (turnaround days, on-time percent)."""
    rows = db.session.execute(select(ServiceLine.key, ServiceTarget.turnaround_days, ServiceTarget.on_time_percent)
                              .join(ServiceLine, ServiceLine.id == ServiceTarget.service_line_id))
    return {key: (days, percent) for key, days, percent in rows}


def promises(results: Iterable[Turnaround], lines: Iterable[ServiceLine]) -> list[Promise]:
    """Every line with a target or a result this month (``results``: the month's turnaround by line): the
    promise and what was delivered."""
    promised = targets()
    delivered = {t.key: t for t in results}
    out = []
    for line in lines:
        days, percent = promised.get(line.key, (None, None))
        if days is not None or line.key in delivered:
            out.append(Promise(line.key, line.name, days, percent, delivered.get(line.key)))
    return out


def _int_in(raw: object, low: int, high: int, message: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise WorkError(message) from None
    if not low <= value <= high:
        raise WorkError(message)
    return value


def set_target(actor: User, tenant: Tenant, *, line_key: str, turnaround_days: object,
               on_time_percent: object = 95, ip: str | None = None) -> tuple[ServiceLine, int, int]:
    """Promise a turnaround for one line of the bound tenant (replacing the previous one); audited."""
    line = service_line(line_key)
    days = _int_in(turnaround_days, 1, 365, _("Give the turnaround as a whole number of days, 1 to 365."))
    percent = _int_in(on_time_percent, 1, 100, _("Give the on-time target as a percentage, 1 to 100."))
    db.session.execute(
        insert(ServiceTarget).values(tenant_id=tenant.id, service_line_id=line.id, turnaround_days=days,
                                     on_time_percent=percent)
        .on_conflict_do_update(index_elements=["tenant_id", "service_line_id"],
                               set_={"turnaround_days": days, "on_time_percent": percent}))
    audit.record("service_target.set", audit.Actor.of(actor), tenant_id=tenant.id, object_type="service_line",
                 object_id=line.id, ip=ip, data={"name": line.name, "turnaround_days": days,
                                                 "on_time_percent": percent})
    db.session.commit()
    return line, days, percent

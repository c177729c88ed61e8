"""Quality control by sampling: the rates, the draw, the check queue, findings and rework.

Managers set a sampling rate per service line for the whole provider (``QualityRate``) and,
where a client needs more (or fewer) checks, per tenant (``TenantQualityRate``, which replaces
it). Finished tasks are drawn at that rate, with the operating system's randomness (a test injects
a seeded source, ``rng()``), for a second check (``QualityCheck``) by someone who neither did nor
reviewed the work; the check records what it found (none, minor, major; a kind;
a note sealed with the tenant's key) and can send the work back (the state machine's ``rework``
move, made only here). The error rates are in ``portal.work.kpi``.

Who may: the policy table lets the provider's people check (``tenant:quality.check``) and
managers set rates (``provider:quality.manage``, ``tenant:quality.manage``); these services
narrow it further: never the person who did the work, its reviewer or its assignee, and a
check someone took is theirs (or a manager's) to finish.

What the client sees: nothing of a check, neither its existence, nor its findings, nor its note,
nor its events (every audit event here is ``internal``). A rework shows on their side as the
task simply going from done back to "we are working on it" (a client-visible line of the
timeline, no reason given); their approval of the earlier work no longer counts.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import lazyload
from werkzeug.exceptions import NotFound

from portal.extensions import db
from portal.work import notify, services
from portal.work.models import QualityCheck, QualityRate, ServiceLine, Task, TaskEvent, TenantQualityRate
from portal.work.states import State, next_state
from tenants import audit
from tenants.context import current_scope
from tenants.models import Tenant, User, new_id, utcnow
from tenants.policy import Role, is_client
from tenants.reach import across_tenants, visible_tenants

FINDINGS = {"none": _l("No findings"), "minor": _l("Minor findings"), "major": _l("Major findings")}
WITH_FINDINGS = ("minor", "major")
# What was wrong: a fixed list, so that the error rates can be read by kind.
KINDS = {
    "wrong_account": _l("Wrong account"),
    "wrong_amount": _l("Wrong amount"),
    "missing_document": _l("Missing document"),
    "wrong_period": _l("Wrong period"),
    "other": _l("Other"),
}
NOTE_MAX = 2000
HUNDREDTH = Decimal("0.01")
# A rate has two decimals (2.5 %): a draw compares a number below 10,000 with the rate in hundredths of a
# percent, so 0 % never draws and 100 % always does, exactly.
SCALE = 10_000
PAGE = 100

class QualityError(services.WorkError):
    """What was entered cannot be saved; ``errors`` says why, by field (shown next to each; 422)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(errors.values()))


# --- rates -------------------------------------------------------------------------------------

def parse_percent(raw: object, *, optional: bool = False) -> Decimal | None:
    """A rate from a form or the API: 0 to 100 with at most two decimals ("2.5", "2,5", "20 %").

    Empty is None when ``optional`` (no rate of its own); anything else raises ``QualityError``.
    """
    message = _("Give the rate as a percentage from 0 to 100, for example 5 or 2.5.")
    text = str(raw if raw is not None else "").strip().removesuffix("%").strip().replace(",", ".")
    if not text:
        if optional:
            return None
        raise QualityError({"percent": message})
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise QualityError({"percent": message}) from None
    if not value.is_finite() or not 0 <= value <= 100 or value != value.quantize(HUNDREDTH):
        raise QualityError({"percent": message})
    return value.quantize(HUNDREDTH)


@dataclass(frozen=True)
class LineRate:
    """A service line's sampling rates: the provider's, the client's own (if any), and the one that applies."""

    key: str
    name: str
    provider: Decimal | None
    tenant: Decimal | None = None

    @property
    def effective(self) -> Decimal:
        if self.tenant is not None:
            return self.tenant
        return self.provider if self.provider is not None else Decimal(0)


def _line(key: str) -> ServiceLine:
    line = db.session.scalar(select(ServiceLine).where(ServiceLine.key == (key or "").strip()))
    if line is None:
        raise QualityError({"line": _("Choose a service line from the list.")})
    return line


def line_rates() -> list[LineRate]:
    """Every service line with its provider-wide rate, and the bound tenant's own one when one tenant is bound."""
    provider = dict(db.session.execute(select(QualityRate.service_line_id, QualityRate.percent)).all())
    own: dict[uuid.UUID, Decimal] = {}
    if current_scope().tenant_id is not None:
        own = dict(db.session.execute(select(TenantQualityRate.service_line_id, TenantQualityRate.percent)).all())
    return [LineRate(line.key, line.name, provider.get(line.id), own.get(line.id)) for line in services.service_lines()]


def rate_for(tenant_id: uuid.UUID, line_id: uuid.UUID) -> Decimal:
    """The rate a finished task of this tenant and line is drawn at: the tenant's own, else the provider's,
    else 0 (one round trip)."""
    own = (select(TenantQualityRate.percent)
           .where(TenantQualityRate.tenant_id == tenant_id, TenantQualityRate.service_line_id == line_id)
           .scalar_subquery())
    wide = select(QualityRate.percent).where(QualityRate.service_line_id == line_id).scalar_subquery()
    return db.session.scalar(select(func.coalesce(own, wide, literal(Decimal(0))))) or Decimal(0)


def set_provider_rate(actor: User, *, line_key: str, percent: object, ip: str | None = None) -> LineRate:
    """Set a line's provider-wide rate (managers, provider admins); in the platform's audit log."""
    line = _line(line_key)
    value = parse_percent(percent)
    previous = db.session.scalar(select(QualityRate.percent).where(QualityRate.service_line_id == line.id))
    now = utcnow()
    db.session.execute(
        insert(QualityRate).values(id=new_id(), service_line_id=line.id, percent=value, updated_at=now,
                                   updated_by_id=actor.id)
        .on_conflict_do_update(index_elements=[QualityRate.service_line_id],
                               set_={"percent": value, "updated_at": now, "updated_by_id": actor.id}))
    audit.record("quality_rate.set", audit.Actor.of(actor), object_type="service_line", object_id=line.id, ip=ip,
                 data={"line": line.key, "percent": str(value),
                       "previous": str(previous) if previous is not None else None})
    db.session.commit()
    return LineRate(line.key, line.name, value)


def set_tenant_rate(actor: User, tenant: Tenant, *, line_key: str, percent: object,
                    ip: str | None = None) -> LineRate:
    """Give the bound tenant a rate of its own for a line, or (``percent`` empty) go back to the provider's.

    Managers of the tenant and provider admins (the gate); in the tenant's audit log, internal.
    """
    line = _line(line_key)
    value = parse_percent(percent, optional=True)
    previous = db.session.scalar(select(TenantQualityRate.percent)
                                 .where(TenantQualityRate.service_line_id == line.id))
    if value is None:
        db.session.execute(delete(TenantQualityRate).where(TenantQualityRate.service_line_id == line.id))
    else:
        now = utcnow()
        db.session.execute(
            insert(TenantQualityRate).values(id=new_id(), tenant_id=tenant.id, service_line_id=line.id,
                                             percent=value, updated_at=now, updated_by_id=actor.id)
            .on_conflict_do_update(index_elements=[TenantQualityRate.tenant_id, TenantQualityRate.service_line_id],
                                   set_={"percent": value, "updated_at": now, "updated_by_id": actor.id}))
    audit.record("quality_rate.set", audit.Actor.of(actor), tenant_id=tenant.id, object_type="service_line",
                 object_id=line.id, ip=ip, internal=True,
                 data={"line": line.key, "percent": str(value) if value is not None else None,
                       "previous": str(previous) if previous is not None else None})
    wide = db.session.scalar(select(QualityRate.percent).where(QualityRate.service_line_id == line.id))
    db.session.commit()
    return LineRate(line.key, line.name, wide, value)


# --- the draw ----------------------------------------------------------------------------------

class Rng(Protocol):
    """What the draw needs of a source of randomness (``random.Random`` and ``SystemRandom`` have it)."""

    def randrange(self, stop: int, /) -> int: ...


# The operating system's randomness (``os.urandom``): nobody can predict or replay which task is checked.
SYSTEM_RNG: Rng = secrets.SystemRandom()
# Where a test puts a seeded ``random.Random`` to make the draws of a whole flow reproducible. Nothing in
# the application sets it, so production always draws with ``SYSTEM_RNG``.
RNG_EXTENSION = "quality.rng"


def rng() -> Rng:
    """The source of the draws: the application's injected one (tests), else the operating system's."""
    if has_app_context():
        return current_app.extensions.get(RNG_EXTENSION) or SYSTEM_RNG
    return SYSTEM_RNG


def drawn(percent: Decimal, source: Rng | None = None) -> bool:
    """One draw at ``percent`` (0 to 100, two decimals): a number below 10,000 from ``source`` (default
    ``rng()``) against the rate in hundredths of a percent, so 0 % never draws and 100 % always does."""
    return (source or rng()).randrange(SCALE) < int(percent * 100)


def draw(task: Task, *, source: Rng | None = None) -> uuid.UUID | None:
    """Draw a task that has just reached ``done`` for a second check, at its tenant's and line's rate.

    Called by ``portal.work.services.move`` in the transaction of the move, with the task's row
    locked; returns the new check's id, or None when it was not drawn.

    Why at completion, not in a nightly batch: the check then comes while the period is still open
    and the person who did the work still remembers it, so a finding is cheap to fix (a batch would
    find March's errors after March's books went out); each completion is one decision, made once, in
    the transaction that completes the task, so there is nothing to reconcile (which tasks did last
    night's batch see, did it run twice, did it not run); and since the draw is made with the
    operating system's randomness at that moment, nobody can tell beforehand which work is checked.
    The cost is one read of the rate and, for a drawn task, one insert. ``source`` (or the
    application's injected ``rng()``) makes the draws reproducible in tests.

    Idempotent: ``task_id`` is unique and the insert is ``ON CONFLICT DO NOTHING``, so a task is
    drawn at most once. A task completed again (its work product changed after the client
    approved it, or it was sent back as rework) never gets a second check, and its check, open or
    done, is left as it is; two completions cannot race, the task's row is locked.
    """
    percent = rate_for(task.tenant_id, task.service_line_id)
    if not drawn(percent, source):
        return None
    check_id = db.session.execute(
        insert(QualityCheck).values(id=new_id(), tenant_id=task.tenant_id, task_id=task.id, percent=percent,
                                    drawn_at=utcnow(), worked_by_id=task.worked_by_id or task.assignee_id,
                                    reviewed_by_id=task.reviewer_id, state="open")
        .on_conflict_do_nothing(index_elements=[QualityCheck.task_id]).returning(QualityCheck.id)).scalar()
    if check_id is not None:
        services.record("quality.drawn", None, task, internal=True, check=str(check_id),
                        line=task.service_line.key, percent=str(percent))
    return check_id


# --- who may check -------------------------------------------------------------------------------

def _too_close(user_id: uuid.UUID, check: QualityCheck, task: Task) -> bool:
    """Whether the person did, reviewed or holds the work (as drawn, or now): then they may not check it."""
    return user_id in {check.worked_by_id, check.reviewed_by_id, task.worked_by_id, task.reviewer_id,
                       task.assignee_id} - {None}


def _is_manager() -> bool:
    return current_scope().role in (Role.PROVIDER_ADMIN, Role.MANAGER)


def check_of(task: Task, *, lock: bool = False) -> QualityCheck | None:
    """The task's check, if it was drawn (the bound tenant's, like the task)."""
    query = select(QualityCheck).where(QualityCheck.task_id == task.id)
    if lock:
        query = query.with_for_update(of=QualityCheck).execution_options(populate_existing=True)
    return db.session.scalar(query)


def _refuse_unless_may_check(actor: User, check: QualityCheck, task: Task) -> None:
    if is_client(current_scope().role):
        raise services.NotYours(_("Only the provider's people check work."))
    if _too_close(actor.id, check, task):
        raise services.NotYours(_("You did or reviewed this work, so someone else checks it."))


def _name(user_id: uuid.UUID | None) -> str | None:
    return db.session.scalar(select(User.name).where(User.id == user_id)) if user_id else None


@dataclass(frozen=True)
class Panel:
    """The check as the task page shows it to the provider's people."""

    check: QualityCheck
    too_close: bool  # the reader did or reviewed the work
    mine: bool  # the reader is checking it
    may_take: bool
    may_record: bool
    checker: str | None


def panel(actor: User, task: Task) -> Panel | None:
    """The task's check for the task page, or None (not drawn, or a client is reading)."""
    if is_client(current_scope().role):
        return None
    check = check_of(task)
    if check is None:
        return None
    too_close = _too_close(actor.id, check, task)
    is_open = check.state == "open"
    mine = check.checker_id == actor.id
    may_record = is_open and not too_close and (check.checker_id in (None, actor.id) or _is_manager())
    return Panel(check, too_close, mine, is_open and not too_close and check.checker_id is None, may_record,
                 check.checker.name if check.checker else None)


# --- the check queue (across the person's tenants) -----------------------------------------------

@dataclass(frozen=True)
class CheckItem:
    """A check as the Quality page lists it (plain values: the cross-tenant scope ends with the read)."""

    id: uuid.UUID
    task_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    title: str
    line: str
    drawn_at: datetime
    percent: Decimal
    checker: str | None
    too_close: bool  # the reader did or reviewed the work: not theirs to take


@dataclass(frozen=True)
class Override:
    """A client's own sampling rate for a line."""

    tenant_slug: str
    tenant_name: str
    line_key: str
    line_name: str
    percent: Decimal


@dataclass(frozen=True)
class QualityPage:
    rates: list[LineRate]
    overrides: list[Override]
    waiting: list[CheckItem]  # nobody checking yet, oldest first
    mine: list[CheckItem]  # taken by the reader, not finished
    others: int  # taken by someone else, not finished


def quality_page(actor: User, *, ip: str | None = None) -> QualityPage:
    """Everything the Quality page shows over the person's clients (one audited cross-tenant read)."""
    tenants = {t.id: t for t in visible_tenants(actor)}
    rates = line_rates()
    with across_tenants(actor, "quality checks", ip=ip) as reach:
        rows, overrides = [], []
        if reach:
            rows = db.session.execute(
                select(QualityCheck.id, QualityCheck.task_id, QualityCheck.tenant_id, Task.title, ServiceLine.name,
                       QualityCheck.drawn_at, QualityCheck.percent, QualityCheck.checker_id,
                       QualityCheck.worked_by_id, QualityCheck.reviewed_by_id, Task.worked_by_id, Task.reviewer_id,
                       Task.assignee_id)
                .join(Task, Task.id == QualityCheck.task_id).join(ServiceLine, ServiceLine.id == Task.service_line_id)
                .where(QualityCheck.state == "open", (QualityCheck.checker_id.is_(None))
                       | (QualityCheck.checker_id == actor.id))
                .order_by(QualityCheck.drawn_at, QualityCheck.id).limit(PAGE)).all()
            others = db.session.scalar(select(func.count()).select_from(QualityCheck).where(
                QualityCheck.state == "open", QualityCheck.checker_id.is_not(None),
                QualityCheck.checker_id != actor.id)) or 0
            overrides = [Override(tenants[tid].slug, tenants[tid].name, key, name, percent)
                         for tid, key, name, percent in db.session.execute(
                             select(TenantQualityRate.tenant_id, ServiceLine.key, ServiceLine.name,
                                    TenantQualityRate.percent)
                             .join(ServiceLine, ServiceLine.id == TenantQualityRate.service_line_id)).all()
                         if tid in tenants]
        else:
            others = 0
    db.session.commit()  # the recorded read
    items = {"waiting": [], "mine": []}
    me = actor.name
    for (id_, task_id, tid, title, line, drawn_at, percent, checker_id, *people) in rows:
        item = CheckItem(id_, task_id, tenants[tid].slug, tenants[tid].name, title, line, drawn_at, percent,
                         me if checker_id else None, actor.id in set(people) - {None})
        items["mine" if checker_id else "waiting"].append(item)
    overrides.sort(key=lambda o: (o.tenant_name.lower(), o.line_name.lower()))
    return QualityPage(rates, overrides, items["waiting"], items["mine"], others)


@dataclass(frozen=True)
class Taken:
    """The check a person received (plain values)."""

    id: uuid.UUID
    task_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    title: str


# The oldest check nobody has taken, with its task's title and tenant's slug in one round trip. Only the
# check's row is locked, and locked rows are skipped: two takers never get the same check, nor wait.
_TAKE = (select(QualityCheck, Task.title, Tenant.slug)
         .join(Task, Task.id == QualityCheck.task_id).join(Tenant, Tenant.id == QualityCheck.tenant_id)
         .where(QualityCheck.state == "open", QualityCheck.checker_id.is_(None))
         .order_by(QualityCheck.drawn_at, QualityCheck.id)
         .options(lazyload("*")).limit(1).with_for_update(skip_locked=True, of=QualityCheck))


def take_next(actor: User, *, only: list[uuid.UUID] | None = None, ip: str | None = None) -> Taken | None:
    """Hand the oldest waiting check of the actor's tenants (narrowed to ``only``) to the actor.

    ``FOR UPDATE SKIP LOCKED``: concurrent takers each get a different check and never wait on each
    other; a check is handed out once (it then has a checker) and never to the person who did,
    reviewed or holds the work. Only tenants the actor reaches are searched (``across_tenants``,
    enforced by row-level security); the take is recorded in the check's own tenant's log.
    """
    with across_tenants(actor, "take next check", only=only, record=False) as reach:
        if not reach:
            return None
        me = actor.id
        found = db.session.execute(_TAKE.where(
            QualityCheck.worked_by_id.is_distinct_from(me), QualityCheck.reviewed_by_id.is_distinct_from(me),
            Task.worked_by_id.is_distinct_from(me), Task.reviewer_id.is_distinct_from(me),
            Task.assignee_id.is_distinct_from(me))).first()
        if found is None:
            db.session.rollback()
            return None
        check, title, slug = found
        check.checker_id, check.taken_at = me, utcnow()
        audit.record("quality.taken", audit.Actor.of(actor), tenant_id=check.tenant_id, object_type="task",
                     object_id=check.task_id, ip=ip, internal=True, data={"name": title, "check": str(check.id)})
        taken = Taken(check.id, check.task_id, check.tenant_id, slug, title)
        db.session.commit()
        return taken


def _open_check(actor: User, task_id: str) -> tuple[Task, QualityCheck]:
    """The task (row locked, as every move locks it) and its open check, which ``actor`` may work on."""
    task = services.get_task(task_id, lock=True)
    check = check_of(task, lock=True)
    if check is None:
        raise NotFound(description=_("This task was not drawn for a quality check."))
    _refuse_unless_may_check(actor, check, task)
    if check.state != "open":
        raise services.Conflict(_("This check is finished: its findings are recorded."))
    return task, check


def take(actor: User, task_id: str, *, ip: str | None = None) -> QualityCheck:
    """Take the check of one task of the bound tenant (from its page); a check someone took answers 409."""
    task, check = _open_check(actor, task_id)
    if check.checker_id not in (None, actor.id):
        raise services.Conflict(_("%(name)s is checking this task already.", name=_name(check.checker_id)))
    if check.checker_id is None:
        check.checker_id, check.taken_at = actor.id, utcnow()
        services.record("quality.taken", actor, task, internal=True, ip=ip, check=str(check.id))
    db.session.commit()
    return check


# --- findings and rework ----------------------------------------------------------------------------

def _findings(finding: str | None, kind: str | None, note: str | None,
              rework: bool) -> tuple[str, str | None, str | None]:
    errors: dict[str, str] = {}
    finding = (finding or "").strip()
    kind = (kind or "").strip() or None
    note = (note or "").strip() or None
    if finding not in FINDINGS:
        errors["finding"] = _("Choose what the check found: no findings, minor or major.")
    if finding in WITH_FINDINGS:
        if kind not in KINDS:
            errors["kind"] = _("Choose what kind of error it is.")
        if note is None:
            errors["note"] = _("Say what was wrong: the person who did the work reads it.")
    else:
        kind = None  # nothing found: nothing to classify
    if note is not None and len(note) > NOTE_MAX:
        errors["note"] = _("Keep the note to %(n)d characters.", n=NOTE_MAX)
    if rework and finding not in WITH_FINDINGS:
        errors["rework"] = _("Nothing to send back: the check found nothing wrong.")
    if errors:
        raise QualityError(errors)
    return finding, kind, note


def record_findings(actor: User, tenant: Tenant, task_id: str, *, finding: str | None, kind: str | None = None,
                    note: str | None = None, rework: bool = False, ip: str | None = None) -> QualityCheck:
    """Record what the check of a task found and, with ``rework``, send the work back.

    By whoever took the check (taking it now if nobody has), or by a manager, who takes it over;
    never by the person who did, reviewed or holds the work (403). The task's row is locked first,
    as every move locks it: a rework and another move of the same task cannot interleave.
    """
    task, check = _open_check(actor, task_id)
    if check.checker_id not in (None, actor.id) and not _is_manager():
        raise services.NotYours(_("%(name)s is checking this task; only they or a manager can record what it "
                                  "found.", name=_name(check.checker_id)))
    finding, kind, note = _findings(finding, kind, note, rework)
    target = next_state(task.state, "rework") if rework else None  # 409 when the task is no longer done
    before, now = check.checker_id, utcnow()
    check.checker_id, check.taken_at = actor.id, check.taken_at if before == actor.id else now
    check.state, check.finding, check.kind, check.note, check.checked_at = "done", finding, kind, note, now
    services.record("quality.checked", actor, task, internal=True, ip=ip, check=str(check.id), finding=finding,
                    kind=kind, rework=bool(rework), taken_over=str(before) if before not in (None, actor.id) else None)
    if target is not None:
        _rework(actor, task, check, target, ip=ip)
    db.session.commit()
    return check


def _rework(actor: User, task: Task, check: QualityCheck, target: State, *, ip: str | None) -> None:
    """Send finished work back to whoever holds it (the state machine's ``rework``), and tell them.

    The client sees the task go from done back to in progress, without a reason; its earlier approval
    no longer counts (the corrected work is approved again). Nobody holding it: back to its line's queue.
    """
    source = State(task.state)
    if task.assignee_id is None:
        target = State.OPEN
    task.state, task.done_at, task.updated_at = target, None, utcnow()
    task.approved_sha256 = task.approved_by_id = task.approved_at = None
    event = TaskEvent(id=new_id(), tenant_id=task.tenant_id, task=task, actor_id=actor.id, actor_label=actor.name,
                      kind="moved", from_state=source, to_state=target, data={"move": "rework"})
    db.session.add(event)
    db.session.flush()  # the event's row first: the check refers to it
    check.rework_event_id = event.id
    services.record("quality.rework", actor, task, internal=True, ip=ip, check=str(check.id), source=str(source),
                    target=str(target))
    notify.notify(task, "rework", [task.assignee_id], actor_id=actor.id)


# --- one tenant's checks (the API) ---------------------------------------------------------------------

def checks(*, state: str = "open", after: tuple[datetime, uuid.UUID] | None = None,
           limit: int = PAGE) -> tuple[list[QualityCheck], tuple[datetime, uuid.UUID] | None]:
    """The bound tenant's checks in ``state`` (open: the queue), oldest drawn first, by keyset."""
    if state not in ("open", "done"):
        raise services.WorkError(_("Unknown state; use open or done."))
    query = (select(QualityCheck).where(QualityCheck.state == state)
             .order_by(QualityCheck.drawn_at, QualityCheck.id))
    if after is not None:
        query = query.where(tuple_(QualityCheck.drawn_at, QualityCheck.id) > tuple_(*after))
    rows = list(db.session.scalars(query.limit(limit + 1)))
    page = rows[:limit]
    return page, (page[-1].drawn_at, page[-1].id) if len(rows) > limit else None

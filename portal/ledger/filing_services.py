"""The filing calendar of a tenant: its settings (on its books), its deadlines with their state, and the tasks
they open through the recurring-work machinery.

A tenant's settings live on ``ledger_books`` (migration 0025): how often it files VAT, whether payroll is run and
how often the PIT withheld was filed, the first month of its fiscal year, and the first day whose deadlines count
(by default the day its books started, so a new client is not shown years of "overdue" returns). The provider's
admin or manager changes them (audited in the client's access log).

Each deadline opens its task ``lead_days`` before it is due, once: ``open_due_tasks`` runs in the scheduler's
daily recurring-work job and inserts with ``portal.work.services.open_keyed_task`` on the key
``filing:<rule>:<period>``, whose unique index makes a second run, or two at once, harmless.

Every function here works on the tenant bound to the request or job (the ORM's tenant guard scopes the reads).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.ledger import filing
from portal.ledger.models import Book
from portal.ledger.services import LedgerError, book_of
from portal.work.models import Task
from portal.work.services import WorkError, open_keyed_task, service_line
from portal.work.states import State
from tenants import audit
from tenants.models import Tenant, User
from tenants.zones import tenant_zone, today_in

log = logging.getLogger(__name__)
STATES = ("upcoming", "open", "done", "overdue", "cancelled")
MONTHS_SHOWN = 12  # this month and the next eleven, plus whatever is overdue before them
EARLIEST = date(2024, 1, 1)  # the first year of the working-day calendar's holiday table
FIELDS = ("vat_period", "payroll", "pit_period", "fiscal_year_start", "filing_since")


def settings_of(book: Book) -> filing.Settings:
    return filing.Settings(vat_period=book.vat_period, payroll=book.payroll, pit_period=book.pit_period,
                           fiscal_year_start=book.fiscal_year_start)


def books_started(book: Book, tenant: Tenant) -> date:
    """The day the books were started, on the tenant's clock."""
    return book.created_at.astimezone(tenant_zone(tenant.id)).date()


def counted_since(book: Book, tenant: Tenant) -> date:
    """The first day whose deadlines count: the one the provider set, or the day the books started."""
    return book.filing_since if book.filing_since is not None else books_started(book, tenant)


# --- the settings -----------------------------------------------------------------------------------------------

def save_settings(actor: User, tenant: Tenant, typed: dict[str, str], ip: str | None = None) -> dict[str, list]:
    """Save the calendar's settings as typed on the form (strings); every error at once in a ``LedgerError``.

    Who: the provider's admin or manager (``tenant:filing.setup``). Commits and records
    ``ledger.filing_settings_changed`` with what changed (from, to); returns the changes ({} when nothing did, and
    then records nothing: a second click of the same form changes nothing).
    """
    book = db.session.scalar(select(Book).with_for_update())
    if book is None:
        raise LedgerError(_("Bookkeeping is not on for this client yet: choose its chart of accounts first."))
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    for field in ("vat_period", "pit_period"):
        if typed.get(field) not in filing.FREQUENCIES:
            errors[field] = _("Choose monthly or quarterly.")
        values[field] = typed.get(field)
    if typed.get("payroll") not in ("on", "off"):
        errors["payroll"] = _("Say whether the provider runs this client's payroll.")
    values["payroll"] = typed.get("payroll") == "on"
    try:
        values["fiscal_year_start"] = int(typed.get("fiscal_year_start") or "")
        if not 1 <= values["fiscal_year_start"] <= 12:
            raise ValueError
    except ValueError:
        errors["fiscal_year_start"] = _("The fiscal year starts in a month, 1 to 12.")
    today = today_in(tenant_zone(tenant.id))
    raw_since = (typed.get("filing_since") or "").strip()
    try:
        values["filing_since"] = date.fromisoformat(raw_since) if raw_since else None
    except ValueError:
        errors["filing_since"] = _("Write the date as YYYY-MM-DD (for example %(example)s), or leave it empty to "
                                   "count from the day the books started.", example=today.isoformat())
    else:
        since = values["filing_since"]
        if since is not None and not EARLIEST <= since <= today + timedelta(days=366):
            errors["filing_since"] = _("Give a day from %(first)s to a year from today.", first=EARLIEST.isoformat())
    if errors:
        db.session.rollback()  # the books' row is not held while the form is shown again
        raise LedgerError(_("The filing calendar's settings were not saved: correct the fields marked."), errors)
    changes = {field: [_plain(getattr(book, field)), _plain(values[field])] for field in FIELDS
               if getattr(book, field) != values[field]}
    if not changes:
        db.session.rollback()
        return {}
    for field in changes:
        setattr(book, field, values[field])
    audit.record("ledger.filing_settings_changed", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="ledger_book", object_id=book.id, ip=ip, data={"changes": changes})
    db.session.commit()
    return changes


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


# --- the calendar ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A deadline as the calendar shows it: its state, and its task once it has one."""

    deadline: filing.Deadline
    state: str  # STATES
    task_id: uuid.UUID | None


@dataclass(frozen=True)
class Calendar:
    settings: filing.Settings
    since: date
    today: date
    until: date
    rows: list[Row]  # overdue ones first (oldest first), then by due date

    @property
    def overdue(self) -> list[Row]:
        return [r for r in self.rows if r.state == "overdue"]

    def months(self) -> list[tuple[date, list[Row]]]:
        """The rows that are not overdue, by the month they are due in (only months with a deadline)."""
        out: dict[date, list[Row]] = {}
        for row in self.rows:
            if row.state != "overdue":
                out.setdefault(row.deadline.due.replace(day=1), []).append(row)
        return list(out.items())


def state_of(deadline: filing.Deadline, task: tuple[uuid.UUID, str] | None, today: date) -> str:
    """upcoming (no task yet), open (its task open), done, cancelled (its task was), or overdue (past its due
    date and not done, with or without a task)."""
    if task is not None and task[1] == State.DONE:
        return "done"
    if task is not None and task[1] == State.CANCELLED:
        return "cancelled"
    if deadline.due < today:
        return "overdue"
    return "upcoming" if task is None else "open"


def _tasks(keys: list[str]) -> dict[str, tuple[uuid.UUID, str]]:
    if not keys:
        return {}
    return {key: (task_id, state) for key, task_id, state in db.session.execute(
        select(Task.recurrence_key, Task.id, Task.state).where(Task.recurrence_key.in_(keys)))}


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, 1)


def calendar(tenant: Tenant, today: date) -> Calendar | None:
    """The bound tenant's calendar on ``today`` (its own date): every deadline due this month and in the next
    eleven, and those before it still overdue; None while bookkeeping is off. Who: ``tenant:filing.view``."""
    book = book_of(tenant)
    if book is None:
        return None
    settings, since = settings_of(book), counted_since(book, tenant)
    until = _add_months(today, MONTHS_SHOWN) - timedelta(days=1)
    found = filing.deadlines(filing.rules(), settings, since=since, until=until)
    tasks = _tasks([d.key for d in found])
    first = today.replace(day=1)
    rows = [Row(d, state_of(d, tasks.get(d.key), today), tasks[d.key][0] if d.key in tasks else None)
            for d in found]
    rows = [r for r in rows if r.deadline.due >= first or r.state == "overdue"]
    rows.sort(key=lambda r: (r.state != "overdue", r.deadline.due))
    return Calendar(settings, since, today, until, rows)


# --- opening the tasks ----------------------------------------------------------------------------------------

def task_title(deadline: filing.Deadline, locale: str) -> str:
    """"VAT return 2026-11 (due 2026-12-21)", in the tenant's language."""
    lang = "vi" if locale.startswith("vi") else "en"
    with force_locale(lang):
        return _("%(task)s %(period)s (due %(date)s)", task=deadline.rule.task[lang], period=deadline.period.label,
                 date=deadline.due.isoformat())


def open_due_tasks(tenant_id: uuid.UUID | str, today: date | None = None) -> int:
    """Job (with the recurring tasks, once a day): open the task of every deadline whose day to open has come, each
    once (``filing:<rule>:<period>``); returns how many were opened. Nothing while bookkeeping is off; a deadline
    due before the calendar counts is never opened. "Today" is the tenant's own date."""
    tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
    book = book_of(tenant) if tenant is not None else None
    if book is None:
        return 0
    today = today or today_in(tenant_zone(tenant.id))
    found = filing.deadlines(filing.rules(), settings_of(book), since=counted_since(book, tenant),
                             until=today + timedelta(days=filing.MAX_LEAD_DAYS))
    lines, opened = {}, 0
    for deadline in found:
        if deadline.opens_on > today:
            continue
        key = deadline.rule.line
        if key not in lines:
            try:
                lines[key] = service_line(key)
            except WorkError:  # the provider removed the line: the calendar still shows the deadline
                log.warning("filing calendar: no service line %r for %s", key, deadline.key)
                lines[key] = None
        if lines[key] is None:
            continue
        if open_keyed_task(tenant.id, lines[key], deadline.key, title=task_title(deadline, tenant.locale),
                           source="filing", priority=2, due=deadline.due, rule=deadline.rule.key,
                           period=deadline.period.key) is not None:
            opened += 1
    db.session.commit()
    return opened

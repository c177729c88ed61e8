"""A tenant's time in one month as a CSV file, for the time page's "Download CSV" and the API.

The same entries as the month page (``portal.work.time.month_totals``): finished entries
that started in the month, in the tenant's own calendar, so the file adds up to the page.
One row per entry. Text cells go through ``portal.spreadsheet`` (a note like
``=HYPERLINK(...)`` stays text) and the file starts with a byte order mark, so spreadsheets
read it as UTF-8 (Vietnamese names). Every export is recorded in the tenant's log as
``time.exported``, internal like all time: the client never sees time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from portal import spreadsheet
from portal.extensions import db
from portal.work.kpi import Month
from portal.work.models import ServiceLine, Task, TimeEntry
from tenants import audit
from tenants.models import Tenant, User
from tenants.zones import start_of_day, tenant_zone

# Column names are identifiers (like the offboarding export's), the same in every language,
# so a script reading the API's file does not depend on who made the token.
COLUMNS = ("date", "person", "task", "service_line", "minutes", "hours", "billable", "note")
MIME = "text/csv; charset=utf-8"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class TimeCsv:
    """The file to send: its name, its bytes and how many entries it holds."""

    filename: str
    content: bytes
    entries: int


def hours(minutes: int) -> str:
    """``95`` → ``"1.58"``: decimal hours, two places, a dot as the separator."""
    return str((Decimal(minutes) / 60).quantize(_CENT, rounding=ROUND_HALF_UP))


def month_csv(actor: User, tenant: Tenant, month: Month, *, via: str, ip: str | None = None) -> TimeCsv:
    """The bound tenant's finished time entries of ``month`` as a CSV file, recorded as ``time.exported``.

    For callers the gate let through with ``tenant:time.view`` (the month page's action), with
    exactly ``tenant`` bound; rows of other tenants cannot appear (the ORM filter and row-level
    security). ``via`` ("page" or "api") is kept in the audit event. Commits the event.
    """
    zone = tenant_zone(tenant.id)
    start, end = start_of_day(month.start, zone), start_of_day(month.end, zone)
    rows = db.session.execute(
        select(TimeEntry.started_at, TimeEntry.minutes, TimeEntry.billable, TimeEntry.note,
               User.name, Task.title, ServiceLine.name)
        .join(User, User.id == TimeEntry.user_id)
        .join(Task, Task.id == TimeEntry.task_id)
        .join(ServiceLine, ServiceLine.id == Task.service_line_id)
        .where(TimeEntry.tenant_id == tenant.id, TimeEntry.minutes.is_not(None),
               TimeEntry.started_at >= start, TimeEntry.started_at < end)
        .order_by(TimeEntry.started_at, TimeEntry.id)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    # Titles and notes are sealed: they sort in Python only (the day and person first, as a timesheet reads).
    lines = sorted(((started.astimezone(zone).date(), person, title, line, minutes, billable, note)
                    for started, minutes, billable, note, person, title, line in rows),
                   key=lambda r: (r[0], r[1].casefold(), r[2].casefold()))
    for day, person, title, line, minutes, billable, note in lines:
        writer.writerow(spreadsheet.row([day.isoformat(), person, title, line, minutes, hours(minutes),
                                         "yes" if billable else "no", note or ""]))
    audit.record("time.exported", audit.Actor.of(actor), tenant_id=tenant.id, object_type="tenant",
                 object_id=tenant.id, internal=True, ip=ip,
                 data={"month": month.key, "entries": len(lines), "via": via})
    db.session.commit()
    return TimeCsv(f"time-{tenant.slug}-{month.key}.csv", ("\ufeff" + out.getvalue()).encode(), len(lines))

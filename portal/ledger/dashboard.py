"""The client's books at a glance: a fiscal year's revenue, expenses and result by month, the cash, what is
owed both ways and the VAT due; and the same figures for one month, as the monthly statement's books section.

Read-only, for the bound tenant (the page, the API and the statement job bind it; every query here goes
through the tenant's scope and row-level security). Every figure comes from the same posted lines as the
reports and agrees with them: the months' results add up to the profit and loss of the year
(``reports.profit_and_loss``), the cash is the balance sheet's cash and bank accounts, the amounts owed are
``open_items.ageing``'s totals and the VAT is ``reports.vat_summary``'s. The months come from one aggregate
query grouped by month and account type (never one query per month); so does the cash's month-end series.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Date, DateTime, and_, case, cast, exists, func, literal, or_, select

from portal.extensions import db
from portal.ledger import open_items, reports, services
from portal.ledger.models import Account, Book, Entry, Line
from tenants.models import Tenant
from tenants.zones import tenant_zone, today_in

FIRST_YEAR = 2000  # the earliest fiscal year the dashboard shows
TOP = 5  # counterparties listed under the ageing


# --- fiscal years ---------------------------------------------------------------------------------------

def add_months(month: date, count: int) -> date:
    """The first day of the month ``count`` months after (or before) ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def year_of(book: Book, day: date) -> int:
    """The fiscal year ``day`` falls in, named by the calendar year it starts in."""
    return day.year if day.month >= book.fiscal_year_start else day.year - 1


def fiscal_year(book: Book, year: int) -> tuple[date, date]:
    """The first and the last day of fiscal year ``year`` (it starts in the book's first month of ``year``)."""
    start = date(year, book.fiscal_year_start, 1)
    return start, add_months(start, 12) - timedelta(days=1)


def today(tenant: Tenant) -> date:
    """Today on the tenant's clock (its books are dated in its time zone)."""
    return today_in(tenant_zone(tenant.id))


def parse_year(book: Book, raw: str | int | None, on: date) -> int:
    """The fiscal year asked for (this one when ``raw`` is empty); a sentence saying what works otherwise."""
    current = year_of(book, on)
    if raw is None or str(raw).strip() == "":
        return current
    try:
        year = int(str(raw).strip())
    except ValueError:
        year = None
    if year is None or not FIRST_YEAR <= year <= current:
        raise services.LedgerError(_("Choose a year from %(first)d to %(last)d, written in four digits (for example "
                                     "%(last)d).", first=FIRST_YEAR, last=current), {"year": _("Not a year shown.")})
    return year


# --- figures --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    """Revenue and expenses over some months (minor units), each on its accounts' normal side."""

    revenue: int = 0
    expenses: int = 0

    @property
    def result(self) -> int:
        """Profit (positive) or loss (negative), as ``reports.result`` reckons it."""
        return self.revenue - self.expenses

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.revenue + other.revenue, self.expenses + other.expenses)


@dataclass(frozen=True)
class MonthFigures(Totals):
    month: date = date.min  # its first day


@dataclass(frozen=True)
class Change:
    """This year's figure against the same months of last year: the difference and, when last year's figure
    was above zero, the change in percent of it."""

    amount: int
    percent: float | None

    @classmethod
    def of(cls, now: int, before: int) -> Change:
        return cls(now - before, (now - before) / before if before > 0 else None)


@dataclass(frozen=True)
class Owed:
    """Open receivables (or payables) on a day: ``open_items.ageing``'s totals row and the largest rows."""

    total: int
    overdue: int
    buckets: dict[str, int]
    unapplied: int
    top: list[open_items.AgeingRow] = field(default_factory=list)


@dataclass(frozen=True)
class Dashboard:
    """One fiscal year of the bound tenant's books, for the dashboard page and the API."""

    currency: str
    year: int
    start: date
    end: date
    as_of: date  # today, or the year's last day for a past year
    months: list[MonthFigures]  # every month of the fiscal year, posted up to its end
    year_to_date: Totals  # the months from the year's first to ``as_of``'s
    last_year: Totals | None  # the same months a year before; None when nothing was posted in them
    cash: int  # cash and bank on ``as_of``
    cash_months: list[tuple[date, int]]  # each month's closing cash, up to ``as_of`` (its month: on that day)
    receivable: Owed
    payable: Owed
    vat_since: date
    vat_until: date
    vat_due: int
    has_entries: bool  # anything posted up to the year's end (else: the empty state)

    @property
    def posted_in_year(self) -> bool:
        return any(m.revenue or m.expenses for m in self.months)

    @property
    def ytd_until(self) -> date:
        """The first day of the last month counted in the year to date."""
        return self.as_of.replace(day=1)

    def change(self, figure: str) -> Change | None:
        """``figure`` (revenue, expenses, result) against the same months last year, when there was data."""
        if self.last_year is None:
            return None
        return Change.of(getattr(self.year_to_date, figure), getattr(self.last_year, figure))


def _month_of(column):  # noqa: ANN001, ANN202 - a SQL expression: the first day of a date's month
    return cast(func.date_trunc("month", cast(column, DateTime)), Date)


def monthly(since: date, until: date) -> dict[date, Totals]:
    """Revenue and expenses posted ``since``..``until`` per month: one aggregate query. The lines are summed
    per month and account first, then per month, account type and normal side, so each account counts on its
    own normal side exactly as ``reports.profit_and_loss`` counts it."""
    month = _month_of(Entry.entry_date).label("month")
    sums = (select(month, Line.account_id, func.sum(Line.debit).label("debit"), func.sum(Line.credit).label("credit"))
            .join(Entry, and_(Entry.id == Line.entry_id, Entry.state == "posted", Entry.entry_date >= since,
                              Entry.entry_date <= until, Entry.source != reports.CARRY))
            .group_by(month, Line.account_id).subquery())
    query = (select(sums.c.month, Account.type, Account.normal, func.sum(sums.c.debit), func.sum(sums.c.credit))
             .join(sums, sums.c.account_id == Account.id).where(Account.type.in_(("revenue", "expense")))
             .group_by(sums.c.month, Account.type, Account.normal))
    out: dict[date, list[int]] = {}
    for day, kind, normal, debit, credit in db.session.execute(query):
        amount = int(debit) - int(credit) if normal == "debit" else int(credit) - int(debit)
        figures = out.setdefault(day, [0, 0])
        figures[0 if kind == "revenue" else 1] += amount
    return {day: Totals(revenue, expenses) for day, (revenue, expenses) in out.items()}


def cash_accounts(tenant: Tenant) -> list[uuid.UUID]:
    """The cash and bank accounts: the groups the chart's ``cash`` and ``bank`` accounts sit in (on the
    Vietnamese charts 111 and 112, so foreign currency cash and every bank's sub-account count too)."""
    prefixes = []
    for role in ("cash", "bank"):
        account = services.role_account(tenant, role)
        if account is None:
            continue
        parent = db.session.get(Account, account.parent_id) if account.parent_id else None
        prefixes.append(parent.code if parent is not None and parent.type == "asset" else account.code)
    if not prefixes:
        return []
    return list(db.session.scalars(select(Account.id).where(or_(*(Account.code.startswith(p) for p in prefixes)))))


def cash_by_month(tenant: Tenant, start: date, as_of: date) -> tuple[int, list[tuple[date, int]]]:
    """The cash and bank balance on ``as_of`` and at the end of each month from ``start``'s, the last one on
    ``as_of``. One query: what was posted before ``start`` in one sum, then the movements per month."""
    ids = cash_accounts(tenant)
    months, month = [], start.replace(day=1)
    while month <= as_of:
        months.append(month)
        month = add_months(month, 1)
    if not ids:
        return 0, [(m, 0) for m in months]
    bucket = case((Entry.entry_date < start, literal(None, Date)), else_=_month_of(Entry.entry_date)).label("month")
    rows = dict(db.session.execute(
        select(bucket, func.sum(Line.debit - Line.credit)).join(Entry, Entry.id == Line.entry_id)
        .where(Line.account_id.in_(ids), Entry.state == "posted", Entry.entry_date <= as_of).group_by(bucket)).all())
    balance, series = int(rows.get(None) or 0), []
    for month in months:
        balance += int(rows.get(month) or 0)
        series.append((month, balance))
    return balance, series


def cash_on(tenant: Tenant, day: date) -> int:
    """The cash and bank accounts' balance on ``day`` (debit - credit: they are assets)."""
    ids = cash_accounts(tenant)
    if not ids:
        return 0
    return int(db.session.scalar(select(func.coalesce(func.sum(Line.debit - Line.credit), 0))
                                 .join(Entry, Entry.id == Line.entry_id)
                                 .where(Line.account_id.in_(ids), Entry.state == "posted",
                                        Entry.entry_date <= day)) or 0)


def vat_due(tenant: Tenant, since: date, until: date) -> int:
    """Output VAT minus input VAT posted ``since``..``until``: the VAT page's total over the same dates."""
    output = services.role_account(tenant, "output_vat")
    if output is None:
        return 0
    inputs = tuple(a.code for a in (services.role_account(tenant, r) for r in ("input_vat", "input_vat_assets")) if a)
    return sum(r.due for r in reports.vat_summary(until, since=since, output_code=output.code, input_codes=inputs))


def owed(tenant: Tenant, kind: str, as_of: date, *, top: int = 0) -> Owed:
    """What customers owe (``receivable``) or what is owed to suppliers (``payable``) on ``as_of``."""
    rows, total = open_items.ageing(tenant, kind, as_of)
    return Owed(total.total, total.overdue, dict(total.buckets), total.unapplied, rows[:top])


def build(tenant: Tenant, year: int, *, on: date | None = None) -> Dashboard:
    """Fiscal year ``year`` of the bound tenant's books as of ``on`` (today on its clock by default).

    Callers: the dashboard page and the API, after ``tenant:ledger.view``; the books must be on.
    """
    book = services.book_of(tenant)
    if book is None:
        raise services.LedgerError(_("Bookkeeping is not on for this client yet: choose its chart of accounts first."))
    on = on or today(tenant)
    start, end = fiscal_year(book, year)
    as_of = min(max(on, start), end)
    before = add_months(start, -12)
    by_month = monthly(before, end)
    months = []
    for month in (add_months(start, i) for i in range(12)):
        figures = by_month.get(month, Totals())
        months.append(MonthFigures(figures.revenue, figures.expenses, month))
    ytd_months = [m for m in months if m.month <= as_of]
    year_to_date = sum(ytd_months, Totals())
    last_months = [by_month[add_months(m.month, -12)] for m in ytd_months if add_months(m.month, -12) in by_month]
    cash, cash_months = cash_by_month(tenant, start, as_of)
    vat_since = as_of.replace(day=1)
    has_entries = bool(db.session.scalar(select(exists().where(Entry.state == "posted", Entry.entry_date <= end))))
    return Dashboard(
        currency=book.currency, year=year, start=start, end=end, as_of=as_of, months=months,
        year_to_date=Totals(year_to_date.revenue, year_to_date.expenses),
        last_year=sum(last_months, Totals()) if last_months else None,
        cash=cash, cash_months=cash_months,
        receivable=owed(tenant, "receivable", as_of, top=TOP), payable=owed(tenant, "payable", as_of, top=TOP),
        vat_since=vat_since, vat_until=as_of, vat_due=vat_due(tenant, vat_since, as_of), has_entries=has_entries)


# --- the monthly statement's books section --------------------------------------------------------------

def month_summary(tenant: Tenant, first: date, last: date) -> dict[str, Any]:
    """A month of the books as plain, JSON-ready data (amounts in the books' currency's minor unit): its
    result, the cash at its end, its VAT due, and the receivables and payables open and overdue at its end."""
    book = services.book_of(tenant)
    pl = reports.profit_and_loss(last, since=first)
    receivable, payable = owed(tenant, "receivable", last), owed(tenant, "payable", last)
    return {"currency": book.currency, "month": first.isoformat(), "revenue": pl.total("revenue"),
            "expenses": pl.total("expense"), "result": reports.result(pl), "cash": cash_on(tenant, last),
            "vat_due": vat_due(tenant, first, last),
            "receivable": receivable.total, "receivable_overdue": receivable.overdue,
            "payable": payable.total, "payable_overdue": payable.overdue}


def statement_section(window) -> dict[str, Any] | None:  # noqa: ANN001 - a billing.meters.Window
    """The statement's books section for ``window``'s month (registered with ``billing.sections``); None for
    a tenant without books, so the section is absent."""
    if services.book_of(window.tenant) is None:
        return None
    first = window.month.start
    return month_summary(window.tenant, first, window.month.end - timedelta(days=1))

"""The books dashboard, /t/<tenant_slug>/books/dashboard: a fiscal year of the books at a glance for the client
(and the provider's people who keep them), with the charts drawn on the server (``portal.work.charts``), each
with its numbers in a table, and every tile opening the report behind it.

Thin, like ``views``: parse the year, call ``dashboard.build`` once, render. Read-only, behind
``tenant:ledger.view``; the gate bound the tenant, so another tenant's books are never reached from here.
"""

from __future__ import annotations

from babel.numbers import format_compact_decimal
from flask import abort, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_percent, get_locale
from flask_babel import gettext as _

from portal.access import requires
from portal.billing.render import format_money, minor_units
from portal.ledger import bp, open_items, services
from portal.ledger import dashboard as figures
from portal.ledger.views import _not_started
from portal.work import charts


def year_label(board: figures.Dashboard) -> str:
    """The fiscal year as people name it: 2026, or 04/2026–03/2027 when it does not start in January."""
    if board.start.month == 1:
        return str(board.year)
    return f"{format_date(board.start, 'MM/y')}–{format_date(board.end, 'MM/y')}"


def _ages() -> dict[str, str]:
    """The ageing's columns, in the reader's language."""
    return {"current": _("Not due yet"), "1-30": _("1–30 days late"), "31-60": _("31–60 days late"),
            "61-90": _("61–90 days late"), "over_90": _("Over 90 days late")}


def _charts(board: figures.Dashboard, locale: str) -> dict[str, object]:
    """The three charts: money in full in their descriptions and tooltips, short on their gridlines."""
    scale = 10 ** minor_units(board.currency)

    def money(value: float) -> str:
        return format_money(int(value), board.currency, locale)

    def short(value: float) -> str:
        return format_compact_decimal(value / scale, locale=locale, fraction_digits=1)

    pattern = "'T'M" if locale.startswith("vi") else "MMM"  # T1…T12 as Vietnamese reports write months
    monthly = charts.columns_and_line(
        [(format_date(m.month, pattern), m.revenue, m.expenses, m.result) for m in board.months],
        title=_("Revenue, expenses and result by month, %(year)s", year=year_label(board)),
        names=(_("revenue"), _("expenses"), _("result")), fmt=money, tick=short)
    cash = charts.line_chart([(format_date(month, pattern), balance) for month, balance in board.cash_months],
                             title=_("Cash and bank at the end of each month"), fmt=money, tick=short)
    ages = _ages()
    ageing = charts.stacked_bars(
        [(_("Owed to you"), [board.receivable.buckets[b] for b in open_items.BUCKETS]),
         (_("You owe"), [board.payable.buckets[b] for b in open_items.BUCKETS])],
        title=_("What is owed to you and what you owe, by how long it is overdue"),
        segments=[ages[b] for b in open_items.BUCKETS], fmt=money)
    return {"monthly": monthly, "cash": cash, "ageing": ageing}


@bp.route("/t/<tenant_slug>/books/dashboard")
@requires("tenant:ledger.view")
def dashboard(tenant_slug: str) -> ResponseReturnValue:
    """A fiscal year of the books (this one unless ``?year=``): tiles, the months, the cash, the ageing."""
    book = services.book_of(g.tenant)
    if book is None:
        return _not_started()
    on = figures.today(g.tenant)
    try:
        year = figures.parse_year(book, request.args.get("year"), on)
    except services.LedgerError as exc:
        abort(400, description=str(exc))
    board = figures.build(g.tenant, year, on=on)
    locale = str(get_locale() or "en")
    links = {"pl": url_for("ledger.profit_and_loss", tenant_slug=tenant_slug, since=board.start.isoformat(),
                           until=board.as_of.isoformat()),
             "pl_year": url_for("ledger.profit_and_loss", tenant_slug=tenant_slug, since=board.start.isoformat(),
                                until=board.end.isoformat()),
             "sheet": url_for("ledger.balance_sheet", tenant_slug=tenant_slug, on=board.as_of.isoformat()),
             "vat": url_for("ledger.vat", tenant_slug=tenant_slug, since=board.vat_since.isoformat(),
                            until=board.vat_until.isoformat()),
             "receivables": url_for("ledger.ageing", tenant_slug=tenant_slug, kind="receivables",
                                    as_of=board.as_of.isoformat()),
             "payables": url_for("ledger.ageing", tenant_slug=tenant_slug, kind="payables",
                                 as_of=board.as_of.isoformat())}
    current = figures.year_of(book, on)
    return render_template("ledger/dashboard.html", tenant=g.tenant, board=board, charts=_charts(board, locale),
                           links=links, ages=_ages(), buckets=open_items.BUCKETS,
                           year_label=year_label(board), last_year_label=_last_year_label(board),
                           previous_year=year - 1 if year > figures.FIRST_YEAR else None,
                           next_year=year + 1 if year < current else None, percent=_percent)


def _last_year_label(board: figures.Dashboard) -> str:
    """The same months a year before, as the tiles compare with them: 01/2025–11/2025."""
    first, last = figures.add_months(board.start, -12), figures.add_months(board.ytd_until, -12)
    if first == last:
        return format_date(first, "MM/y")
    return f"{format_date(first, 'MM/y')}–{format_date(last, 'MM/y')}"


def _percent(value: float) -> str:
    return format_percent(abs(value), format="#,##0%")

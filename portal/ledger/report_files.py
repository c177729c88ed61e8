"""The books' reports as files: XLSX and PDF with the figures, dates and words of the pages.

Each report is built once here as a ``Report`` (a title, its dates, tables of typed cells) from the same
functions the pages call (``reports``), then written out: as XLSX (amounts as numbers in the currency's
major unit, so a spreadsheet adds them up; text made safe by ``portal.spreadsheet``) or as PDF (A4, a print
template rendered by WeasyPrint in the reader's language). Every download is audited as
``ledger.report_exported``, so a client sees its own downloads in its access log ("The books").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask import render_template
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.billing import render
from portal.extensions import db
from portal.ledger import reports, services
from portal.ledger.models import Account
from tenants import audit
from tenants.models import Tenant, User, utcnow
from tenants.zones import reader_zone

STATIC = Path(__file__).resolve().parent.parent / "static"
FORMATS = ("xlsx", "pdf")
PDF_MAX_ROWS = 5000  # a longer report is a spreadsheet's job: WeasyPrint would take minutes over it
NAMES = {"trial-balance": _l("Trial balance"), "profit-and-loss": _l("Profit and loss"),
         "balance-sheet": _l("Balance sheet"), "vat": _l("VAT"), "receivables": _l("Receivables by age"),
         "payables": _l("Payables by age"), "account": _l("Account ledger")}
BUCKET_LABELS = {"current": _l("Current"), "1-30": _l("1–30 days"), "31-60": _l("31–60 days"),
                 "61-90": _l("61–90 days"), "over_90": _l("Over 90 days")}  # open_items.BUCKETS, in words
MIMETYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}
HEADER_ROWS = 7  # title, client, dates, generated at, currency, a blank row, the columns


class ReportTooLarge(services.LedgerError):
    """The report has more rows than a PDF is made of: narrow the dates, or take the XLSX."""


@dataclass(frozen=True)
class Column:
    """A column: its heading and what its cells hold (``text``, ``money`` in the minor unit, ``date``, ``number``)."""

    label: str
    kind: str = "text"


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[object]]
    totals: list[list[object]] = field(default_factory=list)
    heading: str | None = None


@dataclass
class Report:
    """A report ready to be written out: ``key`` (``NAMES``), the dates it covers, its tables and notes."""

    key: str
    title: str
    dates: dict[str, date]  # since and until, or on (a balance sheet, an ageing)
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    account: str | None = None  # an account ledger's code

    @property
    def period(self) -> str:
        """The dates in words, in the reader's language."""
        if "on" in self.dates:
            return _("On %(day)s", day=format_date(self.dates["on"]))
        return _("From %(since)s to %(until)s", since=format_date(self.dates["since"]),
                 until=format_date(self.dates["until"]))

    def filename(self, tenant: Tenant, fmt: str) -> str:
        name = f"account-{self.account}" if self.account else self.key
        days = "-".join(d.isoformat() for d in self.dates.values())
        return f"{tenant.slug}-{name}-{days}.{fmt}"

    @property
    def wide(self) -> bool:
        """More columns than an upright A4 page holds: printed across."""
        return any(len(t.columns) > 6 for t in self.tables)

    @property
    def size(self) -> int:
        return sum(len(t.rows) + len(t.totals) for t in self.tables)


def rate_label(rate: str) -> str:
    """A VAT rate as people read it: "10%", "KCT" (not subject), or "no rate given"."""
    return f"{rate}%" if rate and rate[0].isdigit() else (rate or _("no rate given"))


def _name(name_vi: str, name_en: str) -> str:
    """An account's name in the reader's language (the chart's legal name in Vietnamese)."""
    return name_vi if str(get_locale() or "en").startswith("vi") else name_en


# --- the reports ----------------------------------------------------------------------------------------

def trial_balance(since: date, until: date) -> Report:
    rows = reports.trial_balance(until, since=since)
    columns = [Column(_("Account")), Column(_("Name")), Column(_("Debit"), "money"), Column(_("Credit"), "money"),
               Column(_("Balance"), "money")]
    table = Table(columns, [[r.code, _name(r.name_vi, r.name_en), r.debit, r.credit, r.balance] for r in rows],
                  [[_("Total"), "", sum(r.debit for r in rows), sum(r.credit for r in rows), None]])
    return Report("trial-balance", str(NAMES["trial-balance"]), {"since": since, "until": until}, [table])


def _section_rows(statement: reports.Statement, kind: str, title: str) -> list[list[object]]:
    return [[title, r.code, _name(r.name_vi, r.name_en), r.balance] for r in statement.rows.get(kind, [])]


def _statement_columns() -> list[Column]:
    return [Column(_("Section")), Column(_("Account")), Column(_("Name")), Column(_("Amount"), "money")]


def profit_and_loss(since: date, until: date) -> Report:
    statement = reports.profit_and_loss(until, since=since)
    result = reports.result(statement)
    revenue, expenses = _("Revenue"), _("Expenses")
    table = Table(_statement_columns(),
                  _section_rows(statement, "revenue", revenue) + _section_rows(statement, "expense", expenses),
                  [[_("Total revenue"), "", "", statement.total("revenue")],
                   [_("Total expenses"), "", "", statement.total("expense")],
                   [_("Profit") if result >= 0 else _("Loss"), "", "", result]])
    return Report("profit-and-loss", str(NAMES["profit-and-loss"]), {"since": since, "until": until}, [table])


def balance_sheet(on: date) -> Report:
    sheet, unclosed = reports.balance_sheet(on)
    sections = (("asset", _("Assets")), ("liability", _("Liabilities")), ("equity", _("Equity")))
    rows = [row for kind, title in sections for row in _section_rows(sheet, kind, title)]
    totals = [[_("Total %(section)s", section=title.lower()), "", "", sheet.total(kind)] for kind, title in sections]
    totals += [[_("Result not yet closed to equity"), "", "", unclosed],
               [_("Liabilities, equity and result"), "", "",
                sheet.total("liability") + sheet.total("equity") + unclosed]]
    return Report("balance-sheet", str(NAMES["balance-sheet"]), {"on": on}, [Table(_statement_columns(), rows, totals)])


def account_ledger(account: Account, since: date, until: date) -> Report:
    opening, lines = reports.general_ledger(account, until, since=since)
    columns = [Column(_("Date"), "date"), Column(_("Entry"), "number"), Column(_("Description")),
               Column(_("Debit"), "money"), Column(_("Credit"), "money"), Column(_("Balance"), "money")]
    rows: list[list[object]] = [[since, None, _("Opening balance"), None, None, opening]]
    rows += [[line.entry_date, line.number, line.description or line.memo or "", line.debit or None,
              line.credit or None, line.balance] for line in lines]
    closing = lines[-1].balance if lines else opening
    table = Table(columns, rows, [[None, None, _("Closing balance"), sum(x.debit for x in lines),
                                   sum(x.credit for x in lines), closing]])
    title = f"{NAMES['account']} {account.code} · {_name(account.name_vi, account.name_en)}"
    return Report("account", title, {"since": since, "until": until}, [table], account=account.code)


def ageing(tenant: Tenant, kind: str, as_of: date) -> Report:
    found = reports.ageing(tenant, kind, as_of)
    columns = [Column(_("Counterparty")), *(Column(str(label), "money") for label in BUCKET_LABELS.values()),
               Column(_("Less payments not applied"), "money"), Column(_("Total"), "money")]

    def cells(row, label: str) -> list[object]:  # noqa: ANN001 - an open_items.AgeingRow
        return [label, *(row.buckets[b] for b in BUCKET_LABELS), -row.unapplied, row.total]

    table = Table(columns, [cells(r, r.counterparty or _("No counterparty given")) for r in found.rows],
                  [cells(found.total, _("Total"))])
    key = "receivables" if kind == "receivable" else "payables"
    return Report(key, str(NAMES[key]), {"on": as_of}, [table], [agreement(found)])


def agreement(found: reports.Ageing) -> str:
    """Whether the ageing's total is the balance sheet's figure for the same accounts, in a sentence."""
    if found.agrees:
        return _("The total equals the balance of account %(code)s on the balance sheet on %(day)s.",
                 code=found.code or "", day=format_date(found.as_of))
    return _("The total differs from the balance of account %(code)s on the balance sheet on %(day)s: tell the "
             "provider's team.", code=found.code or "", day=format_date(found.as_of))


def vat(tenant: Tenant, since: date, until: date, per: str) -> Report:
    output, inputs = reports.vat_accounts(tenant)
    rows = reports.vat_summary(until, since=since, output_code=output, input_codes=inputs) if output else []
    periods = reports.vat_by_period(until, since=since, output_code=output, input_codes=inputs,
                                    per=per) if output else []
    figures = [Column(label, "money") for label in _vat_labels()]
    summary = Table([Column(_("Rate")), *figures],
                    [[rate_label(r.rate), r.output, r.input, r.due] for r in rows],
                    [[_("Total"), sum(r.output for r in rows), sum(r.input for r in rows), sum(r.due for r in rows)]],
                    heading=_("Per rate"))
    by_period = Table([Column(_("Period")), Column(_("From"), "date"), Column(_("To"), "date"), Column(_("Rate")),
                       *figures],
                      [[period_label(p.start, per), p.start, p.end, rate_label(p.rate), p.output, p.input, p.due]
                       for p in periods],
                      [[_("Total"), None, None, "", sum(p.output for p in periods), sum(p.input for p in periods),
                        sum(p.due for p in periods)]],
                      heading=_("Per month") if per == "month" else _("Per quarter"))
    return Report("vat", str(NAMES["vat"]), {"since": since, "until": until}, [summary, by_period])


def _vat_labels() -> tuple[str, str, str]:
    return _("On sales (output)"), _("On purchases (input)"), _("Due")


def period_label(start: date, per: str) -> str:
    """A month as "11/2026", a quarter as "Q4/2026"."""
    return f"{start:%m/%Y}" if per == "month" else _("Q%(n)d/%(year)d", n=(start.month - 1) // 3 + 1, year=start.year)


# --- written out ----------------------------------------------------------------------------------------

def _major(amount: int, places: int) -> int | Decimal:
    """An amount in the minor unit as a number of the major unit: VND stays an integer, USD cents become dollars."""
    return int(amount) if places == 0 else Decimal(int(amount)).scaleb(-places)


def _generated() -> str:
    return _("Generated at %(when)s (%(zone)s)", when=format_datetime(utcnow(), "short"), zone=str(reader_zone()))


def _sheet_name(title: str) -> str:
    """A sheet's name as Excel takes it: none of ``[]:*?/\\``, at most 31 characters."""
    return "".join(" " if c in "[]:*?/\\" else c for c in title)[:31].strip() or "Report"


def to_xlsx(report: Report, tenant: Tenant, currency: str) -> bytes:
    """The report as a workbook: a sheet per table, each under the same heading rows (``HEADER_ROWS``)."""
    from portal.spreadsheet import xlsx

    places = render.minor_units(currency)
    head = [[report.title], [tenant.name], [report.period], [_generated()],
            [_("Amounts in %(currency)s", currency=currency)], []]
    sheets: dict[str, list[list[object]]] = {}
    for table in report.tables:
        kinds = [c.kind for c in table.columns]
        body = [[_major(v, places) if k == "money" and v is not None else v for v, k in zip(row, kinds, strict=True)]
                for row in table.rows + table.totals]
        notes = [[], *([n] for n in report.notes)] if report.notes else []
        sheets[_sheet_name(table.heading or report.title)] = [*head, [c.label for c in table.columns], *body,
                                                             *notes]
    return xlsx(sheets, header_rows=HEADER_ROWS)


def to_pdf(report: Report, tenant: Tenant, currency: str) -> bytes:
    """The report on A4 pages through the print template, in the reader's language."""
    if report.size > PDF_MAX_ROWS:
        raise ReportTooLarge(_("This report has more than %(count)d rows, too many for a PDF: narrow the dates, or "
                               "download it as XLSX.", count=PDF_MAX_ROWS))
    locale = str(get_locale() or "en")

    def money(amount: int | None) -> str:
        return "" if amount is None else render.format_money(int(amount), currency, locale)

    html = render_template("ledger/report_pdf.html", report=report, tenant=tenant, generated=_generated(),
                           money=money, format_date=format_date, currency=currency, lang=locale[:2])
    return render.html_to_pdf(html, static_dir=STATIC)


def export(actor: User, tenant: Tenant, report: Report, fmt: str, *, ip: str | None = None) -> tuple[bytes, str, str]:
    """The report written as ``fmt`` (``FORMATS``), its MIME type and file name; the download audited
    (``ledger.report_exported``: which report, format and dates) and committed. Any reader of the books may."""
    book = services.book_of(tenant)
    currency = book.currency if book else tenant.currency
    body = to_xlsx(report, tenant, currency) if fmt == "xlsx" else to_pdf(report, tenant, currency)
    audit.record("ledger.report_exported", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 data={"report": report.key, "format": fmt, **{k: v.isoformat() for k, v in report.dates.items()},
                       **({"account": report.account} if report.account else {})})
    db.session.commit()
    return body, MIMETYPES[fmt], report.filename(tenant, fmt)


def export_words(data: dict) -> str | None:
    """A recorded download in words for the access log: "Trial balance, XLSX, from … to …"."""
    name = NAMES.get(str(data.get("report")))
    if name is None:
        return None
    words = [f"{name} {data['account']}" if data.get("account") else str(name), str(data.get("format", "")).upper()]
    if data.get("on"):
        words.append(_("on %(day)s", day=data["on"]))
    if data.get("since") and data.get("until"):
        words.append(_("from %(since)s to %(until)s", since=data["since"], until=data["until"]))
    return ", ".join(w for w in words if w)

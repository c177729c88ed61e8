"""The books' reports beside the statements of ``views``: receivables and payables by age, each counterparty's
open items, the lines behind a VAT figure, and every report as XLSX or PDF with the page's dates.

Thin: figures come from ``reports`` (the same functions the statements' pages call), files from
``report_files``. Any reader of the books (``tenant:ledger.view``: the provider's people on the client, the
client's admin and approver) sees all of it; nothing here changes the books.
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from portal.access import requires
from portal.ledger import bp, report_files, reports, services
from portal.ledger.views import _actor, _not_started
from tenants.zones import reader_today

AGEING_KINDS = {"receivables": "receivable", "payables": "payable"}
PAGES = {"trial-balance": "ledger.trial_balance", "profit-and-loss": "ledger.profit_and_loss",
         "balance-sheet": "ledger.balance_sheet", "vat": "ledger.vat", "receivables": "ledger.ageing",
         "payables": "ledger.ageing"}


def _day(name: str, default: date, errors: list[str]) -> date:
    """The date ``name`` of the address (``default`` when absent); a date that is not one is said in ``errors``."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(_("“%(typed)s” is not a date: write it as YYYY-MM-DD (2026-11-30), or pick it from the "
                        "calendar.", typed=raw[:40]))
        return default


def _range(errors: list[str], *, month: bool = False) -> tuple[date, date]:
    """``since``..``until`` of the address: today and the start of its year (its month with ``month``)."""
    until = _day("until", reader_today(), errors)
    since = _day("since", until.replace(day=1) if month else date(until.year, 1, 1), errors)
    if since > until:
        errors.append(_("The start date %(since)s is after the end date %(until)s: swap them, or pick again.",
                        since=since.isoformat(), until=until.isoformat()))
    return since, until


def _per() -> str:
    return "quarter" if request.args.get("per") == "quarter" else "month"


# --- receivables and payables by age ---------------------------------------------------------------------

# The kind is a path converter (not a default of two rules), so a bad value in it reaches the boundary's check.
@bp.route("/t/<tenant_slug>/books/<any(receivables, payables):kind>")
@requires("tenant:ledger.view")
def ageing(tenant_slug: str, kind: str) -> ResponseReturnValue:
    """What each customer owes (or each supplier is owed) on a day, by how long it is overdue; the total is the
    balance sheet's figure for the receivable (payable) account that day, and the page says so."""
    kind = AGEING_KINDS[kind]
    if services.book_of(g.tenant) is None:
        return _not_started()
    errors: list[str] = []
    as_of = _day("as_of", reader_today(), errors)
    found = reports.ageing(g.tenant, kind, as_of)
    return render_template("ledger/ageing.html", tenant=g.tenant, kind=kind, found=found, as_of=as_of, errors=errors,
                           agreement=report_files.agreement(found), party_token=reports.party_token,
                           buckets=report_files.BUCKET_LABELS), 400 if errors else 200


@bp.route("/t/<tenant_slug>/books/<any(receivables, payables):kind>/<party>")
@requires("tenant:ledger.view")
def counterparty(tenant_slug: str, kind: str, party: str) -> ResponseReturnValue:
    """One counterparty's open items on a day (each opening its entry and document) and its payments not yet
    applied. Named in the address by its keyed hash, never by its name; one this tenant's books do not know
    (another tenant's included) is not found."""
    kind = AGEING_KINDS[kind]
    try:
        key = reports.party_of_token(party)
    except ValueError:
        abort(404)
    errors: list[str] = []
    as_of = _day("as_of", reader_today(), errors)
    found = reports.counterparty(g.tenant, kind, as_of, key)
    if found is None:
        abort(404)
    return render_template("ledger/counterparty.html", tenant=g.tenant, kind=kind, found=found, as_of=as_of,
                           errors=errors, party=party), 400 if errors else 200


# --- the lines behind a VAT figure ------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/books/vat/lines")
@requires("tenant:ledger.view")
def vat_lines(tenant_slug: str) -> ResponseReturnValue:
    """The VAT lines of one rate (``rate``; empty: none given; absent: all) and side (``output``, ``input``, or
    both) over the dates: what a figure of the VAT page adds up."""
    if services.book_of(g.tenant) is None:
        return _not_started()
    errors: list[str] = []
    since, until = _range(errors, month=True)
    rate = request.args.get("rate")
    side = request.args.get("side") if request.args.get("side") in ("output", "input") else None
    output, inputs = reports.vat_accounts(g.tenant)
    lines = reports.vat_lines(until, since=since, output_code=output, input_codes=inputs, rate=rate,
                              side=side) if output else []
    return render_template("ledger/vat_lines.html", tenant=g.tenant, lines=lines, since=since, until=until, rate=rate,
                           side=side, errors=errors, rate_label=report_files.rate_label,
                           output_total=sum(x.output for x in lines), input_total=sum(x.input for x in lines)), \
        400 if errors else 200


# --- every report as a file -------------------------------------------------------------------------------

@requires("tenant:ledger.view")
def report_file(tenant_slug: str, report: str, fmt: str) -> ResponseReturnValue:
    """A report as XLSX or PDF, with the dates of its page's address (in the access log)."""
    if services.book_of(g.tenant) is None:
        abort(404)
    back = url_for(PAGES[report], tenant_slug=tenant_slug, **_dates_asked(),
                   **({"kind": report} if report in AGEING_KINDS else {}))
    return _send(_built(report), fmt, back)


def _dates_asked() -> dict[str, str]:
    """The address's dates (and VAT's ``per``), to go back to the page they came from."""
    return {k: v for k, v in request.args.items() if k in ("since", "until", "on", "as_of", "per")}


def _built(report: str) -> report_files.Report:
    """``report`` over the dates of the address, as its page reads them (a date that is not one: 400)."""
    errors: list[str] = []
    if report == "balance-sheet":
        on = _day("on", reader_today(), errors)
        _refuse(errors)
        return report_files.balance_sheet(on)
    if report in AGEING_KINDS:
        as_of = _day("as_of", reader_today(), errors)
        _refuse(errors)
        return report_files.ageing(g.tenant, AGEING_KINDS[report], as_of)
    since, until = _range(errors, month=report == "vat")
    _refuse(errors)
    if report == "vat":
        return report_files.vat(g.tenant, since, until, _per())
    builder = report_files.trial_balance if report == "trial-balance" else report_files.profit_and_loss
    return builder(since, until)


def _refuse(errors: list[str]) -> None:
    if errors:
        abort(400, description=" ".join(errors))


# /books/trial-balance.xlsx, /books/trial-balance.pdf, ...: one view, the page's dates.
_ANY_REPORT = ", ".join(f'"{page}"' for page in PAGES)  # quoted: the names hold hyphens
bp.add_url_rule(f"/t/<tenant_slug>/books/<any({_ANY_REPORT}):report>.<any({', '.join(report_files.FORMATS)}):fmt>",
                endpoint="report_file", view_func=report_file)


@bp.route(f"/t/<tenant_slug>/books/accounts/<code>.<any({', '.join(report_files.FORMATS)}):fmt>")
@requires("tenant:ledger.view")
def account_file(tenant_slug: str, code: str, fmt: str) -> ResponseReturnValue:
    """An account's ledger as XLSX or PDF over the dates of its page (in the access log)."""
    account = services.account_by_code(code) if services.book_of(g.tenant) is not None else None
    if account is None:
        abort(404)
    errors: list[str] = []
    since, until = _range(errors)
    _refuse(errors)
    back = url_for("ledger.account_ledger", tenant_slug=tenant_slug, code=code, **_dates_asked())
    return _send(report_files.account_ledger(account, since, until), fmt, back)


def _send(report: report_files.Report, fmt: str, back: str) -> ResponseReturnValue:
    try:
        body, mimetype, filename = report_files.export(_actor(), g.tenant, report, fmt, ip=request.remote_addr)
    except report_files.ReportTooLarge as exc:
        flash(str(exc), "error")
        return redirect(back, 303)
    response = make_response(body)
    response.headers["Content-Type"] = mimetype
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

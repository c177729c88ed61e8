"""The books' reports in the API: receivables and payables by age, profit and loss, balance sheet, VAT.

The same functions as the pages (``portal.ledger.reports``), so the figures are the pages' figures. Any reader
of the books (``tenant:ledger.view``: the client's admin and approver too); nothing here changes them. Amounts
are integers in the books' currency's minor unit (VND has none). A counterparty is named by its ``party``, a
keyed hash that is also its address on the pages, never by its name alone.
"""

from __future__ import annotations

from datetime import date

from flask import abort, g
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.ledger import MONEY, _books
from portal.api.views import _refusals, blp
from portal.errors import problem
from portal.ledger import reports
from tenants.zones import reader_today


class AgeingArgs(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["receivable", "payable"]),
                         metadata={"description": "What customers owe (`receivable`) or what is owed to suppliers."})
    as_of = fields.Date(load_default=None, metadata={"description": "The day (today in the client's time zone)."})


class AgeingRowSchema(Schema):
    party = fields.String(allow_none=True, metadata={
        "description": "The counterparty's key (URL-safe); `unnamed` for the lines that name nobody."})
    counterparty = fields.String(allow_none=True, metadata={"description": "Its name as last written on a line."})
    current = fields.Integer(required=True, metadata={"description": "Not due yet. " + MONEY})
    days_1_30 = fields.Integer(required=True, metadata={"description": "1 to 30 days past due. " + MONEY})
    days_31_60 = fields.Integer(required=True, metadata={"description": MONEY})
    days_61_90 = fields.Integer(required=True, metadata={"description": MONEY})
    over_90 = fields.Integer(required=True, metadata={"description": MONEY})
    unapplied = fields.Integer(required=True, metadata={
        "description": "Payments not yet applied to an invoice, subtracted from the total. " + MONEY})
    total = fields.Integer(required=True, metadata={"description": "The columns less `unapplied`. " + MONEY})


class AgeingSchema(Schema):
    kind = fields.String(required=True)
    as_of = fields.Date(required=True)
    account = fields.String(allow_none=True, metadata={"description": "The chart's receivable (payable) account."})
    rows = fields.List(fields.Nested(AgeingRowSchema), required=True)
    totals = fields.Nested(AgeingRowSchema, required=True)
    balance_sheet = fields.Integer(required=True, metadata={
        "description": "The balance sheet's figure for the same accounts on `as_of`. " + MONEY})
    agrees = fields.Boolean(required=True, metadata={"description": "`totals.total` equals `balance_sheet`."})


class RangeArgs(Schema):
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)


class VatArgs(RangeArgs):
    per = fields.String(load_default="month", validate=validate.OneOf(["month", "quarter"]))


class OnArgs(Schema):
    on = fields.Date(load_default=None, metadata={"description": "The day (today in the client's time zone)."})


class StatementRowSchema(Schema):
    code = fields.String(required=True)
    name_vi = fields.String(required=True)
    name_en = fields.String(required=True)
    balance = fields.Integer(required=True, metadata={"description": "On the account's normal side. " + MONEY})


class ProfitAndLossSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    revenue = fields.List(fields.Nested(StatementRowSchema), required=True)
    expenses = fields.List(fields.Nested(StatementRowSchema), required=True)
    total_revenue = fields.Integer(required=True)
    total_expenses = fields.Integer(required=True)
    result = fields.Integer(required=True, metadata={"description": "Revenue less expenses: a loss is negative."})


class BalanceSheetSchema(Schema):
    on = fields.Date(required=True)
    assets = fields.List(fields.Nested(StatementRowSchema), required=True)
    liabilities = fields.List(fields.Nested(StatementRowSchema), required=True)
    equity = fields.List(fields.Nested(StatementRowSchema), required=True)
    total_assets = fields.Integer(required=True)
    total_liabilities = fields.Integer(required=True)
    total_equity = fields.Integer(required=True)
    unclosed_result = fields.Integer(required=True, metadata={
        "description": "The result not yet closed to equity: assets = liabilities + equity + this."})


class VatRateSchema(Schema):
    rate = fields.String(required=True, metadata={"description": "The lines' tax code (\"10\", \"8\", \"KCT\"); "
                                                                 "empty: none given."})
    output = fields.Integer(required=True, metadata={"description": "On sales. " + MONEY})
    input = fields.Integer(required=True, metadata={"description": "On purchases. " + MONEY})
    due = fields.Integer(required=True, metadata={"description": "Output less input. " + MONEY})


class VatPeriodSchema(VatRateSchema):
    start = fields.Date(required=True, metadata={"description": "The period's first day within the dates asked."})
    end = fields.Date(required=True, metadata={"description": "Its last day within the dates asked."})


class VatSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    per = fields.String(required=True)
    rates = fields.List(fields.Nested(VatRateSchema), required=True)
    due = fields.Integer(required=True, metadata={"description": "What is due for the dates (negative: carried "
                                                                 "forward). " + MONEY})
    periods = fields.List(fields.Nested(VatPeriodSchema), required=True, metadata={
        "description": "Per month (or quarter) and rate; they add up to `rates`."})


def _range(since: date | None, until: date | None, *, month: bool = False) -> tuple[date, date]:
    until = until or reader_today()
    since = since or (until.replace(day=1) if month else date(until.year, 1, 1))
    if since > until:
        abort(problem(422, f"since ({since.isoformat()}) is after until ({until.isoformat()}): swap them."))
    return since, until


def _ageing_row(row, party: str | None) -> dict:  # noqa: ANN001 - an open_items.AgeingRow
    b = row.buckets
    return {"party": party, "counterparty": row.counterparty, "current": b["current"], "days_1_30": b["1-30"],
            "days_31_60": b["31-60"], "days_61_90": b["61-90"], "over_90": b["over_90"],
            "unapplied": row.unapplied, "total": row.total}


def _statement_rows(rows: list) -> list[dict]:
    return [{"code": r.code, "name_vi": r.name_vi, "name_en": r.name_en, "balance": r.balance} for r in rows]


@blp.route("/tenants/<tenant_slug>/books/ageing")
@blp.arguments(AgeingArgs, location="query", as_kwargs=True)
@blp.response(200, AgeingSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_ageing(tenant_slug: str, kind: str, as_of: date | None) -> dict:
    """Receivables or payables by age

    What each counterparty owes (or is owed) on `as_of`, by days past the due date (current, 1-30, 31-60,
    61-90, over 90), less payments not yet applied; largest first. `totals.total` is the balance sheet's
    figure for the receivable (payable) accounts that day (`agrees`).
    """
    _books()
    found = reports.ageing(g.tenant, kind, as_of or reader_today())
    return {"kind": kind, "as_of": found.as_of, "account": found.code,
            "rows": [_ageing_row(r, reports.party_token(r.party_key)) for r in found.rows],
            "totals": _ageing_row(found.total, None), "balance_sheet": found.on_sheet, "agrees": found.agrees}


@blp.route("/tenants/<tenant_slug>/books/profit-and-loss")
@blp.arguments(RangeArgs, location="query", as_kwargs=True)
@blp.response(200, ProfitAndLossSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_profit_and_loss(tenant_slug: str, since: date | None, until: date | None) -> dict:
    """Profit and loss

    Revenue and expense accounts with what was posted to them `since`..`until` (today and the start of its
    year by default), their totals and the result.
    """
    _books()
    since, until = _range(since, until)
    statement = reports.profit_and_loss(until, since=since)
    return {"since": since, "until": until, "revenue": _statement_rows(statement.rows["revenue"]),
            "expenses": _statement_rows(statement.rows["expense"]), "total_revenue": statement.total("revenue"),
            "total_expenses": statement.total("expense"), "result": reports.result(statement)}


@blp.route("/tenants/<tenant_slug>/books/balance-sheet")
@blp.arguments(OnArgs, location="query", as_kwargs=True)
@blp.response(200, BalanceSheetSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_balance_sheet(tenant_slug: str, on: date | None) -> dict:
    """The balance sheet

    Assets, liabilities and equity on `on` (every posting up to it) and the result not yet closed to equity.
    """
    _books()
    on = on or reader_today()
    sheet, unclosed = reports.balance_sheet(on)
    return {"on": on, "assets": _statement_rows(sheet.rows["asset"]),
            "liabilities": _statement_rows(sheet.rows["liability"]), "equity": _statement_rows(sheet.rows["equity"]),
            "total_assets": sheet.total("asset"), "total_liabilities": sheet.total("liability"),
            "total_equity": sheet.total("equity"), "unclosed_result": unclosed}


@blp.route("/tenants/<tenant_slug>/books/vat")
@blp.arguments(VatArgs, location="query", as_kwargs=True)
@blp.response(200, VatSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_vat(tenant_slug: str, since: date | None, until: date | None, per: str) -> dict:
    """VAT per rate and per period

    VAT on sales (output) and on purchases (input) per rate `since`..`until` (today and the start of its
    month by default) and what is due; then per month (`per=month`) or quarter and rate.
    """
    _books()
    since, until = _range(since, until, month=True)
    output, inputs = reports.vat_accounts(g.tenant)
    rates = reports.vat_summary(until, since=since, output_code=output, input_codes=inputs) if output else []
    periods = reports.vat_by_period(until, since=since, output_code=output, input_codes=inputs,
                                    per=per) if output else []
    return {"since": since, "until": until, "per": per, "due": sum(r.due for r in rates),
            "rates": [{"rate": r.rate, "output": r.output, "input": r.input, "due": r.due} for r in rates],
            "periods": [{"start": p.start, "end": p.end, "rate": p.rate, "output": p.output, "input": p.input,
                         "due": p.due} for p in periods]}

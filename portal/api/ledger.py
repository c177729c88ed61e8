"""The books API: the chart, journal entries (drafts, posting, reversal) and the trial balance.

Same services as the pages (``portal.ledger.services``). The client's admin and approver read the books
(``tenant:ledger.view``); the provider's staff keep them (``tenant:ledger.keep``). Amounts are integers in
the books' currency's minor unit (VND has none). Another tenant's entry is not found (404).
"""

from __future__ import annotations

from datetime import date

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.views import _caller, _links, _refusals, blp
from portal.errors import problem
from portal.ledger import dashboard, reports, services
from portal.ledger.models import Entry

MONEY = "An integer in the books' currency's minor unit (VND has none)."


class AccountSchema(Schema):
    code = fields.String(required=True)
    parent = fields.String(allow_none=True)
    name_vi = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": ["asset", "liability", "equity", "revenue", "expense",
                                                            "closing"]})
    normal = fields.String(required=True, metadata={"enum": ["debit", "credit"]})
    active = fields.Boolean(required=True)
    postable = fields.Boolean(required=True, metadata={"description": "Lines post to it (an active leaf)."})


class AccountsSchema(Schema):
    chart = fields.String(required=True)
    currency = fields.String(required=True)
    accounts = fields.List(fields.Nested(AccountSchema), required=True)


class LineSchema(Schema):
    account = fields.String(required=True, validate=validate.Length(min=1, max=20))
    debit = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": MONEY})
    credit = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": MONEY})
    description = fields.String(allow_none=True, validate=validate.Length(max=300))
    counterparty = fields.String(allow_none=True, validate=validate.Length(max=300), metadata={
        "description": "Customer or supplier (its tax code in it groups its invoices in the ageing)."})


class EntryInSchema(Schema):
    entry_date = fields.Date(required=True)
    due_date = fields.Date(allow_none=True, load_default=None,
                           metadata={"description": "An invoice's due date (on or after `entry_date`)."})
    memo = fields.String(allow_none=True, validate=validate.Length(max=500))
    lines = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(min=1, max=500))
    post = fields.Boolean(load_default=False, metadata={"description": "Post it at once (else a draft)."})


class EntrySchema(Schema):
    id = fields.UUID(required=True)
    number = fields.Integer(allow_none=True, metadata={"description": "Given at posting, without gaps."})
    entry_date = fields.Date(required=True)
    due_date = fields.Date(allow_none=True)
    state = fields.String(required=True, metadata={"enum": ["draft", "posted"]})
    memo = fields.String(allow_none=True)
    source = fields.String(required=True)
    reverses = fields.UUID(allow_none=True)
    reversed_by = fields.UUID(allow_none=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)


class EntriesSchema(Schema):
    entries = fields.List(fields.Nested(EntrySchema), required=True)


class ReverseSchema(Schema):
    on = fields.Date(required=True, metadata={"description": "The reversal's date (in an open month)."})


class TrialBalanceArgs(Schema):
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)


class TrialBalanceRowSchema(Schema):
    code = fields.String(required=True)
    name_vi = fields.String(required=True)
    name_en = fields.String(required=True)
    type = fields.String(required=True)
    debit = fields.Integer(required=True, metadata={"description": MONEY})
    credit = fields.Integer(required=True, metadata={"description": MONEY})
    balance = fields.Integer(required=True, metadata={"description": "On the account's normal side. " + MONEY})


class TrialBalanceSchema(Schema):
    since = fields.Date(allow_none=True)
    until = fields.Date(required=True)
    rows = fields.List(fields.Nested(TrialBalanceRowSchema), required=True)


def _books():  # noqa: ANN202 - the tenant's Book, or 409
    book = services.book_of(g.tenant)
    if book is None:
        abort(problem(409, "Bookkeeping is not on for this tenant."))
    return book


def _entry_json(entry: Entry) -> dict:
    return {"id": entry.id, "number": entry.number, "entry_date": entry.entry_date, "due_date": entry.due_date,
            "state": entry.state,
            "memo": entry.memo, "source": entry.source, "reverses": entry.reverses_id,
            "reversed_by": entry.reversed_by_id,
            "lines": [{"account": line.account.code, "debit": line.debit, "credit": line.credit,
                       "description": line.description, "counterparty": line.counterparty}
                      for line in entry.lines]}


def _refused(exc: services.LedgerError, status: int = 422, extra: dict | None = None):  # noqa: ANN202
    return problem(status, str(exc), **({"errors": {k: [v] for k, v in exc.errors.items()}} if exc.errors else {}),
                   **(extra or {}))


@blp.route("/tenants/<tenant_slug>/books/accounts")
@blp.response(200, AccountsSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:ledger.view")
def list_ledger_accounts(tenant_slug: str) -> dict:
    """The chart of accounts

    Every account in code order; `postable` ones take lines (active leaves; an account with sub-accounts is
    a heading). 409 while bookkeeping is off.
    """
    book = _books()
    accounts = services.accounts()
    codes = {a.id: a.code for a in accounts}
    leaves = {a.id for a in services.postable(accounts)}
    return {"chart": book.chart, "currency": book.currency,
            "accounts": [{"code": a.code, "parent": codes.get(a.parent_id), "name_vi": a.name_vi,
                          "name_en": a.name_en, "type": a.type, "normal": a.normal, "active": a.active,
                          "postable": a.id in leaves} for a in accounts]}


@blp.route("/tenants/<tenant_slug>/books/entries")
@blp.response(200, EntriesSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:ledger.view")
def list_ledger_entries(tenant_slug: str) -> dict:
    """Journal entries

    Drafts first, then posted entries newest first; at most 200.
    """
    _books()
    return {"entries": [_entry_json(e) for e in services.journal(200)]}


@blp.route("/tenants/<tenant_slug>/books/entries", methods=["POST"])
@blp.arguments(EntryInSchema, example={"entry_date": "2026-05-31", "memo": "Office rent, May",
                                      "lines": [{"account": "6422", "debit": 12_000_000},
                                                {"account": "331", "credit": 12_000_000,
                                                 "counterparty": "Công ty TNHH Nhà Đẹp"}]})
@blp.response(201, EntrySchema)
@_links(201, PostEntry=("post", "/tenants/{tenant_slug}/books/entries/{entry_id}/post",
                        {"entry_id": "$response.body#/id"}),
        ReverseEntry=("post", "/tenants/{tenant_slug}/books/entries/{entry_id}/reverse",
                      {"entry_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.keep")
def create_ledger_entry(body: dict, tenant_slug: str) -> tuple[dict, int]:
    """Save a journal entry (a draft, or posted with `post: true`)

    A draft need not balance. Posting needs debits equal to credits, at least two lines, postable accounts
    and a month that is not closed: 422 with what is wrong otherwise, nothing posted (an entry that could be
    saved is kept as a draft: `draft` is its id). Audited.
    """
    _books()
    lines = [services.LineInput(line["account"], line["debit"], line["credit"], line.get("description"),
                                line.get("counterparty")) for line in body["lines"]]
    try:
        entry = services.save_draft(_caller(), g.tenant, body["entry_date"], lines, memo=body.get("memo"),
                                    due_date=body.get("due_date"), post_it=body["post"], ip=request.remote_addr)
    except services.NotPosted as exc:
        abort(_refused(exc, extra={"draft": str(exc.entry.id)}))
    except services.LedgerError as exc:
        abort(_refused(exc))
    return _entry_json(entry), 201


@blp.route("/tenants/<tenant_slug>/books/entries/<entry_id>/post", methods=["POST"])
@blp.response(200, EntrySchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.keep")
def post_ledger_entry(tenant_slug: str, entry_id: str) -> dict:
    """Post a draft entry

    It is numbered and never changes again. 422 when it does not balance or its month is closed.
    """
    try:
        return _entry_json(services.post(_caller(), g.tenant, entry_id, ip=request.remote_addr))
    except services.LedgerError as exc:
        abort(_refused(exc))


@blp.route("/tenants/<tenant_slug>/books/entries/<entry_id>/reverse", methods=["POST"])
@blp.arguments(ReverseSchema, example={"on": "2026-06-01"})
@blp.response(201, EntrySchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.keep")
def reverse_ledger_entry(body: dict, tenant_slug: str, entry_id: str) -> tuple[dict, int]:
    """Reverse a posted entry

    A new posted entry with every debit and credit swapped, dated `on`; the original is marked reversed.
    """
    try:
        return _entry_json(services.reverse(_caller(), g.tenant, entry_id, body["on"], ip=request.remote_addr)), 201
    except services.LedgerError as exc:
        abort(_refused(exc))


class CarrySchema(Schema):
    since = fields.Date(required=True, metadata={"description": "The period's first day."})
    until = fields.Date(required=True, metadata={"description": "Its last day: the entry's date (an open month)."})


@blp.route("/tenants/<tenant_slug>/books/carry-result", methods=["POST"])
@blp.arguments(CarrySchema, example={"since": "2026-01-01", "until": "2026-12-31"})
@blp.response(201, EntrySchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.keep")
def carry_ledger_result(body: dict, tenant_slug: str) -> tuple[dict, int]:
    """Carry a period's result to retained earnings

    One posted entry dated `until` empties the revenue and expense accounts into the profit and loss summary
    account and moves the result to the current year's retained earnings (profit credited, loss debited). The
    profit and loss report leaves it out. 422 when nothing was posted over the dates or the month is closed.
    """
    _books()
    try:
        entry = services.carry_result(_caller(), g.tenant, body["since"], body["until"], ip=request.remote_addr)
    except services.LedgerError as exc:
        abort(_refused(exc))
    return _entry_json(entry), 201


@blp.route("/tenants/<tenant_slug>/books/trial-balance")
@blp.arguments(TrialBalanceArgs, location="query", as_kwargs=True)
@blp.response(200, TrialBalanceSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_trial_balance(tenant_slug: str, since: date | None, until: date | None) -> dict:
    """The trial balance

    Each account's posted debits and credits dated `since`..`until` (today and the start of its year by
    default), and its balance on its normal side; the debits always equal the credits.
    """
    _books()
    until = until or date.today()
    since = since or date(until.year, 1, 1)
    rows = reports.trial_balance(until, since=since)
    return {"since": since, "until": until,
            "rows": [{"code": r.code, "name_vi": r.name_vi, "name_en": r.name_en, "type": r.type, "debit": r.debit,
                      "credit": r.credit, "balance": r.balance} for r in rows]}


# --- the dashboard ----------------------------------------------------------------------------------------

class DashboardArgs(Schema):
    year = fields.Integer(load_default=None, validate=validate.Range(min=1900, max=9999), metadata={
        "description": "The fiscal year, named by the calendar year it starts in (this one by default)."})


class TotalsSchema(Schema):
    revenue = fields.Integer(required=True, metadata={"description": MONEY})
    expenses = fields.Integer(required=True, metadata={"description": MONEY})
    result = fields.Integer(required=True, metadata={"description": "Revenue less expenses. " + MONEY})


class DashboardMonthSchema(TotalsSchema):
    month = fields.Date(required=True, metadata={"description": "The month's first day."})


class CashMonthSchema(Schema):
    month = fields.Date(required=True, metadata={"description": "The month's first day."})
    balance = fields.Integer(required=True, metadata={"description": "Cash and bank at the month's end (on `as_of` "
                                                                     "for its month). " + MONEY})


class OwedSchema(Schema):
    total = fields.Integer(required=True, metadata={"description": "Open invoices less payments not yet matched. "
                                                                   + MONEY})
    overdue = fields.Integer(required=True, metadata={"description": "Open invoices past their due date. " + MONEY})
    unapplied = fields.Integer(required=True, metadata={"description": "Payments not yet matched to invoices. "
                                                                       + MONEY})
    buckets = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "Open invoices by days past due: `current`, `1-30`, `31-60`, `61-90`, `over_90`."})


class VatDueSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)
    due = fields.Integer(required=True, metadata={"description": "Output VAT less input VAT (negative: carried "
                                                                 "forward). " + MONEY})


class DashboardSchema(Schema):
    currency = fields.String(required=True)
    year = fields.Integer(required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    as_of = fields.Date(required=True, metadata={"description": "Today on the tenant's clock, or the year's last day."})
    months = fields.List(fields.Nested(DashboardMonthSchema), required=True)
    year_to_date = fields.Nested(TotalsSchema, required=True)
    last_year = fields.Nested(TotalsSchema, allow_none=True, metadata={
        "description": "The same months a year before; null when nothing was posted in them."})
    cash = fields.Integer(required=True, metadata={"description": "Cash and bank on `as_of`. " + MONEY})
    cash_months = fields.List(fields.Nested(CashMonthSchema), required=True)
    receivable = fields.Nested(OwedSchema, required=True)
    payable = fields.Nested(OwedSchema, required=True)
    vat = fields.Nested(VatDueSchema, required=True)


def _totals(t: dashboard.Totals) -> dict:
    return {"revenue": t.revenue, "expenses": t.expenses, "result": t.result}


def _owed(o: dashboard.Owed) -> dict:
    return {"total": o.total, "overdue": o.overdue, "unapplied": o.unapplied, "buckets": o.buckets}


@blp.route("/tenants/<tenant_slug>/books/dashboard")
@blp.arguments(DashboardArgs, location="query", as_kwargs=True)
@blp.response(200, DashboardSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:ledger.view")
def ledger_dashboard(tenant_slug: str, year: int | None) -> dict:
    """The books at a glance

    A fiscal year: revenue, expenses and result by month (adding up to the profit and loss of the year), the
    year to date against the same months a year before, cash and bank at each month's end, what customers
    owe and what is owed to suppliers with the overdue part (by age), and this month's VAT due. 422 for a
    year after this one.
    """
    book = _books()
    on = dashboard.today(g.tenant)
    try:
        year = dashboard.parse_year(book, year, on)
    except services.LedgerError as exc:
        abort(_refused(exc))
    board = dashboard.build(g.tenant, year, on=on)
    return {"currency": board.currency, "year": board.year, "start": board.start, "end": board.end,
            "as_of": board.as_of, "months": [{"month": m.month, **_totals(m)} for m in board.months],
            "year_to_date": _totals(board.year_to_date),
            "last_year": _totals(board.last_year) if board.last_year is not None else None,
            "cash": board.cash, "cash_months": [{"month": m, "balance": b} for m, b in board.cash_months],
            "receivable": _owed(board.receivable), "payable": _owed(board.payable),
            "vat": {"since": board.vat_since, "until": board.vat_until, "due": board.vat_due}}

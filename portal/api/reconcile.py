"""The bank reconciliation API: the bank accounts and their links, unmatched transactions with suggestions,
accepting one, undoing a match, and the reconciliation report.

Same services as the pages (``portal.ledger.reconcile``). Reconciling is the provider staff's
(``tenant:ledger.keep``); the accounts' list and the report are read by whoever reads the books
(``tenant:ledger.view``). Amounts are integers in the currency's minor unit, signed: money in is positive.
Another tenant's transaction, link or match is not found (404), like a missing one.
"""

from __future__ import annotations

from datetime import date

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.views import _caller, _refusals, blp
from portal.errors import problem
from portal.ledger import reconcile, services
from portal.ledger.models import BankMatch

MONEY = "An integer in the currency's minor unit, signed: money in is positive."


class BankAccountSchema(Schema):
    link = fields.UUID(allow_none=True, metadata={"description": "The link's id, once linked to a ledger account."})
    bank = fields.String(allow_none=True)
    account_mask = fields.String(allow_none=True)
    currency = fields.String(required=True)
    account = fields.String(allow_none=True, metadata={"description": "The ledger account's code it is kept on."})
    reconciled = fields.Integer(allow_none=True)
    transactions = fields.Integer(allow_none=True)


class BankAccountsSchema(Schema):
    items = fields.List(fields.Nested(BankAccountSchema), required=True)


class ReasonSchema(Schema):
    code = fields.String(required=True, metadata={"enum": ["amount", "set", "part", "reference", "tax_code", "name",
                                                           "date", "early", "late", "book_entry", "rule"]})
    text = fields.String(required=True)
    points = fields.Integer(required=True)


class SuggestionSchema(Schema):
    key = fields.String(required=True, metadata={"description": "What to send to accept it."})
    kind = fields.String(required=True, metadata={"enum": ["items", "entry", "rule"]})
    score = fields.Integer(required=True, metadata={"description": "0 to 100."})
    entries = fields.List(fields.Integer(), required=True, metadata={
        "description": "The numbers of the invoices' entries it settles, or of the entry already in the books."})
    reasons = fields.List(fields.Nested(ReasonSchema), required=True)


class UnmatchedSchema(Schema):
    id = fields.UUID(required=True)
    booked_on = fields.Date(required=True)
    amount = fields.Integer(required=True, metadata={"description": MONEY})
    currency = fields.String(required=True)
    counterparty = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    best = fields.String(allow_none=True, metadata={"description": "The key of the suggestion offered for one "
                                                    "click (none when no suggestion is sure)."})
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)


class UnmatchedPageSchema(Schema):
    reconciled = fields.Integer(required=True)
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(UnmatchedSchema), required=True, metadata={
        "description": "The oldest unmatched transactions (at most 100)."})


class AcceptSchema(Schema):
    suggestion = fields.String(required=True, validate=validate.Length(min=1, max=4000),
                               metadata={"description": "A suggestion's `key`."})


class MatchSchema(Schema):
    id = fields.UUID(required=True)
    transaction = fields.UUID(required=True)
    kind = fields.String(required=True, metadata={"enum": ["items", "entry", "rule", "account"]})
    state = fields.String(required=True, metadata={"enum": ["active", "undone"]})
    amount = fields.Integer(required=True, metadata={"description": MONEY})
    entry = fields.Integer(required=True, metadata={"description": "The number of the entry that books it."})
    reversal = fields.Integer(allow_none=True, metadata={"description": "The number of its reversal, once undone."})
    created = fields.Boolean(required=True, metadata={
        "description": "False when the transaction was reconciled already: nothing was posted again."})


class ReportArgs(Schema):
    on = fields.Date(load_default=None, metadata={"description": "The day (today by default)."})


class ReportLineSchema(Schema):
    day = fields.Date(required=True)
    amount = fields.Integer(required=True, metadata={"description": MONEY})
    text = fields.String(required=True)
    transaction = fields.UUID(allow_none=True)
    entry = fields.Integer(allow_none=True)


class ReportSchema(Schema):
    on = fields.Date(required=True)
    account = fields.String(required=True)
    statement_balance = fields.Integer(allow_none=True, metadata={"description": "None: no statement reaches the "
                                                                  "day."})
    book_balance = fields.Integer(required=True)
    unbooked = fields.List(fields.Nested(ReportLineSchema), required=True, metadata={
        "description": "Bank transactions not in the books yet."})
    unpresented = fields.List(fields.Nested(ReportLineSchema), required=True, metadata={
        "description": "Book entries on the account not on a statement yet."})
    difference = fields.Integer(allow_none=True, metadata={
        "description": "statement_balance - book_balance - sum(unbooked) + sum(unpresented): zero when everything "
                       "is explained."})


def _books() -> None:
    if services.book_of(g.tenant) is None:
        abort(problem(409, "Bookkeeping is not on for this tenant."))


def _refused(exc: services.LedgerError):  # noqa: ANN202
    return problem(422, str(exc), **({"errors": {k: [v] for k, v in exc.errors.items()}} if exc.errors else {}))


def _match_json(match: BankMatch, created: bool) -> dict:
    return {"id": match.id, "transaction": match.transaction_id, "kind": match.kind, "state": match.state,
            "amount": match.amount, "entry": match.entry.number,
            "reversal": match.reversal.number if match.reversal_id else None, "created": created}


@blp.route("/tenants/<tenant_slug>/books/bank-accounts")
@blp.response(200, BankAccountsSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:ledger.view")
def list_bank_accounts(tenant_slug: str) -> dict:
    """Bank accounts read from statements

    Each with the ledger account it is kept on and how many of its transactions are reconciled, once linked.
    """
    _books()
    out = []
    for seen in reconcile.seen_accounts():
        progress = reconcile.progress(seen.link) if seen.link else None
        out.append({"link": seen.link.id if seen.link else None, "bank": seen.bank, "account_mask": seen.mask,
                    "currency": seen.currency, "account": seen.link.account.code if seen.link else None,
                    "reconciled": progress.reconciled if progress else None,
                    "transactions": progress.total if progress else None})
    return {"items": out}


@blp.route("/tenants/<tenant_slug>/books/bank-accounts/<link_id>/unmatched")
@blp.response(200, UnmatchedPageSchema)
@_refusals(401, 403, 404)
@requires("tenant:ledger.keep")
def list_unmatched_bank_transactions(tenant_slug: str, link_id: str) -> dict:
    """Unmatched transactions with suggestions

    The linked account's oldest transactions not reconciled yet, each with its candidates (best first, with a
    score and the reasons) and `best`, the one offered for one click.
    """
    link = reconcile.get_link(link_id)
    txns = reconcile.unmatched(link)
    progress = reconcile.progress(link)
    items = []
    for txn, suggested in zip(txns, _in_order(reconcile.suggestions(g.tenant, link, txns), txns), strict=True):
        items.append({"id": txn.id, "booked_on": txn.booked_on, "amount": txn.amount, "currency": txn.currency,
                      "counterparty": txn.counterparty_name, "reference": txn.reference,
                      "best": suggested.best.key if suggested.best else None,
                      "suggestions": [{"key": c.key, "kind": c.kind, "score": c.score, "entries": list(c.numbers),
                                       "reasons": [{"code": r.code, "text": str(r.text), "points": r.points}
                                                   for r in c.reasons]} for c in suggested.candidates]})
    return {"reconciled": progress.reconciled, "total": progress.total, "items": items}


def _in_order(suggested: list, txns: list) -> list:
    by_id = {s.txn.id: s for s in suggested}
    return [by_id[t.id] for t in txns]


@blp.route("/tenants/<tenant_slug>/books/bank-transactions/<transaction_id>/accept", methods=["POST"])
@blp.arguments(AcceptSchema, example={"suggestion": "entry:3f1c0e2a-9b7d-4c55-8e61-2d4f6a8b9c01"})
@blp.response(201, MatchSchema)
@blp.alt_response(200, schema=MatchSchema, description="Reconciled already: the existing match, nothing posted.")
@_refusals(401, 403, 404, 422)
@requires("tenant:ledger.keep")
def accept_bank_suggestion(body: dict, tenant_slug: str, transaction_id: str) -> tuple[dict, int]:
    """Accept a suggestion

    Posts the payment entry and settles the invoices (`items`), records the match with an entry already in
    the books (`entry`), or posts by the rule (`rule`). Idempotent: a transaction reconciled already answers
    200 with its match and posts nothing. 422 when the suggestion no longer fits. Audited.
    """
    try:
        done = reconcile.accept(_caller(), g.tenant, transaction_id, body["suggestion"], ip=request.remote_addr)
    except services.LedgerError as exc:
        abort(_refused(exc))
    return _match_json(done.match, done.created), 201 if done.created else 200


@blp.route("/tenants/<tenant_slug>/books/bank-matches/<match_id>/undo", methods=["POST"])
@blp.response(200, MatchSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:ledger.keep")
def undo_bank_match(tenant_slug: str, match_id: str) -> dict:
    """Undo a match

    The payment entry it posted is reversed (both stay in the books) and the transaction is unmatched again;
    a match with an entry recorded by hand only stops. 422 when it was undone already. Audited.
    """
    try:
        return _match_json(reconcile.undo(_caller(), g.tenant, match_id, ip=request.remote_addr), False)
    except services.LedgerError as exc:
        abort(_refused(exc))


@blp.route("/tenants/<tenant_slug>/books/bank-accounts/<link_id>/report")
@blp.arguments(ReportArgs, location="query", as_kwargs=True)
@blp.response(200, ReportSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:ledger.view")
def bank_reconciliation_report(tenant_slug: str, link_id: str, on: date | None) -> dict:
    """The reconciliation report

    The statement's balance and the books' on `on`, every bank transaction not in the books yet and every book
    entry not on a statement yet, and the difference (zero when everything is explained).
    """
    link = reconcile.get_link(link_id)
    found = reconcile.report(link, on or date.today())

    def line(x: reconcile.ReportLine) -> dict:
        return {"day": x.day, "amount": x.amount, "text": x.text, "transaction": x.transaction_id,
                "entry": x.number}

    return {"on": found.on, "account": link.account.code, "statement_balance": found.statement_balance,
            "book_balance": found.book_balance, "unbooked": [line(x) for x in found.unbooked],
            "unpresented": [line(x) for x in found.unpresented], "difference": found.difference}

"""The bank statements API: a document's statements and transactions, and the tenant's CSV mappings.

Same services as the pages (``portal.intake.bank.services``). Whoever sees a document sees the statements
read from it (``tenant:intake.view``; the read is in the access log); the CSV mappings are the provider
staff's (``tenant:intake.map``). Amounts are integers in the currency's minor unit (VND has none, USD has
cents): ``minor_units`` says how many. Another tenant's document is not found (404), like a missing one.
"""

from __future__ import annotations

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.views import _caller, _refusals, blp
from portal.billing.render import minor_units
from portal.errors import problem
from portal.intake.bank import parse_csv, services

MONEY = "An integer in the currency's minor unit (`minor_units` decimals: VND 0, USD 2)."


class BankTransactionSchema(Schema):
    line_no = fields.Integer(required=True)
    booked_on = fields.Date(required=True)
    value_on = fields.Date(allow_none=True)
    amount = fields.Integer(required=True, metadata={"description": "Signed: money in is positive. " + MONEY})
    currency = fields.String(required=True)
    counterparty_name = fields.String(allow_none=True)
    counterparty_account = fields.String(allow_none=True)
    reference = fields.String(allow_none=True, metadata={"description": "The description or reference the bank "
                                                         "gives."})
    bank_ref = fields.String(allow_none=True, metadata={"description": "The bank's own id of the line (OFX FITID, "
                                                        "MT940 bank reference)."})
    balance = fields.Integer(allow_none=True, metadata={"description": "The running balance, when the file gives "
                                                        "it. " + MONEY})


class BankStatementSchema(Schema):
    id = fields.UUID(required=True)
    seq = fields.Integer(required=True, metadata={"description": "Its place in the file (a file may hold "
                                                  "several)."})
    format = fields.String(required=True, metadata={"enum": ["csv", "ofx", "mt940"]})
    bank = fields.String(allow_none=True)
    account_mask = fields.String(allow_none=True, metadata={"description": "The account's last four characters."})
    currency = fields.String(required=True)
    minor_units = fields.Integer(required=True)
    period_start = fields.Date(allow_none=True)
    period_end = fields.Date(allow_none=True)
    opening_balance = fields.Integer(allow_none=True, metadata={"description": MONEY})
    closing_balance = fields.Integer(allow_none=True, metadata={"description": MONEY})
    opening_computed = fields.Boolean(required=True, metadata={"description": "The file gives the closing "
                                                               "balance only (OFX): opening = closing - the lines."})
    continuity = fields.String(required=True, metadata={
        "enum": ["first", "ok", "gap", "unknown"],
        "description": "Whether the opening balance is the closing balance of the account's previous statement "
                       "(`follows`): ok, gap, first (none before it), unknown (no balances)."})
    follows = fields.UUID(allow_none=True, metadata={"description": "The account's previous statement."})
    transactions = fields.List(fields.Nested(BankTransactionSchema), required=True)


class BankStatementsSchema(Schema):
    document_id = fields.UUID(required=True)
    statements = fields.List(fields.Nested(BankStatementSchema), required=True)


class BankCsvMappingSchema(Schema):
    id = fields.UUID(required=True)
    bank = fields.String(required=True)
    fingerprint = fields.String(required=True, metadata={"description": "SHA-256 of the header's column names."})
    header = fields.List(fields.String(), required=True)
    columns = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "The column (0-based) of each field: " + ", ".join(parse_csv.FIELDS) + "."})
    date_format = fields.String(required=True, metadata={"enum": list(parse_csv.DATE_FORMATS)})
    decimal = fields.String(required=True, metadata={"enum": list(parse_csv.DECIMALS)})
    currency = fields.String(allow_none=True, metadata={"description": "When no column holds it."})
    account_mask = fields.String(allow_none=True)
    saved_at = fields.DateTime(required=True)


class BankCsvMappingsSchema(Schema):
    mappings = fields.List(fields.Nested(BankCsvMappingSchema), required=True)


class BankCsvMappingInputSchema(Schema):
    bank = fields.String(required=True, validate=validate.Length(min=1, max=80))
    header = fields.List(fields.String(validate=validate.Length(max=200)), required=True,
                         validate=validate.Length(min=2, max=200), metadata={
                             "description": "The CSV's column names, as in the file: the mapping is found again by "
                                            "them."})
    columns = fields.Dict(keys=fields.String(validate=validate.OneOf(parse_csv.FIELDS)),
                          values=fields.Integer(allow_none=True), required=True)
    date_format = fields.String(required=True, validate=validate.OneOf(list(parse_csv.DATE_FORMATS)))
    decimal = fields.String(required=True, validate=validate.OneOf(list(parse_csv.DECIMALS)))
    currency = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=3))
    account = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))


def _line(ln) -> dict:  # noqa: ANN001 - a BankTransaction
    return {"line_no": ln.line_no, "booked_on": ln.booked_on, "value_on": ln.value_on, "amount": ln.amount,
            "currency": ln.currency, "counterparty_name": ln.counterparty_name,
            "counterparty_account": ln.counterparty_account, "reference": ln.reference, "bank_ref": ln.bank_ref,
            "balance": ln.balance}


def _statement(shown: services.Shown) -> dict:
    s = shown.statement
    return {"id": s.id, "seq": s.seq, "format": s.format, "bank": s.bank, "account_mask": s.account_mask,
            "currency": s.currency, "minor_units": minor_units(s.currency), "period_start": s.period_start,
            "period_end": s.period_end, "opening_balance": s.opening_balance, "closing_balance": s.closing_balance,
            "opening_computed": s.opening_computed, "continuity": s.continuity, "follows": s.follows_id,
            "transactions": [_line(ln) for ln in shown.transactions]}


def _mapping(m) -> dict:  # noqa: ANN001 - a BankCsvMapping
    from portal.intake.bank.step import mask

    return {"id": m.id, "bank": m.bank, "fingerprint": m.fingerprint, "header": m.header,
            "columns": m.mapping["columns"], "date_format": m.mapping["date_format"], "decimal": m.mapping["decimal"],
            "currency": m.mapping.get("currency"), "account_mask": mask(m.account), "saved_at": m.saved_at}


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/bank-statements")
@blp.response(200, BankStatementsSchema)
@_refusals(401, 403, 404)
@requires("tenant:intake.view")
def get_bank_statements(tenant_slug: str, document_id: str) -> dict:
    """The bank statements read from a document

    Each statement of the document's current version (OFX, MT940, or a CSV read with a saved mapping) with
    its balances, whether it follows the account's previous statement, and its transactions. Empty until
    intake has read the file (`GET .../intake` says where it is). The read is in the access log.
    """
    shown = services.read_statements(_caller(), g.tenant, document_id, request.remote_addr)
    return {"document_id": document_id, "statements": [_statement(s) for s in shown]}


@blp.route("/tenants/<tenant_slug>/bank-csv-mappings")
@blp.response(200, BankCsvMappingsSchema)
@_refusals(401, 403, 404)
@requires("tenant:intake.map")
def list_bank_csv_mappings(tenant_slug: str) -> dict:
    """The tenant's CSV mappings

    Which column of each bank's CSV export holds what, as staff saved it for this tenant.
    """
    return {"mappings": [_mapping(m) for m in services.mappings()]}


@blp.route("/tenants/<tenant_slug>/bank-csv-mappings", methods=["PUT"])
@blp.arguments(BankCsvMappingInputSchema, example={
    "bank": "Techcombank", "header": ["Ngày GD", "Số tiền", "Nội dung", "Số dư"],
    "columns": {"date": 0, "amount": 1, "reference": 2, "balance": 3}, "date_format": "%d/%m/%Y",
    "decimal": ",", "currency": "VND"})
@blp.response(200, BankCsvMappingSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:intake.map")
def put_bank_csv_mapping(body: dict, tenant_slug: str) -> dict:
    """Save the mapping for a CSV layout

    Creates or replaces the tenant's mapping for CSV files with this header; audited as
    `intake.bank_mapping_saved`. Documents that failed for want of it are read again with
    `POST .../intake/retry`. 422 names every problem (`errors`).
    """
    given = services.MappingInput(bank=body["bank"], date_format=body["date_format"], decimal=body["decimal"],
                                  currency=body.get("currency"), account=body.get("account"),
                                  columns=dict(body["columns"]))
    try:
        row = services.save_mapping(_caller(), g.tenant, body["header"], given, request.remote_addr)
    except services.MappingInvalid as exc:
        abort(problem(422, "The mapping cannot be saved.", errors=exc.errors))
    return _mapping(row)

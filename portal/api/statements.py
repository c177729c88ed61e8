"""The statement API: a tenant's monthly statements, one with its lines and payments, its PDF, approve, dispute.

Same services as the pages (``portal.billing.answers``, ``portal.billing.documents``); the gate has checked
the token, its tenant and scope, and the action. Who reads statements is who reads them on the pages
(``tenant:statements.view``: the client's admin and approvers, the provider's admin and managers; members
and staff see no money); who answers them, the client's admin and approvers (``tenant:statements.approve``)
with a write token. A statement id of another tenant is not found (404), exactly like one that does not
exist: every read goes through the tenant the request is bound to.

Amounts are integers in the currency's minor unit (VND has none, USD has cents; ``minor_units`` says
which), quantities exact decimals written as strings, so that nothing is lost to floating point.
"""

from __future__ import annotations

from datetime import date
from typing import NoReturn

from flask import abort, current_app, g, request
from flask_babel import force_locale
from flask_babel import gettext as _
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import select, tuple_

from portal.access import requires
from portal.api.pagination import decode_cursor, encode_cursor
from portal.api.schemas import PageArgs, page_of
from portal.api.views import _caller, _links, _refusals, blp
from portal.billing import answers, documents
from portal.billing.models import Payment, Statement
from portal.billing.render import minor_units
from portal.documents.views import attachment
from portal.errors import problem
from portal.extensions import db
from portal.work.kpi import BadMonth, Month
from tenants.zones import tenant_zone, today_in

PAYMENT_STATES = ("unpaid", "partly_paid", "paid", "failed", "refunded", "disputed")
APPROVALS = ("pending", "approved", "disputed")


# --- schemas ---------------------------------------------------------------------------------------

class StatementArgs(PageArgs):
    month = fields.String(load_default=None, metadata={
        "description": "Only the statements of this month (YYYY-MM), every version of it.", "example": "2026-05"})


class StatementTotalsSchema(Schema):
    minor_units = fields.Integer(required=True, metadata={
        "description": "Decimals of the currency (VND 0, USD 2): every amount here is an integer in its minor unit."})
    subtotal = fields.Integer(required=True, metadata={"description": "The fee and usage lines together."})
    discount = fields.Integer(required=True, metadata={"description": "The negotiated discount, taken off the "
                                                                      "subtotal."})
    tax = fields.Integer(required=True)
    total = fields.Integer(required=True, metadata={"description": "Subtotal less discount plus tax."})
    paid = fields.Integer(required=True, metadata={"description": "Payments received (less refunds)."})
    due = fields.Integer(required=True, metadata={"description": "What is still to pay (never below zero)."})


class StatementSchema(Schema):
    id = fields.UUID(required=True)
    month = fields.String(required=True, metadata={"description": "The month billed, YYYY-MM."})
    version = fields.Integer(required=True, metadata={"description": "1, then one more for each correction."})
    reference = fields.String(required=True, metadata={
        "description": "The reference to quote on a bank transfer (it is in the VietQR code)."})
    currency = fields.String(required=True, metadata={"description": "VND or USD."})
    tax_rate_bp = fields.Integer(required=True, metadata={"description": "Tax rate in basis points (1000 is 10 %)."})
    totals = fields.Nested(StatementTotalsSchema, required=True)
    issued_at = fields.DateTime(required=True)
    due_on = fields.Date(required=True, metadata={"description": "The day payment is due."})
    payment_state = fields.String(required=True, validate=validate.OneOf(PAYMENT_STATES))
    approval = fields.String(required=True, validate=validate.OneOf(APPROVALS), metadata={
        "description": "pending until the client approves or disputes it."})
    superseded = fields.Boolean(required=True, metadata={
        "description": "A corrected version replaced it: read and answer the newest version of the month."})
    reason = fields.String(allow_none=True, required=True, metadata={
        "description": "Why this version corrects the one before (null for the first)."})
    pdf_sha256 = fields.String(allow_none=True, required=True, metadata={
        "description": "SHA-256 of the statement's PDF, which an approval or a dispute names; null while the PDF "
                       "is being prepared."})


class StatementLineSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "fee or usage."})
    meter = fields.String(allow_none=True, required=True, metadata={
        "description": "What was counted (usage lines), e.g. documents_received or hours:bookkeeping."})
    label = fields.String(required=True, metadata={
        "description": "The line in words, in the token owner's language (else the tenant's)."})
    quantity = fields.Decimal(required=True, as_string=True, metadata={"description": "Two decimals."})
    included = fields.Decimal(required=True, as_string=True, metadata={
        "description": "Quantity the plan includes (not charged)."})
    unit_price = fields.Integer(required=True, metadata={"description": "In the currency's minor unit."})
    amount = fields.Integer(required=True, metadata={"description": "In the currency's minor unit."})


class StatementPaymentSchema(Schema):
    id = fields.UUID(required=True)
    amount = fields.Integer(required=True, metadata={
        "description": "In the currency's minor unit; negative for a refund."})
    paid_on = fields.Date(required=True)
    method = fields.String(required=True, metadata={"description": "transfer or stripe."})
    reference = fields.String(required=True, metadata={"description": "The bank's or Stripe's reference."})
    recorded_at = fields.DateTime(required=True)


class StatementDetailSchema(StatementSchema):
    lines = fields.List(fields.Nested(StatementLineSchema), required=True, metadata={"description": "In order."})
    payments = fields.List(fields.Nested(StatementPaymentSchema), required=True,
                           metadata={"description": "Oldest first."})


StatementPageSchema = page_of(StatementSchema, "StatementPage")


class StatementApproveInput(Schema):
    class Meta:
        unknown = EXCLUDE  # a tenant_id (or anything else) in the body is ignored

    # Checked by the service after the statement is found, so another tenant's statement is a 404 whatever it says.
    sha256 = fields.String(load_default=None, allow_none=True, metadata={
        "description": "The statement's `pdf_sha256` as you read it: the answer binds to exactly that PDF."})


class StatementDisputeInput(StatementApproveInput):
    reason = fields.String(load_default=None, allow_none=True, metadata={
        "description": "What is wrong with the statement: required, up to 500 characters. It opens a task for the "
                       "provider."})


# --- what the endpoints answer ---------------------------------------------------------------------

def _reader_locale() -> str:
    """The token owner's language, else the tenant's (an API call has no browser to ask)."""
    languages = current_app.config["LANGUAGES"]
    user_locale = _caller().locale
    return user_locale if user_locale in languages else g.tenant.locale


def statement_json(statement: Statement, *, detail: bool = False) -> dict:
    """A statement as the API shows it; ``detail`` adds its lines (labels in the reader's language) and payments."""
    out = {"id": statement.id, "month": f"{statement.month:%Y-%m}", "version": statement.version,
           "reference": statement.reference, "currency": statement.currency, "tax_rate_bp": statement.tax_rate_bp,
           "totals": {"minor_units": minor_units(statement.currency), "subtotal": statement.subtotal,
                      "discount": statement.discount, "tax": statement.tax, "total": statement.total,
                      "paid": statement.paid, "due": statement.due},
           "issued_at": statement.issued_at, "due_on": statement.due_on, "payment_state": statement.payment_state,
           "approval": statement.approval, "superseded": statement.superseded_at is not None,
           "reason": statement.reason, "pdf_sha256": documents.pdf_sha256(statement)}
    if detail:
        names = documents.line_names()
        with force_locale(_reader_locale()):
            out["lines"] = [{"kind": line.kind, "meter": line.meter, "label": documents.line_label(line.label, names),
                             "quantity": line.quantity, "included": line.included, "unit_price": line.unit_price,
                             "amount": line.amount} for line in statement.lines]
        payments = db.session.scalars(select(Payment).where(Payment.statement_id == statement.id)
                                      .order_by(Payment.paid_on, Payment.recorded_at))
        out["payments"] = [{"id": p.id, "amount": p.amount, "paid_on": p.paid_on, "method": p.method,
                            "reference": p.reference, "recorded_at": p.recorded_at} for p in payments]
    return out


def _bad_cursor() -> None:
    abort(400, description=_("The cursor is not valid. Use the next_cursor of a previous response, or leave it out "
                             "to start from the first page."))


def _after(cursor: str | None) -> tuple[date, int] | None:
    """The (month, version) a cursor made by ``statement_page`` points after; 400 when it is not one."""
    if cursor is None:
        return None
    key = decode_cursor(cursor)
    if len(key) != 2 or not isinstance(key[0], str) or type(key[1]) is not int or key[1] < 1:
        _bad_cursor()
    try:
        return date.fromisoformat(key[0]), key[1]
    except ValueError:
        _bad_cursor()
    return None  # not reached: _bad_cursor aborts


def statement_page(*, month: Month | None, after: tuple[date, int] | None,
                   limit: int) -> tuple[list[Statement], tuple[date, int] | None]:
    """The bound tenant's statements, newest month first and, within a month, newest version first.

    Keyset pagination on (month, version), unique within a tenant; returns the page and the key of its last
    row when more follow. The tenant scope (``tenants.isolation``) limits the query to the bound tenant.
    """
    query = select(Statement).order_by(Statement.month.desc(), Statement.version.desc()).limit(limit + 1)
    if month is not None:
        query = query.where(Statement.month == month.start)
    if after is not None:
        query = query.where(tuple_(Statement.month, Statement.version) < tuple_(*after))
    rows = list(db.session.scalars(query))
    page = rows[:limit]
    return page, ((page[-1].month, page[-1].version) if len(rows) > limit else None)


def _month(raw: str | None) -> Month | None:
    if raw is None or not raw.strip():
        return None
    try:
        return Month.parse(raw, Month.of(today_in(tenant_zone(g.tenant.id))).previous())  # the default: an example
    except BadMonth as exc:
        abort(422, description=str(exc))
    return None  # not reached


def _answer_refused(exc: answers.AnswerError) -> NoReturn:
    """A refused answer as a problem: the sentence in ``detail``, each field's message under ``errors``."""
    db.session.rollback()
    abort(problem(422, str(exc), errors={"json": {field: [message] for field, message in exc.errors.items()}}))


# --- endpoints -------------------------------------------------------------------------------------

@blp.route("/tenants/<tenant_slug>/statements")
@blp.arguments(StatementArgs, location="query", as_kwargs=True)
@blp.response(200, StatementPageSchema)
@_links(200, GetStatement=("get", "/tenants/{tenant_slug}/statements/{statement_id}",
                           {"statement_id": "$response.body#/items/0/id"}),
        StatementPdf=("get", "/tenants/{tenant_slug}/statements/{statement_id}/pdf",
                      {"statement_id": "$response.body#/items/0/id"}))
@_refusals(400, 401, 403, 404, 422)
@requires("tenant:statements.view")
def list_statements(tenant_slug: str, cursor: str | None, limit: int, month: str | None) -> dict:
    """The tenant's statements

    Newest month first; a corrected month lists each version, newest first, the older ones
    `superseded`. `month=YYYY-MM` keeps one month. Pass `next_cursor` back as `cursor` until it is null.
    """
    page, next_key = statement_page(month=_month(month), after=_after(cursor), limit=limit)
    return {"items": [statement_json(s) for s in page],
            "next_cursor": encode_cursor([next_key[0].isoformat(), next_key[1]]) if next_key else None}


@blp.route("/tenants/<tenant_slug>/statements/<statement_id>")
@blp.response(200, StatementDetailSchema)
@_refusals(401, 403, 404)
@requires("tenant:statements.view")
def get_statement(tenant_slug: str, statement_id: str) -> dict:
    """A statement, with its lines and payments

    The lines as issued (a later change of plan or price never rewrites them), labelled in the
    token owner's language.
    """
    return statement_json(answers.get_statement(statement_id), detail=True)


@blp.route("/tenants/<tenant_slug>/statements/<statement_id>/pdf")
@blp.doc(responses={"200": {"description": "The statement's PDF, as an attachment.",
                            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
@_refusals(401, 403, 404, 409, 410, 502)
@requires("tenant:statements.view")
def statement_pdf(tenant_slug: str, statement_id: str):  # noqa: ANN201
    """Download a statement's PDF

    The PDF kept in the tenant's vault, decrypted and verified like any document download and
    written to the tenant's access log; its SHA-256 is the statement's `pdf_sha256`. 409 while
    the PDF is being prepared (a minute after the statement is issued): try again then.
    """
    from portal.documents import services as vault

    statement = answers.get_statement(statement_id)
    if statement.document_id is None:
        abort(409, description=_("The statement's PDF is still being prepared: try again in a minute."))
    return attachment(vault.download(_caller(), g.tenant, str(statement.document_id), ip=request.remote_addr))


@blp.route("/tenants/<tenant_slug>/statements/<statement_id>/approve", methods=["POST"])
@blp.arguments(StatementApproveInput, example={
    "sha256": "9f2c4e0d8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190817263"})
@blp.response(200, StatementDetailSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:statements.approve")
def approve_statement(body: dict, tenant_slug: str, statement_id: str) -> dict:
    """Approve a statement

    Send the `pdf_sha256` you read as `sha256`: the approval binds to exactly that PDF. 409 when it
    changed since (or a correction replaced the statement), when it was answered already, or while
    its PDF is being prepared. Needs a write token of the client's admin or an approver.
    """
    statement = answers.approve(_caller(), g.tenant, statement_id, seen_sha256=body.get("sha256"),
                                ip=request.remote_addr)
    return statement_json(statement, detail=True)


@blp.route("/tenants/<tenant_slug>/statements/<statement_id>/dispute", methods=["POST"])
@blp.arguments(StatementDisputeInput, example={
    "sha256": "9f2c4e0d8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190817263",
    "reason": "We received 41 documents in May, not 52."})
@blp.response(200, StatementDetailSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:statements.approve")
def dispute_statement(body: dict, tenant_slug: str, statement_id: str) -> dict:
    """Dispute a statement

    Say what is wrong in `reason` (422 without one) and send the `pdf_sha256` you read as `sha256`.
    A task opens for the provider to answer. 409 as for an approval. Needs a write token of the
    client's admin or an approver.
    """
    answers.get_statement(statement_id)  # another tenant's (or no) statement: 404 before the body is judged
    try:
        statement = answers.dispute(_caller(), g.tenant, statement_id, reason=body.get("reason"),
                                    seen_sha256=body.get("sha256"), ip=request.remote_addr)
    except answers.AnswerError as exc:
        _answer_refused(exc)
    return statement_json(statement, detail=True)

"""The intake API: what reading a document found (its state, steps, kind, text), a tenant's progress, trying again.

Same services as the pages (``portal.intake.services``); the gate has checked the token, its tenant and
scope, and the action. Whoever sees a document sees what was read from it (``tenant:intake.view``);
trying a failed one again is the provider's staff's (``tenant:intake.retry``). A document of another
tenant is not found (404), exactly like one that does not exist.
"""

from __future__ import annotations

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.views import _caller, _refusals, blp
from portal.documents import services as vault
from portal.errors import problem
from portal.intake import services
from portal.intake.models import IntakeRecord

STATES = ("waiting", "running", "done", "failed")


class IntakeArgs(Schema):
    text = fields.Boolean(load_default=False, metadata={"description": "Include the text read from the document."})


class IntakeSchema(Schema):
    document_id = fields.UUID(required=True)
    version = fields.Integer(required=True, metadata={"description": "The document version this is about (the "
                                                                      "current one)."})
    state = fields.String(required=True, metadata={"enum": list(STATES), "description": "waiting, running, done, "
                                                   "or failed (``message`` says why; staff may try again)."})
    step = fields.String(allow_none=True, metadata={"description": "The step running, or the one that failed."})
    steps = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "Each finished step: ``state`` (done or skipped), ``at``, ``note``."})
    pages = fields.Integer(allow_none=True)
    text_source = fields.String(allow_none=True, metadata={"enum": ["layer", "ocr", "mixed"], "description":
                                "The document's own text layer, text recognition, or both."})
    classified = fields.String(allow_none=True, metadata={"description": "What the text reads as: invoice, "
                                                          "receipt, bank_statement, payroll_input, contract, other."})
    message = fields.String(allow_none=True, metadata={"description": "Why it could not be read, in a sentence."})
    text = fields.String(allow_none=True, metadata={"description": "Pages separated by a form feed; only with "
                                                    "``text=true``."})
    finished_at = fields.DateTime(allow_none=True)
    read_fields = fields.List(fields.Nested(lambda: FieldSchema()), allow_none=True, data_key="fields", metadata={
        "description": "An invoice's or a receipt's fields read from its pages (null when none were read)."})
    searchable_copy = fields.Boolean(metadata={"description": "A searchable copy of this scanned PDF was made "
                                               "(the document's page offers it)."})


class FieldSchema(Schema):
    name = fields.String(required=True, metadata={"enum": list(services.FIELD_LABELS)})
    value = fields.String(required=True, metadata={"description": "What stands now: the correction, else the "
                                                   "reading. Dates ISO, amounts without separators."})
    read = fields.Dict(allow_none=True, metadata={"description": "What was read: ``value``, ``confidence`` (0..1), "
                                                  "``page`` and ``box`` ([x0, y0, x1, y1], fractions of the page)."})
    corrected = fields.Dict(allow_none=True, metadata={"description": "Staff's correction: ``value``, ``by``, ``at``."})
    to_check = fields.Boolean(required=True, metadata={"description": "Read with less certainty, not corrected."})


# The fields to correct, each as typed on the page (e.g. "05/11/2026", "1.100.000"); unknown names are refused.
CorrectionsSchema = Schema.from_dict({name: fields.String(validate=validate.Length(max=200))
                                      for name in services.FIELD_LABELS}, name="CorrectionsSchema")


class SearchArgs(Schema):
    q = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "Words that must all be in the document (whole words; diacritics optional).",
        "example": "hoa don 0001234"})


class HitSchema(Schema):
    document_id = fields.UUID(required=True)
    title = fields.String(required=True)
    category = fields.String(required=True)
    exact = fields.Integer(required=True, metadata={"description": "Words found as typed, diacritics and all."})
    snippet = fields.String(required=True, metadata={"description": "Text around the first word found."})


class SearchSchema(Schema):
    results = fields.List(fields.Nested(HitSchema), required=True)


class ProgressSchema(Schema):
    read = fields.Integer(required=True, metadata={"description": "Current versions of live documents read."})
    failed = fields.Integer(required=True)
    waiting = fields.Integer(required=True, metadata={"description": "Still being read."})
    total = fields.Integer(required=True)


def _json(record: IntakeRecord, *, text: bool) -> dict:
    return {"document_id": record.document_id, "version": record.version, "state": record.state, "step": record.step,
            "steps": record.steps, "pages": record.pages, "text_source": record.text_source,
            "classified": record.classified, "finished_at": record.finished_at,
            "message": services.why(record) if record.state == "failed" else None,
            "text": record.text if text else None,
            "read_fields": [{"name": r.name, "value": r.value, "read": r.read, "corrected": r.corrected,
                        "to_check": r.to_check} for r in services.field_rows(record) or ()] or None,
            "searchable_copy": services.has_searchable_copy(record.document_id, record.version)}


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/intake")
@blp.arguments(IntakeArgs, location="query", as_kwargs=True)
@blp.response(200, IntakeSchema)
@_refusals(401, 403, 404)
@requires("tenant:intake.view")
def get_intake(tenant_slug: str, document_id: str, text: bool) -> dict:
    """What reading a document found

    The state of the intake chain on the document's current version and what it left: pages, where the
    text came from, what the document reads as, and the text itself with `text=true`. 404 until the
    vault's announcement of the upload has been heard (a moment after the upload).
    """
    record = services.record_of(vault.get_document(_caller(), document_id))
    if record is None:
        abort(404)
    return _json(record, text=text)


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/intake/retry", methods=["POST"])
@blp.response(202, IntakeSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:intake.retry")
def retry_intake(tenant_slug: str, document_id: str) -> tuple[dict, int]:
    """Read a document that failed again

    From the step that failed; audited as `intake.retried`. 409 when it did not fail.
    """
    try:
        record = services.retry(_caller(), g.tenant, document_id, request.remote_addr)
    except services.IntakeError as exc:
        abort(problem(409, str(exc)))
    return _json(record, text=False), 202


@blp.route("/tenants/<tenant_slug>/documents/<document_id>/intake/fields", methods=["PUT"])
@blp.arguments(CorrectionsSchema, example={"invoice_number": "0001234", "issue_date": "05/11/2026",
                                          "total": "1.100.000"})
@blp.response(200, IntakeSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:intake.correct")
def correct_intake_fields(corrections: dict, tenant_slug: str, document_id: str) -> dict:
    """Correct the invoice fields read from a document

    Only the fields given change; what was read stays as it was (``read``). Each value is checked as the
    page checks it (a tax code's check digit, a real date, an amount): 422 with every field's error at
    once, nothing saved. 409 when no fields were read from the document. Audited as
    `intake.fields_corrected` (the names of the fields, never their values).
    """
    try:
        services.correct_fields(_caller(), g.tenant, document_id, corrections, request.remote_addr)
    except services.FieldErrors as exc:
        abort(problem(422, str(exc), errors={name: [message] for name, message in exc.errors.items()}))
    except services.IntakeError as exc:
        abort(problem(409, str(exc)))
    return _json(services.record_of(vault.get_document(_caller(), document_id)), text=False)


@blp.route("/tenants/<tenant_slug>/search")
@blp.arguments(SearchArgs, location="query", as_kwargs=True)
@blp.response(200, SearchSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:intake.view")
def search_documents(tenant_slug: str, q: str) -> dict:
    """Search the documents by the words inside them

    Every word must be in the document's text (its own text, text recognition, or an e-invoice's
    fields); documents with the words as typed come first, then the newest. Members find their own
    uploads only. The words are never stored: the index holds keyed hashes (docs/security.md). At most
    20 results; the search is in the access log.
    """
    hits = services.search(_caller(), g.tenant, q, request.remote_addr)
    return {"results": [{"document_id": h.document.id, "title": h.document.title, "category": h.document.category,
                         "exact": h.exact, "snippet": h.snippet} for h in hits]}


@blp.route("/tenants/<tenant_slug>/intake")
@blp.response(200, ProgressSchema)
@_refusals(401, 403, 404)
@requires("tenant:intake.view")
def intake_progress(tenant_slug: str) -> dict:
    """How far reading the tenant's documents is

    Current versions of live documents: read, failed, still waiting. The documents page shows the same.
    """
    p = services.progress(_caller())
    return {"read": p.read, "failed": p.failed, "waiting": p.open, "total": p.total}



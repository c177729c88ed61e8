"""The data-entry API: a tenant's templates, and the records keyed with them (read, and keyed).

Same services as the pages (``portal.dataentry.services``). Whoever reads the records on the pages reads
them here (``tenant:dataentry.view``: the provider's people, the client's admin and approver); the provider's
people key them (``tenant:dataentry.key``). Values are JSON by field key: text and tax codes as strings,
numbers as decimal strings (or JSON numbers), amounts as integers in the tenant's currency's minor unit (VND
has none), dates as ISO strings, choices as one of the field's options. Another tenant's template, record
or document is not found (404).
"""

from __future__ import annotations

from datetime import date

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.pagination import decode_seq_cursor, encode_cursor
from portal.api.schemas import PageArgs, page_of
from portal.api.views import _caller, _links, _refusals, blp
from portal.dataentry import services
from portal.dataentry.fields import TYPES
from portal.dataentry.models import Record, Template
from portal.errors import problem

VALUES = ("By field key: text, tax_code and choice as strings; number as a decimal string or a JSON number; "
          "amount as an integer in the tenant's currency's minor unit (VND has none); date as YYYY-MM-DD.")


class DataEntryFieldSchema(Schema):
    key = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": list(TYPES)})
    required = fields.Boolean(required=True)
    max_length = fields.Integer(allow_none=True, metadata={"description": "text: the most characters."})
    min = fields.Raw(allow_none=True, metadata={"description": "number (decimal string) or amount (minor units)."})
    max = fields.Raw(allow_none=True, metadata={"description": "number (decimal string) or amount (minor units)."})
    earliest = fields.String(allow_none=True, metadata={"description": "date: the earliest allowed (YYYY-MM-DD)."})
    latest = fields.String(allow_none=True, metadata={"description": "date: the latest allowed (YYYY-MM-DD)."})
    options = fields.List(fields.String(), metadata={"description": "choice: the values allowed."})


class DataEntryTemplateSchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    currency = fields.String(required=True, metadata={"description": "The currency of its amount fields."})
    archived = fields.Boolean(required=True, metadata={"description": "Nothing new is keyed with it."})
    fields_ = fields.List(fields.Nested(DataEntryFieldSchema), required=True, data_key="fields")


class DataEntryTemplatesSchema(Schema):
    items = fields.List(fields.Nested(DataEntryTemplateSchema), required=True)


class DataEntryRecordSchema(Schema):
    id = fields.UUID(required=True)
    template_id = fields.UUID(required=True)
    number = fields.Integer(required=True, metadata={"description": "The template's records counted from 1."})
    document_id = fields.UUID(allow_none=True)
    document = fields.String(allow_none=True, metadata={"description": "The document's name."})
    values = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True, metadata={"description": VALUES})
    keyed_by = fields.String(allow_none=True)
    keyed_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(allow_none=True)


DataEntryRecordPageSchema = page_of(DataEntryRecordSchema, "DataEntryRecordPage")


class DataEntryRecordArgs(PageArgs):
    since = fields.Date(data_key="from", load_default=None, metadata={
        "description": "Only records keyed on or after this day (YYYY-MM-DD), in the tenant's time zone."})
    until = fields.Date(data_key="to", load_default=None, metadata={
        "description": "Only records keyed on or before this day (YYYY-MM-DD), in the tenant's time zone."})


class DataEntryRecordInSchema(Schema):
    document_id = fields.UUID(load_default=None, allow_none=True, metadata={
        "description": "The document keyed (one of the tenant's); a document has at most one record per template."})
    values = fields.Dict(keys=fields.String(validate=validate.Length(max=60)), values=fields.Raw(allow_none=True),
                         required=True, validate=validate.Length(max=200), metadata={"description": VALUES})


def _template_json(template: Template) -> dict:
    return {"id": template.id, "name": template.name, "description": template.description,
            "currency": g.tenant.currency, "archived": template.archived, "fields_": template.fields}


def _record_json(record: Record) -> dict:
    return {"id": record.id, "template_id": record.template_id, "number": record.number,
            "document_id": record.document_id, "document": record.document.title if record.document else None,
            "values": services.values_of(record), "keyed_by": record.keyed_by.name if record.keyed_by else None,
            "keyed_at": record.keyed_at, "updated_at": record.updated_at}


@blp.route("/tenants/<tenant_slug>/data-entry/templates")
@blp.response(200, DataEntryTemplatesSchema)
@_refusals(401, 403, 404)
@requires("tenant:dataentry.view")
def list_dataentry_templates(tenant_slug: str) -> dict:
    """Data-entry templates

    The tenant's templates by name, archived ones included, each with its fields in the order they are keyed.
    """
    return {"items": [_template_json(t) for t in services.templates(archived=None)]}


@blp.route("/tenants/<tenant_slug>/data-entry/templates/<template_id>/records")
@blp.arguments(DataEntryRecordArgs, location="query", as_kwargs=True)
@blp.response(200, DataEntryRecordPageSchema)
@_refusals(400, 401, 403, 404, 422)
@requires("tenant:dataentry.view")
def list_dataentry_records(tenant_slug: str, template_id: str, cursor: str | None, limit: int,
                           since: date | None, until: date | None) -> dict:
    """A template's records

    In the order they were keyed (record number), optionally only those keyed between two days.
    """
    template = services.get_template(template_id)
    try:
        rows, after = services.records_after(template, after=decode_seq_cursor(cursor), limit=limit, since=since,
                                             until=until)
    except services.DataEntryError as exc:
        abort(problem(422, str(exc)))
    return {"items": [_record_json(r) for r in rows], "next_cursor": encode_cursor([after]) if after else None}


@blp.route("/tenants/<tenant_slug>/data-entry/templates/<template_id>/records", methods=["POST"])
@blp.arguments(DataEntryRecordInSchema, example={"values": {"invoice_number": "0001234", "issue_date": "2026-05-12",
                                                             "amount": 1_100_000}})
@blp.response(201, DataEntryRecordSchema)
@_links(201, GetRecord=("get", "/tenants/{tenant_slug}/data-entry/records/{record_id}",
                        {"record_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:dataentry.key")
def create_dataentry_record(body: dict, tenant_slug: str, template_id: str) -> tuple[dict, int]:
    """Key a record

    Every value is checked as on the keying page; 422 lists every error by field key, nothing saved. 409 when
    the document has a record of this template already (`record` is its id) or the template is archived.
    Send an `Idempotency-Key` header to make a retry safe: the same key answers the record it made (200).
    Audited (field names, never values).
    """
    template = services.get_template(template_id)
    try:
        saved = services.save_record(_caller(), g.tenant, template.id, body["values"], locale="en",
                                     document_id=body.get("document_id"), strict_keys=True, via="api",
                                     submission=services.submission_of(request.headers.get("Idempotency-Key")),
                                     ip=request.remote_addr)
    except services.AlreadyKeyed as exc:
        abort(problem(409, str(exc), record=str(exc.record.id)))
    except services.DataEntryError as exc:
        if not exc.errors:
            abort(problem(409, str(exc)))
        abort(problem(422, str(exc), errors={k: [v] for k, v in exc.errors.items()}))
    return _record_json(saved.record), 200 if saved.repeated else 201


@blp.route("/tenants/<tenant_slug>/data-entry/records/<record_id>")
@blp.response(200, DataEntryRecordSchema)
@_refusals(401, 403, 404)
@requires("tenant:dataentry.view")
def get_dataentry_record(tenant_slug: str, record_id: str) -> dict:
    """One record

    Its values by field key, its document, who keyed it and when.
    """
    return _record_json(services.get_record(record_id))

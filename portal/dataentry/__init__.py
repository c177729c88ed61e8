"""Data entry for anything else (issue 14): the provider defines templates per tenant (fields, types,
rules), staff key records from the tenant's documents on a keyboard-only page beside the document, and the
records are read, corrected and exported (CSV, XLSX). Rules in ``services``, types in ``fields``; the API
is ``portal.api.dataentry``."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("dataentry", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.dataentry import models, views  # noqa: F401 - models map, routes and the document panel register
    from portal.offboarding import export

    if _records_table not in export.EXPORTERS:  # once, however many apps a process makes
        export.register(_records_table)  # the client's records go into its export, like its other data
    app.register_blueprint(bp)


def _records_table():  # noqa: ANN202 - portal.offboarding.export.Table
    """Every record of the bound tenant, for the client's export: its template, number, document, who keyed it
    and when, and its values as JSON (by field key, as the API gives them)."""
    import json

    from sqlalchemy import select

    from portal.dataentry.models import Record
    from portal.extensions import db
    from portal.offboarding.export import Table

    rows = db.session.scalars(select(Record).order_by(Record.template_id, Record.number))
    return Table("data_entry_records",
                 ["record_id", "template", "number", "document_id", "keyed_at", "keyed_by", "values"],
                 [[r.id, r.template.name, r.number, r.document_id or "", r.keyed_at.isoformat(),
                   r.keyed_by.name if r.keyed_by else "", json.dumps(json.loads(r.field_values), ensure_ascii=False)]
                  for r in rows])

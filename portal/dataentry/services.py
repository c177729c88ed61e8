"""Data entry's rules, for the pages and the API: templates, records keyed from documents, the queue of
documents still to key, and the export.

Who may call what (the gate checks the action first; these take the acting user and the tenant bound):

* ``save_template``, ``set_archived``: ``tenant:dataentry.setup`` (the provider's admins and managers).
* ``save_record``, ``delete_record``: ``tenant:dataentry.key`` (the provider's people).
* the readers (``templates``, ``records``, ``export``, ...): ``tenant:dataentry.view`` (the client's admin and
  approver too).

Tenants: every query runs with the tenant bound, so another tenant's template, record or document is not
found (404, the same as a missing one: ``get_template``, ``get_record``, and the vault's ``get_document``).

Every change is audited in the tenant's log with field names, never values, and commits here. A refusal
raises ``DataEntryError`` with a sentence and, for a form, every error at once by field.

A template's fields may be added to at any time, and their labels and rules changed; once it has records,
removing a field or changing its type is refused (the records keep what they hold): archive the template
and make another. A document has at most one record per template; a form's submission token makes at
most one record (both are unique keys in the database too).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import exists, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import spreadsheet
from portal.dataentry.fields import Field, FieldErrors, FieldInput, check_definition, check_values, fields_of
from portal.dataentry.models import Record, Template
from portal.documents import services as vault
from portal.documents.models import Document
from portal.extensions import db
from tenants import audit
from tenants.lookups import one_or_404
from tenants.models import Tenant, User, utcnow
from tenants.zones import start_of_day, tenant_zone

NAME_MAX = 120
DESCRIPTION_MAX = 2000
PAGE = 500  # records a page lists at most


class DataEntryError(Exception):
    """A refused request, in a sentence for people; ``errors`` by field when a form caused it."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class AlreadyKeyed(DataEntryError):
    """The document already has a record of this template (``record``)."""

    def __init__(self, message: str, record: Record) -> None:
        super().__init__(message)
        self.record = record


def _uuid(raw: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        abort(404)


# --- templates ------------------------------------------------------------------------------------------

def templates(*, archived: bool | None = False) -> list[Template]:
    """The bound tenant's templates by name (``archived``: only those; None: all)."""
    query = select(Template)
    if archived is not None:
        query = query.where(Template.archived_at.is_not(None) if archived else Template.archived_at.is_(None))
    return sorted(db.session.scalars(query), key=lambda t: t.name.casefold())


def get_template(template_id: object, *, lock: bool = False) -> Template:
    """A template of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    return one_or_404(Template, Template.id == _uuid(template_id), lock=lock)


def definition(template: Template) -> list[Field]:
    """The template's fields, in the order they are keyed."""
    return fields_of(template.fields)


def record_counts() -> dict[uuid.UUID, int]:
    """How many records each of the bound tenant's templates has."""
    return dict(db.session.execute(select(Record.template_id, func.count()).group_by(Record.template_id)).all())


def save_template(actor: User, tenant: Tenant, *, name: str, description: str | None, rows: Sequence[FieldInput],
                  locale: str, template_id: object | None = None, ip: str | None = None) -> Template:
    """A new template, or one changed (``template_id``). Its fields are checked (``fields.check_definition``);
    once it has records, a field may be added, relabelled or given other rules, never removed nor retyped.
    Commits, audited as ``dataentry.template_saved``."""
    name = " ".join((name or "").split())
    description = (description or "").strip() or None
    errors: dict[str, str] = {}
    if not 1 <= len(name) <= NAME_MAX:
        errors["name"] = _("Give the template a name (1 to %(max)d characters).", max=NAME_MAX)
    if description and len(description) > DESCRIPTION_MAX:
        errors["description"] = _("At most %(max)d characters.", max=DESCRIPTION_MAX)
    template = get_template(template_id, lock=True) if template_id is not None else None
    same_name = db.session.scalar(select(Template).where(func.lower(Template.name) == name.lower()))
    if name and same_name is not None and same_name is not template:
        errors["name"] = _("There is a template named %(name)s already: give this one another name.", name=name)
    fields: list[Field] = []
    try:
        fields = check_definition(rows, currency=tenant.currency, locale=locale)
    except FieldErrors as exc:
        errors.update(exc.errors)
    before = definition(template) if template is not None else []
    if template is not None and not errors:
        errors.update(_kept_fields(template, before, fields, rows))
    if errors:
        db.session.rollback()
        raise DataEntryError(_("The template was not saved: correct the fields marked."), errors)
    created = template is None
    if template is None:
        template = Template(tenant_id=tenant.id, created_by_id=actor.id, name=name, fields=[])
        db.session.add(template)
    else:
        template.updated_at = utcnow()
    template.name, template.description = name, description
    template.fields = [f.as_json() for f in fields]
    db.session.flush()
    old = {f.key for f in before}
    audit.record("dataentry.template_saved", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="data_entry_template", object_id=template.id, ip=ip,
                 data={"name": name, "created": created, "fields": [f.key for f in fields],
                       "added": [f.key for f in fields if f.key not in old] if not created else []})
    db.session.commit()
    return template


def _kept_fields(template: Template, before: list[Field], after: list[Field],
                 rows: Sequence[FieldInput]) -> dict[str, str]:
    """Errors for the fields a template with records would lose or retype (none when it has no records)."""
    count = db.session.scalar(select(func.count()).select_from(Record).where(Record.template_id == template.id))
    if not count:
        return {}
    now = {f.key: f for f in after}
    errors: dict[str, str] = {}
    for old in before:
        new = now.get(old.key)
        if new is None:
            errors["fields"] = _("“%(label)s” cannot be removed: this template has %(count)d records and they keep "
                                 "it. Keep the field (you may relabel it), or archive the template and make a new "
                                 "one.", label=old.label, count=count)
        elif new.type != old.type:
            row = next((n for n, r in enumerate(rows, start=1) if (r.key.strip().lower() or "") == old.key), None)
            errors[f"field-{row}-type" if row else "fields"] = _(
                "“%(label)s” cannot change its type: this template has %(count)d records keyed as it is. Add a "
                "new field instead, or archive the template and make a new one.", label=old.label, count=count)
    return errors


def set_archived(actor: User, tenant: Tenant, template_id: object, archived: bool, ip: str | None = None) -> Template:
    """Archive a template (it keys nothing new; its records stay, to read and export) or bring it back.
    Commits, audited."""
    template = get_template(template_id, lock=True)
    if template.archived == archived:
        raise DataEntryError(_("“%(name)s” is archived already.", name=template.name) if archived
                             else _("“%(name)s” is in use already.", name=template.name))
    template.archived_at = utcnow() if archived else None
    audit.record("dataentry.template_archived" if archived else "dataentry.template_restored",
                 audit.Actor.of(actor), tenant_id=tenant.id, object_type="data_entry_template",
                 object_id=template.id, ip=ip, data={"name": template.name})
    db.session.commit()
    return template


# --- records --------------------------------------------------------------------------------------------

def values_of(record: Record) -> dict[str, Any]:
    """The values a record keeps, by field key (see ``fields`` for each type's form)."""
    return json.loads(record.field_values)


def get_record(record_id: object, *, template: Template | None = None, lock: bool = False) -> Record:
    """A record of the bound tenant (of ``template`` when given), or 404 (the same for another tenant's)."""
    return one_or_404(Record, Record.id == _uuid(record_id),
                      *([Record.template_id == template.id] if template is not None else []), lock=lock)


@dataclass(frozen=True)
class Saved:
    """A record saved: ``created`` (a new one), or ``repeated`` (this submission had made it already)."""

    record: Record
    created: bool
    repeated: bool = False


def submission_of(raw: str | None) -> uuid.UUID | None:
    """A form's submission token, or an API caller's ``Idempotency-Key`` (any text: named by a UUID5)."""
    text = (raw or "").strip()[:200]
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"portal:dataentry:{text}")


def save_record(actor: User, tenant: Tenant, template_id: object, raw: Mapping[str, object], *, locale: str,
                document_id: object | None = None, record_id: object | None = None,
                submission: uuid.UUID | None = None, strict_keys: bool = False, via: str = "page",
                ip: str | None = None) -> Saved:
    """Key a new record (from ``document_id``, one the actor may see, or from none) or correct one
    (``record_id``). Every value is checked at once (``FieldErrors`` as a ``DataEntryError``'s ``errors``).

    Idempotent: a ``submission`` already used answers the record it made (``repeated``); a document that
    has a record of this template already is refused with ``AlreadyKeyed``. The template's row is locked
    while the record is numbered, so two submissions never meet. Commits, audited as
    ``dataentry.record_saved`` (field names, never values)."""
    template = get_template(template_id, lock=True)
    if submission is not None and record_id is None:
        earlier = db.session.scalar(select(Record).where(Record.submission == submission))
        if earlier is not None:
            db.session.rollback()
            return Saved(earlier, created=False, repeated=True)
    record = get_record(record_id, template=template, lock=True) if record_id is not None else None
    document = None
    if record is None:
        if template.archived:
            db.session.rollback()
            raise DataEntryError(_("“%(name)s” is archived: nothing new is keyed with it.", name=template.name))
        if document_id not in (None, ""):
            document = vault.get_document(actor, str(document_id))
            keyed = db.session.scalar(select(Record).where(Record.template_id == template.id,
                                                           Record.document_id == document.id))
            if keyed is not None:
                db.session.rollback()
                raise AlreadyKeyed(_("%(document)s has record %(number)d of “%(name)s” already: correct that one "
                                     "instead.", document=document.title, number=keyed.number, name=template.name),
                                   keyed)
    try:
        values = check_values(definition(template), raw, currency=tenant.currency, locale=locale,
                              strict_keys=strict_keys)
    except FieldErrors as exc:
        db.session.rollback()
        raise DataEntryError(_("Nothing was saved: %(count)d fields need correcting.", count=len(exc.errors))
                             if len(exc.errors) > 1 else _("Nothing was saved: one field needs correcting."),
                             exc.errors) from None
    sealed = json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    now = utcnow()
    created = record is None
    if record is None:
        number = (db.session.scalar(select(func.max(Record.number)).where(Record.template_id == template.id)) or 0) + 1
        record = Record(tenant_id=tenant.id, template_id=template.id, number=number, field_values=sealed,
                        document_id=document.id if document else None, submission=submission,
                        keyed_by_id=actor.id, keyed_at=now)
        db.session.add(record)
        changed = sorted(values)
    else:
        before = values_of(record)
        changed = sorted(k for k in set(before) | set(values) if before.get(k) != values.get(k))
        record.field_values, record.updated_at, record.updated_by_id = sealed, now, actor.id
    try:
        db.session.flush()
    except IntegrityError:  # another submission of the same form, or of the same document, won the race
        db.session.rollback()
        again = db.session.scalar(select(Record).where(Record.submission == submission)) if submission else None
        if again is not None:
            return Saved(again, created=False, repeated=True)
        raise DataEntryError(_("This document was keyed by someone else a moment ago: open its record.")) from None
    audit.record("dataentry.record_saved", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="data_entry_record", object_id=record.id, ip=ip,
                 data={"name": _record_name(template, record), "template": template.name, "number": record.number,
                       "document": _title(record), "fields": changed, "edited": not created, "via": via})
    db.session.commit()
    return Saved(record, created=created)


def _record_name(template: Template, record: Record) -> str:
    return f"{template.name} #{record.number}"


def _title(record: Record) -> str | None:
    if record.document_id is None:
        return None
    doc = db.session.get(Document, record.document_id)
    return doc.title if doc is not None else None


@dataclass(frozen=True)
class Deleted:
    """What a deleted record was: its number, and whether it came from a document (now back in the queue)."""

    number: int
    from_document: bool


def delete_record(actor: User, tenant: Tenant, record_id: object, *, template: Template | None = None,
                  ip: str | None = None) -> Deleted:
    """Delete a record (its document goes back to the template's queue). Commits, audited as
    ``dataentry.record_deleted`` with the fields it held, not their values."""
    record = get_record(record_id, template=template, lock=True)
    template = record.template
    held = sorted(values_of(record))
    audit.record("dataentry.record_deleted", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="data_entry_record", object_id=record.id, ip=ip,
                 data={"name": _record_name(template, record), "template": template.name, "number": record.number,
                       "document": _title(record), "fields": held})
    gone = Deleted(record.number, record.document_id is not None)
    db.session.delete(record)
    db.session.commit()
    return gone


# --- the queue: documents still to key ------------------------------------------------------------------

def _waiting(actor: User, template: Template):  # noqa: ANN202 - a Select of Document
    """The live documents ``actor`` sees that have no record of ``template`` yet, oldest first."""
    keyed = exists().where(Record.template_id == template.id, Record.document_id == Document.id)
    return vault.visible_documents(actor).where(~keyed).order_by(Document.created_at, Document.id)


@dataclass(frozen=True)
class Queue:
    """How many documents are left to key with a template, of how many."""

    left: int
    total: int


def queue(actor: User, template: Template) -> Queue:
    """The template's queue: documents without a record of it, of all the live documents the actor sees."""
    total = db.session.scalar(select(func.count()).select_from(vault.visible_documents(actor).subquery()))
    left = db.session.scalar(select(func.count()).select_from(_waiting(actor, template).order_by(None).subquery()))
    return Queue(left or 0, total or 0)


def queues(actor: User, templates: Sequence[Template]) -> dict[uuid.UUID, Queue]:
    """``queue`` of each template, by its id, in two statements whatever the number of templates (the data entry
    page shows every template's): the documents the actor sees, less those with a record of the template."""
    if not templates:
        return {}
    seen = vault.visible_documents(actor).with_only_columns(Document.id).subquery()
    total = db.session.scalar(select(func.count()).select_from(seen)) or 0
    keyed = dict(db.session.execute(
        select(Record.template_id, func.count(func.distinct(Record.document_id)))
        .join(seen, seen.c.id == Record.document_id)
        .where(Record.template_id.in_([t.id for t in templates])).group_by(Record.template_id)).all())
    return {t.id: Queue(total - keyed.get(t.id, 0), total) for t in templates}


def next_document(actor: User, template: Template, *, after: Document | None = None) -> Document | None:
    """The next document to key: the first of the queue after ``after`` (in the queue's order, oldest first),
    else the first of the queue that is not ``after`` (the ones skipped earlier); None when none waits."""
    waiting = _waiting(actor, template)
    if after is not None:
        later = db.session.scalar(waiting.where(tuple_(Document.created_at, Document.id)
                                                > tuple_(after.created_at, after.id)).limit(1))
        if later is not None:
            return later
        waiting = waiting.where(Document.id != after.id)
    return db.session.scalar(waiting.limit(1))


def record_for(template: Template, document: Document) -> Record | None:
    """The record of ``template`` made from ``document``, if there is one."""
    return db.session.scalar(select(Record).where(Record.template_id == template.id,
                                                  Record.document_id == document.id))


def document_records(document: Document) -> list[Record]:
    """The records made from a document, with their templates (for the document's page)."""
    rows = db.session.scalars(select(Record).where(Record.document_id == document.id))
    return sorted(rows, key=lambda r: (r.template.name.casefold(), r.number))


# --- reading and exporting ------------------------------------------------------------------------------

def check_days(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise DataEntryError(_("The start date %(start)s is after the end date %(end)s: swap them, or pick again.",
                               start=since.isoformat(), end=until.isoformat()), {"since": _("After the end date.")})


def records(template: Template, *, since: date | None = None, until: date | None = None,
            newest_first: bool = True, limit: int | None = PAGE) -> list[Record]:
    """The template's records keyed on the days ``since``..``until`` (both included, in the tenant's time
    zone), newest first (or in the order they were keyed)."""
    check_days(since, until)
    zone = tenant_zone(template.tenant_id)
    query = select(Record).where(Record.template_id == template.id).options(selectinload(Record.document))
    if since:
        query = query.where(Record.keyed_at >= start_of_day(since, zone))
    if until:
        query = query.where(Record.keyed_at < start_of_day(until + timedelta(days=1), zone))
    query = query.order_by(Record.keyed_at.desc() if newest_first else Record.keyed_at, Record.number.desc()
                           if newest_first else Record.number)
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def records_after(template: Template, *, after: int | None, limit: int, since: date | None = None,
                  until: date | None = None) -> tuple[list[Record], int | None]:
    """A page of the template's records in the order they were numbered, after record number ``after``
    (the API's cursor), and the number to continue after (None on the last page)."""
    check_days(since, until)
    zone = tenant_zone(template.tenant_id)
    query = select(Record).where(Record.template_id == template.id).options(selectinload(Record.document))
    if after is not None:
        query = query.where(Record.number > after)
    if since:
        query = query.where(Record.keyed_at >= start_of_day(since, zone))
    if until:
        query = query.where(Record.keyed_at < start_of_day(until + timedelta(days=1), zone))
    rows = list(db.session.scalars(query.order_by(Record.number).limit(limit + 1)))
    page = rows[:limit]
    return page, page[-1].number if len(rows) > limit else None


@dataclass(frozen=True)
class Export:
    """A file to send: its name, type, bytes, and how many records it holds."""

    filename: str
    mimetype: str
    content: bytes
    count: int


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")


def export(actor: User, tenant: Tenant, template: Template, fmt: str, *, since: date | None = None,
           until: date | None = None, via: str = "page", ip: str | None = None) -> Export:
    """The template's records (keyed ``since``..``until``) as CSV or XLSX: one column per field in the
    template's order, then the document's name, when it was keyed (in the tenant's time zone) and by whom.
    Text goes through ``portal.spreadsheet`` (``=HYPERLINK(...)`` stays text); amounts and numbers are
    numbers in the major unit, dates are dates. Recorded as ``dataentry.exported`` (field names only)."""
    from portal.dataentry.fields import cell

    if fmt not in ("csv", "xlsx"):
        abort(404)
    rows = records(template, since=since, until=until, newest_first=False, limit=None)
    fields = definition(template)
    zone = tenant_zone(tenant.id)
    header: list[object] = [f.label for f in fields] + [_("Document"), _("Keyed at"), _("Keyed by")]
    body: list[list[object]] = []
    for record in rows:
        values = values_of(record)
        keyed_at = record.keyed_at.astimezone(zone).replace(tzinfo=None, microsecond=0)
        body.append([cell(f, values.get(f.key), currency=tenant.currency) for f in fields]
                    + [record.document.title if record.document else "", keyed_at,
                       record.keyed_by.name if record.keyed_by else ""])
    stem = re.sub(r"[^\w.-]+", "-", template.name, flags=re.UNICODE).strip("-")[:60] or "records"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(spreadsheet.row(header))
        for values in body:
            writer.writerow(spreadsheet.row([_csv_cell(v) for v in values]))
        content, mimetype = out.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8"
    else:
        title = _SHEET_UNSAFE.sub(" ", template.name).strip()[:31] or "Records"
        content, mimetype = spreadsheet.xlsx({title: [header, *body]}), XLSX
    audit.record("dataentry.exported", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="data_entry_template", object_id=template.id, ip=ip,
                 data={"name": template.name, "format": fmt, "records": len(body), "fields": [f.key for f in fields],
                       "filter": {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v},
                       "via": via})
    db.session.commit()
    return Export(f"{tenant.slug}-{stem}.{fmt}", mimetype, content, len(body))


def _csv_cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value

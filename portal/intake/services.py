"""What intake found, for the pages and the API: a document's record, a tenant's progress, trying again."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.documents import services as vault
from portal.documents.models import Document
from portal.extensions import db
from portal.intake import chain
from portal.intake.models import IntakeRecord
from portal.intake.steps import REASONS
from tenants import audit
from tenants.models import Tenant, User


class IntakeError(Exception):
    """A refused request, in a sentence for people."""


@dataclass(frozen=True)
class Progress:
    """A tenant's intake: documents read (or failed) of all announced, and how many are still waiting."""

    read: int
    failed: int
    total: int

    @property
    def open(self) -> int:
        return self.total - self.read - self.failed


def record_of(doc: Document) -> IntakeRecord | None:
    """The record of the document's current version (None before the vault's announcement is heard)."""
    return db.session.scalar(select(IntakeRecord).where(IntakeRecord.document_id == doc.id,
                                                        IntakeRecord.version == doc.current_version))


def progress(actor: User) -> Progress:
    """The live documents ``actor`` sees, and how many of their current versions were read or failed (one
    uploaded a moment ago, whose announcement is not heard yet, counts as waiting)."""
    # The two columns the join needs, not every column of a document (each one is compiled and sent).
    seen = vault.visible_documents(actor).with_only_columns(Document.id, Document.current_version).subquery()
    rows = dict(db.session.execute(
        select(IntakeRecord.state, func.count()).select_from(seen)
        .outerjoin(IntakeRecord, (IntakeRecord.document_id == seen.c.id)
                   & (IntakeRecord.version == seen.c.current_version))
        .group_by(IntakeRecord.state)).all())
    return Progress(rows.get("done", 0), rows.get("failed", 0), sum(rows.values()))


def why(record: IntakeRecord) -> str:
    """The sentence for a record that failed: "Could not read this file: <reason>"."""
    reason = REASONS.get((record.error or "").partition(":")[0], REASONS["unreadable"])  # "bank_amount:12:3"
    return _("Could not read this file: %(reason)s.", reason=reason)


def invoice_of(record: IntakeRecord) -> dict | None:
    """An e-invoice's fields as read (``einvoice.EInvoice.as_dict``), or None."""
    import json

    return json.loads(record.extracted) if record.extracted else None


def duplicate_of(record: IntakeRecord) -> Document | None:
    """The live document that is the same invoice (seller, symbol, number), if there is one."""
    if record.duplicate_of is None:
        return None
    return db.session.scalar(select(Document).where(Document.id == record.duplicate_of,
                                                    Document.trashed_at.is_(None)))


def paired_with(record: IntakeRecord) -> Document | None:
    """The e-invoice's PDF copy, or the PDF's e-invoice, when intake paired them (and it is not in the trash)."""
    if record.paired_with is None:
        return None
    return db.session.scalar(select(Document).where(Document.id == record.paired_with,
                                                    Document.trashed_at.is_(None)))


FLAGS = {
    "vat_rate_times_base": lambda rate: _("The VAT at %(rate)s is not that rate times its base.", rate=rate),
    "vat_bases_total": lambda _x: _("The bases of the VAT rates do not add up to the total before VAT."),
    "vat_total": lambda _x: _("The VAT of each rate does not add up to the total VAT."),
    "grand_total": lambda _x: _("The total payable is not the total before VAT plus the VAT and fees."),
    "seller_tax_code": lambda _x: _("The seller's tax code fails its check digit."),
    "buyer_tax_code": lambda _x: _("The buyer's tax code fails its check digit."),
}


def flag_sentences(flags: list[str]) -> list[str]:
    """What does not add up on an e-invoice, in sentences (the file is kept exactly as it is)."""
    out = []
    for flag in flags:
        name, _sep, detail = flag.partition(":")
        out.append(FLAGS[name](detail) if name in FLAGS else flag)
    return out


def search(actor: User, tenant: Tenant, query: str, ip: str | None) -> list:
    """Documents with every word of ``query`` inside them (``search.search``); the search is in the access
    log (how many were found, never the words)."""
    from portal.intake import search as index

    hits = index.search(actor, tenant.id, query)
    ids = [hit.document.id for hit in hits]
    audit.record("documents.searched", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 data={"results": len(hits)})
    db.session.commit()
    if ids:
        # The commit expired the documents found: load them again together (and their versions), or each is
        # refreshed by itself as it is shown, two statements a document (tests/test_query_budgets.py).
        db.session.scalars(select(Document).where(Document.id.in_(ids))).all()
    return hits


def retry(actor: User, tenant: Tenant, document_id: str, ip: str | None) -> IntakeRecord:
    """Staff try reading a document that failed again, from the step that failed (audited); commits."""
    doc = vault.get_document(actor, document_id)
    record = record_of(doc)
    if record is None or record.state != "failed":
        raise IntakeError(_("“%(title)s” did not fail to be read, so there is nothing to try again.", title=doc.title))
    chain.retry(record)
    audit.record("intake.retried", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document",
                 object_id=doc.id, ip=ip, data={"name": doc.title, "step": record.step, "version": record.version})
    db.session.commit()
    return record


# --- invoice and receipt fields: the reading, staff's corrections, the page they are on ----------------------

FIELD_LABELS = {
    "supplier_name": _l("Supplier"), "supplier_tax_code": _l("Supplier's tax code"), "series": _l("Symbol"),
    "invoice_number": _l("Invoice number"), "issue_date": _l("Issue date"), "due_date": _l("Due date"),
    "currency": _l("Currency"), "net": _l("Total before VAT"), "vat_rate": _l("VAT rate (%)"),
    "vat_amount": _l("VAT"), "total": _l("Total payable"),
}
PAGE_SIDE = 1400  # px: the page shown under the highlighted fields, large enough to read its figures


@dataclass(frozen=True)
class FieldRow:
    """One field on the staff's check: what was read (with how sure and where), and what stands now."""

    name: str
    label: str
    read: dict | None  # fields.Field.as_dict(), or None when nothing was read
    corrected: dict | None  # {"value", "by", "at"}, or None

    @property
    def value(self) -> str:
        return (self.corrected or {}).get("value") or (self.read or {}).get("value") or ""

    @property
    def corrected_at(self) -> datetime | None:
        return datetime.fromisoformat(self.corrected["at"]) if self.corrected else None

    @property
    def to_check(self) -> bool:
        from portal.intake.fields import CHECK_BELOW

        return self.corrected is None and (self.read is None or self.read["confidence"] < CHECK_BELOW)


def field_rows(record: IntakeRecord) -> list[FieldRow] | None:
    """The fields read from an invoice or a receipt, in the order people check them; None when none were read."""
    import json

    from portal.intake.fields import FIELDS

    if record.fields is None:
        return None
    read, corrected = json.loads(record.fields), json.loads(record.corrections or "{}")
    return [FieldRow(name, str(FIELD_LABELS[name]), read.get(name), corrected.get(name)) for name in FIELDS]


class FieldErrors(IntakeError):
    """Corrections refused: ``errors`` says what is wrong with each field, all at once."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(_("Nothing was saved: correct the fields marked below."))
        self.errors = errors


def _checked(name: str, raw: str) -> tuple[str | None, str | None]:
    """(value as fields are written, None) or (None, why it is refused), for a value staff typed."""
    from decimal import Decimal, InvalidOperation

    from stdnum.vn import mst

    from portal.intake import fields

    value = raw.strip()
    if name == "supplier_name":
        return (value, None) if 2 <= len(value) <= 200 else (
            None, _("Write the supplier's name (2 to 200 characters)."))
    if name == "supplier_tax_code":
        return (value, None) if mst.is_valid(value) else (
            None, _("A tax code is 10 digits, or 10 and a branch of 3 (0101234567-001), and its last digit "
                    "must check."))
    if name == "series":
        return (value.upper(), None) if re.fullmatch(r"[0-9A-Za-z/]{1,12}", value) else (
            None, _("Write the symbol as printed, for example 1C26TAA (letters and digits only)."))
    if name == "invoice_number":
        return (value.upper(), None) if re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z\-/.]{0,39}", value) else (
            None, _("Write the number as printed, for example 0001234 or INV-2026-0042."))
    if name in ("issue_date", "due_date"):
        found = fields.when(value)
        return (found.value, None) if found and found.start == 0 and found.end == len(value) else (
            None, _("Give the date as it is written on the invoice, for example 05/11/2026 (day first)."))
    if name == "currency":
        return (value.upper(), None) if re.fullmatch(r"[A-Za-z]{3}", value) else (
            None, _("Give the currency as its three-letter code: VND, USD, EUR."))
    if name == "vat_rate":
        try:
            rate = Decimal(value.rstrip("% ").replace(",", "."))
        except InvalidOperation:
            rate = Decimal(-1)
        return (fields._amount(rate), None) if 0 <= rate <= 100 else (  # noqa: SLF001 - the one way amounts are written
            None, _("Give the VAT rate as a percentage: 0, 5, 8 or 10."))
    found = fields.money(value)
    return (found.value, None) if found and found.start == 0 and found.end == len(value) else (
        None, _("Give the amount in figures, for example 1.100.000 or 1,234.50."))


def correct_fields(actor: User, tenant: Tenant, document_id: str, typed: dict[str, str],
                   ip: str | None) -> list[str]:
    """Staff's corrections of the fields read from a document (the reading is kept); returns the names of
    the fields changed. Raises ``FieldErrors`` with every field's error at once, saving nothing. The
    invoice's identity is worked out again, so that a corrected number finds (or loses) its duplicate."""
    import json

    from portal.intake import einvoice, steps

    doc = vault.get_document(actor, document_id)
    record = record_of(doc)
    rows = field_rows(record) if record is not None else None
    if rows is None:
        raise IntakeError(_("No invoice fields were read from “%(title)s”, so there is nothing to correct.",
                            title=doc.title))
    errors, changed = {}, {}
    for row in rows:
        raw = (typed.get(row.name) or "").strip()
        if not raw or raw == row.value:
            continue
        value, error = _checked(row.name, raw)
        if error:
            errors[row.name] = error
        elif value != row.value:
            changed[row.name] = value
    if errors:
        raise FieldErrors(errors)
    if changed:
        corrections = json.loads(record.corrections or "{}")
        at = datetime.now(UTC).isoformat(timespec="seconds")
        corrections.update({name: {"value": value, "by": str(actor.id), "at": at} for name, value in changed.items()})
        record.corrections = json.dumps(corrections, ensure_ascii=False)
        now = {row.name: changed.get(row.name, row.value) or None for row in rows}
        steps.mark_duplicate(record, einvoice.invoice_key(now["supplier_tax_code"], now["series"],
                                                          now["invoice_number"]))
        audit.record("intake.fields_corrected", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document",
                     object_id=doc.id, ip=ip, data={"name": doc.title, "fields": sorted(changed),
                                                    "version": record.version})
        db.session.commit()
    return sorted(changed)


def has_searchable_copy(document_id: uuid.UUID, version: int) -> bool:
    """Whether intake made a searchable copy of a document version (a scanned PDF)."""
    from portal.documents.models import DocumentVersion, StoredObject

    return db.session.scalar(select(StoredObject.searchable_id).join(
        DocumentVersion, DocumentVersion.object_id == StoredObject.id).where(
        DocumentVersion.document_id == document_id, DocumentVersion.number == version)) is not None


def searchable_copy(actor: User, tenant: Tenant, document_id: str, ip: str | None) -> tuple[Document, bytes]:
    """The searchable copy intake made of a scanned PDF (its current version), decrypted and authenticated
    whole; 404 when there is none. A download like any other: in the access log."""
    from flask import abort

    from portal.documents.models import StoredObject

    doc = vault.get_document(actor, document_id)
    content = doc.latest.object  # the versions come with the document
    copy = db.session.get(StoredObject, content.searchable_id) if content.searchable_id else None
    if copy is None:
        abort(404)
    data = b"".join(vault.read_object(copy))
    audit.record("document.downloaded", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document",
                 object_id=doc.id, ip=ip, data={"name": doc.title, "version": doc.current_version,
                                                "copy": "searchable"})
    db.session.commit()
    return doc, data


def page_image(actor: User, tenant: Tenant, document_id: str, page: int, ip: str | None) -> bytes | None:
    """The document's page ``page`` as a PNG large enough to read (rendered in the sandbox, never kept), for
    checking fields over it; None when it has no such page. Seeing it is in the access log, as a preview."""
    from flask import current_app

    from portal.documents.previews import PreviewFailed, render_thumbnail

    doc = vault.get_document(actor, document_id)
    obj = doc.latest.object
    if obj.size > current_app.config["PREVIEW_MAX_BYTES"]:
        return None
    try:
        png = render_thumbnail(vault.read_object(obj), obj.kind, page=page, side=PAGE_SIDE,
                               max_input=current_app.config["PREVIEW_MAX_BYTES"])
    except PreviewFailed:
        return None
    audit.record("document.previewed", audit.Actor.of(actor), tenant_id=tenant.id, object_type="document",
                 object_id=doc.id, ip=ip, data={"name": doc.title, "version": doc.current_version, "page": page})
    db.session.commit()
    return png

"""The chain's steps, in order: the preview, the text, the kind of document, the task it goes to."""

from __future__ import annotations

import json
import re
import unicodedata

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.documents import services as vault
from portal.extensions import db
from portal.intake import readers
from portal.intake.chain import Intake, Step, StepFailed, register
from portal.intake.models import IntakeRecord
from tenants.models import User

# Why a file could not be read, by the reader's stable word: shown after "Could not read this file: ".
REASONS = {
    "unreadable": _l("it may be damaged, or protected with a password"),
    "too_large": _l("it is too large to read"),
    "timeout": _l("reading it took too long"),
    "limits": _l("reading it needed more memory or time than allowed"),
    "too_many_pixels": _l("the image is too large to read"),
    "unavailable": _l("text recognition is not installed on this server"),
    "not_einvoice": _l("it is an XML file but not an e-invoice (it has no HDon invoice data)"),
    "malformed": _l("it is not well-formed XML; ask the seller for the file again"),
    "unsafe": _l("it declares a document type or entities, which are not read for safety"),
    # Bank files (portal.intake.bank); a CSV's row and column follow the word ("bank_amount:12:3").
    "bank_empty": _l("the bank statement holds no transactions"),
    "bank_not_table": _l("it is not a table of transactions that a bank statement would be"),
    "bank_not_statement": _l("it is an OFX file without a bank or card statement in it"),
    "bank_malformed_ofx": _l("it is an OFX file that is damaged or incomplete; download it from the bank again"),
    "bank_malformed_mt940": _l("it is an MT940 file that is damaged or incomplete; download it from the bank again"),
    "bank_currency": _l("its currency is missing or is not a three-letter code such as VND or USD"),
    "bank_needs_mapping": _l("nobody has said yet which column of this bank's CSV holds what"),
    "bank_date": _l("a column chosen as a date holds something that is not a date in the chosen format"),
    "bank_amount": _l("a column chosen as an amount holds something that is not a number"),
    "bank_decimals": _l("an amount has more decimals than its currency has"),
}


# --- the preview ------------------------------------------------------------------------------------------

def _needs_preview(it: Intake) -> bool:
    return it.object.preview == "pending"


def _preview(it: Intake) -> str | None:
    vault.make_thumbnail(it.object.id)  # a preview that cannot be made is marked so; reading goes on
    return it.object.preview


# --- the text -----------------------------------------------------------------------------------------------

def _readable(it: Intake) -> bool:
    return it.object.kind in readers.READ_KINDS


def _text(it: Intake) -> str | None:
    cfg = current_app.config
    if it.object.size > cfg["INTAKE_READ_MAX_BYTES"]:
        raise StepFailed("too_large")
    try:
        pages = readers.read_text(vault.read_object(it.object), it.object.kind, max_input=cfg["INTAKE_READ_MAX_BYTES"],
                                  timeout=cfg["INTAKE_READ_TIMEOUT"], max_pages=cfg["INTAKE_OCR_MAX_PAGES"])
    except readers.ReadFailed as exc:
        raise StepFailed(exc.reason) from None
    pages = pages or []
    sources = {page.source for page in pages}
    it.record.text = "\f".join(page.text for page in pages)
    it.record.text_source = sources.pop() if len(sources) == 1 else ("mixed" if sources else None)
    it.record.pages = len(pages)
    layout = [list(page.words) for page in pages if page.words]
    it.record.layout = json.dumps(layout, ensure_ascii=False) if layout else None
    return f"{len(pages)} pages, {it.record.text_source}"


# --- a searchable copy of a scanned PDF -------------------------------------------------------------------

def _scanned_pdf(it: Intake) -> bool:
    return it.object.kind == "pdf" and it.record.text_source == "ocr" and it.object.searchable_id is None


def _searchable(it: Intake) -> str | None:
    """OCRmyPDF lays the text under the scanned pages; the copy is kept sealed beside the file, which stays
    exactly as it was uploaded. Not made (a page it refuses, a limit): noted, and reading goes on."""
    cfg = current_app.config
    try:
        made = readers.make_searchable(vault.read_object(it.object), max_input=cfg["INTAKE_READ_MAX_BYTES"],
                                       timeout=cfg["INTAKE_READ_TIMEOUT"])
    except readers.ReadFailed as exc:
        return f"not made: {exc.reason}"
    stored = vault.store_sealed(it.object.tenant_id, [made])
    copy = vault.stored_row(stored, it.object.tenant_id, "searchable", "pdf", "application/pdf")
    db.session.add(copy)
    db.session.flush()
    it.object.searchable_id = copy.id
    return f"{len(made)} bytes"


# --- an e-invoice in XML, read exactly ---------------------------------------------------------------------

def _is_xml(it: Intake) -> bool:
    return it.object.kind == "xml"


def _einvoice(it: Intake) -> str | None:
    from portal.intake import einvoice

    if it.object.size > current_app.config["INTAKE_READ_MAX_BYTES"]:
        raise StepFailed("too_large")
    try:
        invoice = einvoice.parse(b"".join(vault.read_object(it.object)))
    except einvoice.NotAnEInvoice as exc:
        raise StepFailed(exc.reason) from None
    record = it.record
    record.extracted = json.dumps(invoice.as_dict(), ensure_ascii=False)
    record.text, record.text_source, record.pages, record.classified = invoice.as_text(), "xml", 1, "invoice"
    mark_duplicate(record, invoice.key)
    return f"{invoice.series}/{invoice.number}, {len(invoice.lines)} lines, flags: {','.join(invoice.flags) or '-'}"


def mark_duplicate(record: IntakeRecord, key: str | None) -> None:
    """Keep the invoice's identity (``einvoice.invoice_key``, as a digest) and point at an earlier document
    that is the same invoice (the same seller, symbol and number), if there is one."""
    from portal.intake import einvoice

    record.invoice_key = einvoice.key_digest(key) if key else None
    record.duplicate_of = db.session.scalar(
        select(IntakeRecord.document_id).where(IntakeRecord.invoice_key == record.invoice_key,
                                               IntakeRecord.document_id != record.document_id,
                                               IntakeRecord.document_id != record.paired_with)
        .order_by(IntakeRecord.created_at).limit(1)) if key else None


# --- invoice and receipt fields, read from the pages' words ---------------------------------------------------

FIELD_KINDS = frozenset({"invoice", "receipt"})


def _has_fields(it: Intake) -> bool:
    kind = it.document.category if it.document.category in FIELD_KINDS else it.record.classified
    return bool(it.record.layout) and kind in FIELD_KINDS and not it.record.extracted


def _fields(it: Intake) -> str | None:
    from portal.intake import fields

    found = fields.read_fields(json.loads(it.record.layout))
    it.record.fields = json.dumps({name: f.as_dict() for name, f in found.items()}, ensure_ascii=False)
    mark_duplicate(it.record, fields.invoice_key(found))
    unsure = sorted(name for name, f in found.items() if fields.needs_check(f))
    return f"{len(found)} fields, to check: {','.join(unsure) or '-'}"


# --- the kind of document ---------------------------------------------------------------------------------

# Words that say what a document is, written without diacritics (the text is compared the same way).
KINDS = (
    ("invoice", ("hoa don gia tri gia tang", "hoa don ban hang", "hoa don dien tu", "vat invoice", "tax invoice",
                 "invoice no", "invoice number", "hoa don")),
    ("receipt", ("bien lai", "phieu thu", "receipt", "cash sale")),
    ("bank_statement", ("sao ke", "bank statement", "statement of account", "so du dau ky", "opening balance")),
    ("payroll_input", ("bang cham cong", "bang luong", "timesheet", "payroll", "attendance")),
    ("contract", ("hop dong", "contract", "agreement", "the parties")),
)


# How a kind reads on a page (the vault's category names, and "other").
KIND_LABELS = {"invoice": _l("an invoice"), "receipt": _l("a receipt"), "bank_statement": _l("a bank statement"),
               "payroll_input": _l("payroll input"), "contract": _l("a contract"), "other": _l("nothing we know")}


def plain(text: str) -> str:
    """Lowercase, without diacritics (đ is d), spaces collapsed: how "Hóa Đơn" and "hoa don" meet."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", bare).lower()


def classify(text: str) -> str:
    """The kind of document the text reads as (one of the vault's categories), or "other"."""
    words = plain(text[:20_000])
    found = [(words.find(phrase), kind) for kind, phrases in KINDS for phrase in phrases if phrase in words]
    return min(found)[1] if found else "other"


def _has_text(it: Intake) -> bool:
    return bool(it.record.text) and not it.record.classified  # an e-invoice knows what it is


def _classify(it: Intake) -> str | None:
    it.record.classified = classify(it.record.text or "")
    return it.record.classified


# --- the task it goes to --------------------------------------------------------------------------------------

def _new_document(it: Intake) -> bool:
    return it.version.number == 1


def _route(it: Intake) -> str | None:
    from portal.intake.routing import route_upload

    # The client's own category wins; "other" (nobody chose) takes what intake read.
    category = it.document.category if it.document.category != "other" else it.record.classified
    uploader = db.session.get(User, it.version.uploaded_by_id) if it.version.uploaded_by_id else None
    task_id = route_upload(it.document, uploader, category)
    return str(task_id) if task_id else None


register(Step("preview", _needs_preview, _preview))
def _large(it: Intake) -> bool:
    return it.object.size > current_app.config["INTAKE_HEAVY_BYTES"]


register(Step("text", _readable, _text, heavy=_large))
register(Step("searchable", _scanned_pdf, _searchable, heavy=_large))
register(Step("einvoice", _is_xml, _einvoice))
register(Step("classify", _has_text, _classify))
register(Step("fields", _has_fields, _fields))
register(Step("route", _new_document, _route))

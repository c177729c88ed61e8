"""What intake found, for the pages and the API: a document's record, a tenant's progress, trying again."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
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
    seen = vault.visible_documents(actor).subquery()
    rows = dict(db.session.execute(
        select(IntakeRecord.state, func.count()).select_from(seen)
        .outerjoin(IntakeRecord, (IntakeRecord.document_id == seen.c.id)
                   & (IntakeRecord.version == seen.c.current_version))
        .group_by(IntakeRecord.state)).all())
    return Progress(rows.get("done", 0), rows.get("failed", 0), sum(rows.values()))


def why(record: IntakeRecord) -> str:
    """The sentence for a record that failed: "Could not read this file: <reason>"."""
    reason = REASONS.get(record.error or "", REASONS["unreadable"])
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
    audit.record("documents.searched", audit.Actor.of(actor), tenant_id=tenant.id, ip=ip,
                 data={"results": len(hits)})
    db.session.commit()
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

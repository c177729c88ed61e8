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


def progress() -> Progress:
    """The bound tenant's live documents, and how many of their current versions were read or failed (one
    uploaded a moment ago, whose announcement is not heard yet, counts as waiting)."""
    rows = dict(db.session.execute(
        select(IntakeRecord.state, func.count()).select_from(Document)
        .outerjoin(IntakeRecord, (IntakeRecord.document_id == Document.id)
                   & (IntakeRecord.version == Document.current_version))
        .where(Document.trashed_at.is_(None)).group_by(IntakeRecord.state)).all())
    return Progress(rows.get("done", 0), rows.get("failed", 0), sum(rows.values()))


def why(record: IntakeRecord) -> str:
    """The sentence for a record that failed: "Could not read this file: <reason>"."""
    reason = REASONS.get(record.error or "", REASONS["unreadable"])
    return _("Could not read this file: %(reason)s.", reason=reason)


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

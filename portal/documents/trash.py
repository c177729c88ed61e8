"""The documents' trash: removing a document, restoring it, and purging it after the retention period.

Accounting records are never deleted silently. Removing a document puts it in the trash with who
removed it, when and why (the reason sealed with the tenant's key, like every audit detail): it
leaves every list, search, link picker, download and preview at once, and the provider can restore
it for ``TRASH_RETENTION_DAYS``. The purge job (``purge_trash``, once a day per tenant through the
scheduler) then deletes it for good: its versions, the rows that point at it, and the stored
objects no other version uses, and records ``document.purged`` as the system.

Who may remove and restore is the authorisation table's (``tenant:documents.trash``,
``tenant:documents.restore``); the gate checked it. Queries are scoped to the bound tenant by
``tenants.isolation``: another tenant's document is simply not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select, update
from sqlalchemy.orm import selectinload

from portal.documents.models import Document, DocumentVersion, RequestItem, StoredObject
from portal.documents.services import DocumentError, _record, _visible, get_document, vault_storage
from portal.extensions import db
from tenants import audit
from tenants.context import current_scope
from tenants.models import Tenant, User, utcnow
from tenants.policy import allowed
from tenants.zones import start_of_day, tenant_zone, today_in

# The areas above the vault decide what removing and purging mean for their rows; the vault announces, they
# listen (blinker signals, like ``tenants.lifecycle``), so nothing here imports them. Both are sent inside the
# caller's transaction with the tenant bound, with the document as sender:
# ``document_removing`` receivers return a refusal (a sentence: why it must stay) or None;
# ``document_purging`` receivers let go of the document (their links to it) before its rows are deleted.
_signals = Namespace()
document_removing = _signals.signal("document-removing")
document_purging = _signals.signal("document-purging")

MAX_REASON = 300
LISTED = 500  # the trash page shows at most this many, the most recently removed first


class DocumentConflict(DocumentError):
    """Not now: the document is in use, or not in the trash (answered 409 with what to do)."""

    status = 409


def sees_trash() -> bool:
    """Whether the current person may see the trash (those who may remove documents)."""
    return allowed(current_scope().role, "tenant:documents.trash")


def retention_days() -> int:
    return int(current_app.config["TRASH_RETENTION_DAYS"])


def purge_date(doc: Document) -> date | None:
    """The day a document in the trash is deleted for good: the day it was removed, in its tenant's
    time zone, plus ``TRASH_RETENTION_DAYS``. The purge job deletes it when that day begins there."""
    if doc.trashed_at is None:
        return None
    return today_in(tenant_zone(doc.tenant_id), doc.trashed_at) + timedelta(days=retention_days())


def parse_reason(raw: str | None) -> str:
    """Why a document is removed: required, at most 300 characters (trimmed)."""
    reason = (raw or "").strip()
    if not reason:
        raise DocumentError(_("Say why this document is removed: your provider and your colleagues read it."))
    if len(reason) > MAX_REASON:
        raise DocumentError(_("Keep the reason to at most %(n)d characters.", n=MAX_REASON))
    return reason


@dataclass(frozen=True)
class Trashed:
    """A document just removed: when it will be deleted for good, and the request items open again."""

    document: Document
    purge_on: date
    reopened: list[str]  # descriptions of the request items it had fulfilled, outstanding again


def trash(actor: User, tenant: Tenant, document_id: str, *, reason: str | None, ip: str | None = None) -> Trashed:
    """Remove a document to the trash (client admins and approvers, the provider's people: the gate).

    The document is found first, so another tenant's or a missing one is a 404 whatever the
    reason says. Refused (409) when an area above the vault says it must stay (``document_removing``:
    the work area keeps the work product of an unfinished task, and for good one the client approved,
    the record of that approval; accounting records are not deleted). A request item it fulfilled is
    outstanding again.
    Its row is locked, so a new version, an approval of it or a second removal at the same moment
    wait for this one. Recorded as ``document.trashed`` with the reason.
    """
    doc = get_document(actor, document_id, lock=True)
    reason = parse_reason(reason)
    for _receiver, refusal in document_removing.send(doc):
        if refusal:
            raise DocumentConflict(refusal)
    reopened: list[str] = []
    items = db.session.scalars(select(RequestItem).where(RequestItem.document_id == doc.id,
                                                         RequestItem.fulfilled_at.is_not(None))
                               .order_by(RequestItem.position).with_for_update())
    for item in items:
        item.document_id = item.fulfilled_at = item.fulfilled_by_id = None
        reopened.append(item.description)
        audit.record("request.item_reopened", audit.Actor.of(actor), tenant_id=tenant.id, object_type="request_item",
                     object_id=item.id, ip=ip, data={"name": item.description, "document": doc.title,
                                                     "because": "document.trashed"})
    doc.trashed_at, doc.trashed_by_id, doc.trash_reason = utcnow(), actor.id, reason
    doc.updated_at = doc.trashed_at
    _record("document.trashed", actor, tenant, doc, ip, reason=reason, requests_reopened=len(reopened))
    db.session.commit()
    return Trashed(doc, purge_date(doc), reopened)


def restore(actor: User, tenant: Tenant, document_id: str, *, ip: str | None = None) -> Document:
    """Bring a document back from the trash (the provider's managers and admins: the gate).

    It comes back as it was: its versions, filing and links to tasks; a request item it fulfilled
    stays outstanding (upload against it again, or answer it). Refused (409) for a document not in
    the trash, and from its purge day on. Recorded as ``document.restored``.
    """
    doc = get_document(actor, document_id, trashed=None, lock=True)
    if doc.trashed_at is None:
        raise DocumentConflict(_("“%(title)s” is not in the trash.", title=doc.title))
    if today_in(tenant_zone(tenant.id)) >= purge_date(doc):
        raise DocumentConflict(_("“%(title)s” is being deleted for good today and can no longer be restored.",
                                 title=doc.title))
    reason = doc.trash_reason
    doc.trashed_at = doc.trashed_by_id = doc.trash_reason = None
    doc.updated_at = utcnow()
    _record("document.restored", actor, tenant, doc, ip, reason=reason)
    db.session.commit()
    return doc


def trashed_documents(actor: User) -> list[Document]:
    """What is in the bound tenant's trash, the most recently removed first (at most ``LISTED``)."""
    query = (_visible(actor, trashed=True).options(selectinload(Document.trashed_by))
             .order_by(Document.trashed_at.desc(), Document.id.desc()).limit(LISTED))
    return list(db.session.scalars(query))


# --- purging -------------------------------------------------------------------------------

def purge_trash(tenant_id: uuid.UUID | str, now: datetime | None = None) -> int:
    """Job: delete for good the tenant's documents whose purge day has come; returns how many.

    Each document goes in a transaction of its own, its row claimed with ``FOR UPDATE SKIP
    LOCKED``: two runs at once (a retried job, two workers) never purge one document twice and
    never wait for each other's documents, and a restore that holds the row first wins. The
    stored objects are deleted from storage only after the rows are gone (committed): a failed
    transaction never leaves a catalogue row without its object, which a later upload of the same
    content would be linked to.
    """
    tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
    if tenant is None or tenant.is_gone:
        return 0
    zone = tenant_zone(tenant.id)
    # purge day <= today  <=>  the day it was removed <= today - retention  <=>  removed before this instant:
    boundary = start_of_day(today_in(zone, now) - timedelta(days=retention_days() - 1), zone)
    due = list(db.session.scalars(select(Document.id).where(Document.trashed_at < boundary)
                                  .order_by(Document.trashed_at, Document.id)))
    db.session.commit()
    storage, purged, failed = vault_storage(), 0, []
    for document_id in due:
        keys = _purge_one(tenant, document_id, boundary)
        db.session.commit()
        if keys is None:
            continue
        purged += 1
        for object_id, key in keys:
            try:
                storage.delete(key)  # deleting a missing object is not an error
            except Exception:  # noqa: BLE001 - every object gets its chance; the job fails below
                current_app.logger.exception("purge: stored object %s of tenant %s was not deleted",
                                             object_id, tenant.id)
                failed.append(object_id)
    if failed:
        raise RuntimeError(f"purge of tenant {tenant.id}: {len(failed)} stored objects could not be deleted")
    return purged


def _purge_one(tenant: Tenant, document_id: uuid.UUID, boundary: datetime) -> list[tuple[uuid.UUID, str]] | None:
    """Delete one document due for purging, in the caller's transaction; None when it is not (any more).

    Returns the (id, storage key) of the stored objects whose rows were deleted, for the caller to
    delete from storage once the transaction committed.
    """
    doc = db.session.scalar(select(Document).where(Document.id == document_id, Document.trashed_at < boundary)
                            .with_for_update(of=Document, skip_locked=True)
                            .execution_options(populate_existing=True))
    if doc is None:
        return None  # restored, purged already, or being purged by another run right now
    title, trashed_at, versions = doc.title, doc.trashed_at, len(doc.versions)
    object_ids = sorted({v.object_id for v in doc.versions})
    document_purging.send(doc)
    db.session.execute(update(RequestItem).where(RequestItem.document_id == doc.id).values(document_id=None))
    db.session.execute(delete(DocumentVersion).where(DocumentVersion.document_id == doc.id))
    db.session.execute(delete(Document).where(Document.id == doc.id))
    # The objects, locked in id order, then those no other version uses any more. A version of another
    # document that links one of them (an upload of the same content) holds a key-share lock on its row
    # until it commits: the lock waits for it, and the check below then sees it.
    objects = list(db.session.scalars(select(StoredObject).where(StoredObject.id.in_(object_ids))
                                      .order_by(StoredObject.id).with_for_update()
                                      .execution_options(populate_existing=True)))
    used = set(db.session.scalars(select(DocumentVersion.object_id).where(DocumentVersion.object_id.in_(object_ids))))
    doomed = [obj for obj in objects if obj.id not in used]
    renditions = [rendition for obj in doomed for rendition in obj.renditions]
    gone = [(obj.id, obj.storage_key) for obj in doomed]
    if renditions:
        gone += [(t.id, t.storage_key) for t in db.session.scalars(select(StoredObject)
                                                                   .where(StoredObject.id.in_(renditions)))]
    if gone:
        db.session.execute(delete(StoredObject).where(StoredObject.id.in_([object_id for object_id, _key in gone])))
    audit.record("document.purged", audit.SYSTEM, tenant_id=tenant.id, object_type="document", object_id=document_id,
                 data={"name": title, "trashed_at": trashed_at.isoformat(), "versions": versions,
                       "objects_deleted": len(doomed), "objects_kept": len(objects) - len(doomed)})
    return gone

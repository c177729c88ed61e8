"""What the vault's news means for the work: the vault announces, this listens.

- A new version of a document (``document.version_added``, through the outbox): a task that approved
  other content of it as its work product goes back to the client for approval.
- Removing (``portal.documents.trash`` signals, in the removal's transaction): a document that is the work
  product of a task not finished yet stays (the client would approve nothing), and one the client
  approved as a task's work product stays for good: it is the record of what was approved.
- Purging: tasks let go of the document, their links to it and a work product pointing at it.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from portal import events
from portal.documents.models import Document, DocumentVersion, StoredObject
from portal.documents.trash import document_purging, document_removing
from portal.extensions import db
from portal.work.models import Task, TaskDocument
from portal.work.services import product_changed
from portal.work.states import FINAL
from tenants.models import User


def version_added(tenant_id: uuid.UUID, document_id: str, version: str) -> None:
    """A work product's new version voids approvals of other content (idempotent: none is left the second time)."""
    row = db.session.execute(
        select(StoredObject.sha256, DocumentVersion.uploaded_by_id)
        .join(DocumentVersion, DocumentVersion.object_id == StoredObject.id)
        .where(DocumentVersion.document_id == uuid.UUID(document_id), DocumentVersion.number == int(version))).first()
    if row is None:  # purged since
        return
    uploader = db.session.get(User, row.uploaded_by_id) if row.uploaded_by_id else None
    product_changed(uuid.UUID(document_id), row.sha256, uploader)


def keeps(doc: Document, **_signal: Any) -> str | None:
    """Why the work needs ``doc`` to stay, or None."""
    approved = db.session.scalars(select(Task).where(Task.product_id == doc.id, Task.approved_at.is_not(None))
                                  .order_by(Task.approved_at).limit(1)).first()
    if approved is not None:
        return _("“%(title)s” was approved as the work product of the task “%(task)s”. It is kept as the record "
                 "of that approval and cannot be removed.", title=doc.title, task=approved.title)
    busy = db.session.scalars(select(Task).where(Task.product_id == doc.id,
                                                 Task.state.not_in([s.value for s in FINAL]))
                              .order_by(Task.created_at).limit(1)).first()
    if busy is not None:
        return _("“%(title)s” is the work product of the task “%(task)s”, which is not finished yet. Finish or "
                 "cancel that task, or attach another document to it, before removing this one.",
                 title=doc.title, task=busy.title)
    return None


def let_go(doc: Document, **_signal: Any) -> None:
    """Tasks forget a document being purged (in the purge's transaction)."""
    db.session.execute(delete(TaskDocument).where(TaskDocument.document_id == doc.id))
    db.session.execute(update(Task).where(Task.product_id == doc.id).values(product_id=None))


def init_app() -> None:
    events.subscribe("document.version_added", "work.approvals", version_added)
    document_removing.connect(keeps, weak=False)
    document_purging.connect(let_go, weak=False)

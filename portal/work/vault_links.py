"""What removing or purging a vault document means for the work: ``portal.documents.trash`` announces, this listens.

A document that is the work product of a task not finished yet stays (the client would approve
nothing), and one the client approved as a task's work product stays for good: it is the record of what
was approved. When a document is purged, tasks let go of it: their links to it, and a work product
pointing at it.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from portal.documents.models import Document
from portal.documents.trash import document_purging, document_removing
from portal.extensions import db
from portal.work.models import Task, TaskDocument
from portal.work.states import FINAL


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
    document_removing.connect(keeps, weak=False)
    document_purging.connect(let_go, weak=False)

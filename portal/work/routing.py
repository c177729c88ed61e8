"""Uploads open or extend tasks: a rule per document category.

Invoices, receipts and bank statements of a month gather in that month's
bookkeeping task; payroll inputs in that month's payroll task. The task is found
or created by a key of its own (``upload:<line>:<month>`` in the tenant's unique
``recurrence_key``), so two uploads at the same moment still share one task.
The title is written in the tenant's language, as everyone in the tenant reads it.
"""

from __future__ import annotations

import uuid
from datetime import date

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.documents.models import Document
from portal.extensions import db
from portal.work.models import Task, TaskDocument, TaskEvent
from portal.work.services import open_keyed_task, service_line
from tenants.models import Tenant, User

# category → (service line, task title); categories not listed open nothing.
_BOOKKEEPING = _l("Bookkeeping %(month)s: documents to post")
RULES = {
    "invoice": ("bookkeeping", _BOOKKEEPING),
    "receipt": ("bookkeeping", _BOOKKEEPING),
    "bank_statement": ("bookkeeping", _BOOKKEEPING),
    "payroll_input": ("payroll", _l("Payroll %(month)s: inputs received")),
}


def route_upload(document: Document, actor: User | None) -> uuid.UUID | None:
    """Attach a new document to its month's task for its category, opening the task if needed.

    Runs in the upload's transaction (the caller commits). Returns the task's id, or None.
    """
    rule = RULES.get(document.category)
    if rule is None:
        return None
    line_key, title = rule
    month = document.period or date.today().replace(day=1)
    label = month.strftime("%Y-%m")
    key = f"upload:{line_key}:{label}"
    line = service_line(line_key)
    with force_locale(db.session.scalar(select(Tenant.locale).where(Tenant.id == document.tenant_id)) or "en"):
        title = str(title) % {"month": label}
    task_id = (open_keyed_task(document.tenant_id, line, key, title=title, source="upload")
               or db.session.scalar(select(Task.id).where(Task.recurrence_key == key)))
    db.session.add(TaskDocument(tenant_id=document.tenant_id, task_id=task_id, document_id=document.id))
    db.session.add(TaskEvent(tenant_id=document.tenant_id, task_id=task_id, actor_id=actor.id if actor else None,
                             actor_label=actor.name if actor else "system", kind="document_linked",
                             data={"document": document.title}))
    return task_id

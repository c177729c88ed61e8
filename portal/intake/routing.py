"""Intake's last step: a new document opens or extends a task, by a rule per document category.

Invoices, receipts and bank statements of a month gather in that month's
bookkeeping task; payroll inputs in that month's payroll task. The task is found
or created by a key of its own (``upload:<line>:<month>`` in the tenant's unique
``recurrence_key``), so two uploads at the same moment still share one task.
The title is written in the tenant's language, as everyone in the tenant reads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.documents.models import Document
from portal.extensions import db
from portal.work.models import Task, TaskDocument, TaskEvent
from portal.work.services import open_keyed_task, service_line
from portal.work.states import FINAL
from tenants.models import Tenant, User
from tenants.zones import tenant_zone, today_in

# Documents no rule routes, whatever they read as: an area that stores its own documents in the vault (the
# statements' PDFs) says which are its own with ``keep_out``.
KEEP_OUT: list[Callable[[Document], bool]] = []


def keep_out(check: Callable[[Document], bool]) -> None:
    """Never route a document for which ``check`` is true (each check once)."""
    if check not in KEEP_OUT:
        KEEP_OUT.append(check)


# category → (service line, task title, title of a follow-up when the month's task was finished).
_BOOKKEEPING = _l("Bookkeeping %(month)s: documents to post")
_BOOKKEEPING_LATE = _l("Bookkeeping %(month)s: late documents to post")
RULES = {
    "invoice": ("bookkeeping", _BOOKKEEPING, _BOOKKEEPING_LATE),
    "receipt": ("bookkeeping", _BOOKKEEPING, _BOOKKEEPING_LATE),
    "bank_statement": ("bookkeeping", _BOOKKEEPING, _BOOKKEEPING_LATE),
    "payroll_input": ("payroll", _l("Payroll %(month)s: inputs received"), _l("Payroll %(month)s: late inputs")),
}


def route_upload(document: Document, actor: User | None, category: str | None = None) -> uuid.UUID | None:
    """Attach a new document to its month's task for its category, opening the task if needed.

    A month whose task is finished (done, or cancelled) gets a follow-up task for what came
    late (``upload:<line>:<month>#2``, ``#3``…), which waits in the line's queue like any
    other: a late invoice is never filed into work nobody will open again.
    ``category`` is what intake classified the document as (the client's own choice wins: the caller
    passes the document's category unless it is "other"). Runs in the intake chain's transaction
    (the caller commits). Returns the task's id, or None.
    """
    rule = RULES.get(category or document.category)
    if rule is None or any(check(document) for check in KEEP_OUT):
        return None
    line_key, title, late_title = rule
    month = document.period or today_in(tenant_zone(document.tenant_id)).replace(day=1)
    label = month.strftime("%Y-%m")
    base = f"upload:{line_key}:{label}"
    line = service_line(line_key)
    tasks = db.session.execute(select(Task.id, Task.state, Task.recurrence_key).where(
        (Task.recurrence_key == base) | Task.recurrence_key.startswith(f"{base}#", autoescape=True))).all()
    linked = db.session.scalar(select(TaskDocument.task_id).where(
        TaskDocument.document_id == document.id, TaskDocument.task_id.in_([t.id for t in tasks])).limit(1))
    if linked is not None:  # routed before (the step run again): once is enough
        return linked
    unfinished = [t.id for t in tasks if t.state not in FINAL]
    if unfinished:
        task_id = unfinished[-1]
    else:
        key = base if not tasks else f"{base}#{len(tasks) + 1}"
        with force_locale(db.session.scalar(select(Tenant.locale).where(Tenant.id == document.tenant_id)) or "en"):
            text = str(title if not tasks else late_title) % {"month": label}
        # Two uploads at the same moment: one opens the task, the other finds it by its key.
        task_id = (open_keyed_task(document.tenant_id, line, key, title=text, source="upload")
                   or db.session.scalar(select(Task.id).where(Task.recurrence_key == key)))
    db.session.add(TaskDocument(tenant_id=document.tenant_id, task_id=task_id, document_id=document.id))
    db.session.add(TaskEvent(tenant_id=document.tenant_id, task_id=task_id, actor_id=actor.id if actor else None,
                             actor_label=actor.name if actor else "system", kind="document_linked",
                             data={"document_id": str(document.id)}))
    return task_id

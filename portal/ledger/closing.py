"""Closing a month with the client, on the work queues' machinery.

Staff start the closing: the month goes "in review", its report (trial balance, profit and loss, balance
sheet, with the SHA-256 of the trial balance) is stored in the vault, and a task "Close the books of
MM/YYYY" opens with that report as its work product, a second person as reviewer, and the client's
approval to follow. The approval binds to the report's SHA-256 (the work area's rule), so:

- a posting into the month while it is in review writes the report again, as a new version, and the
  vault's announcement voids any approval of the old one (``work.product_changed``);
- when the task is done (``task.done``), the month closes only if the report the client approved is
  still the month's report, word for word; else it stays in review;
- reopening a closed month writes the report again (with the reason), which voids the approval.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.documents import services as vault
from portal.extensions import db
from portal.ledger import reports, services
from portal.ledger.models import Entry, Period
from tenants import audit
from tenants.models import Tenant, User, utcnow


def report_csv(month: date, note: str | None = None) -> bytes:
    """The month's report as the client approves it: trial balance, result and balance sheet, and the hash."""
    rows = reports.trial_balance(services.last_day(month), since=month)
    pl = reports.profit_and_loss(services.last_day(month), since=month)
    sheet, unclosed = reports.balance_sheet(services.last_day(month))
    out = io.StringIO()
    writer = csv.writer(out)
    table = [["account", "name", "debit", "credit", "balance", ""],
             ["month", month.strftime("%Y-%m"), "trial_balance_sha256", services.month_hash(rows), "", ""],
             *([["note", note, "", "", "", ""]] if note else []),
             *([r.code, r.name_vi, r.debit, r.credit, r.balance, ""] for r in rows),
             ["revenue", pl.total("revenue"), "expenses", pl.total("expense"), "result", reports.result(pl)],
             ["assets", sheet.total("asset"), "liabilities", sheet.total("liability"), "equity",
              sheet.total("equity")],
             ["result_not_closed", unclosed, "", "", "", ""]]
    writer.writerows(table)  # one width for every row: the vault reads it as the table it is
    return out.getvalue().encode("utf-8")


def _store_report(actor: User, tenant: Tenant, period: Period, note: str | None = None) -> uuid.UUID:
    """Store the month's report: a new document, or a new version of the month's report (commits)."""
    name = f"books-{period.month.strftime('%Y-%m')}.csv"
    target = vault.upload_target(actor, category="other", period=period.month.strftime("%Y-%m"),
                                 document_id=str(period.report_id) if period.report_id else None)
    result = vault.upload(actor, tenant, [report_csv(period.month, note)], filename=name, target=target)
    if not result.ok or result.document is None:
        raise services.LedgerError(result.message)
    return result.document.id


def start(actor: User, tenant: Tenant, month: date, reviewer_id: str, ip: str | None = None) -> Period:
    """Put the month in review and open its closing task for ``reviewer_id`` (not the one closing). Commits."""
    from portal.work import services as work

    month = month.replace(day=1)
    period = services.period_of(month) or Period(tenant_id=tenant.id, month=month, state="open")
    if period.task_id is not None and period.state == "open":  # reopened: its task is worked and reviewed again
        period.state = "in_review"
        db.session.commit()
        _store_report(actor, tenant, period)
        audit.record("ledger.month_in_review", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="ledger_period", object_id=period.id, ip=ip,
                     data={"month": month.isoformat(), "task": str(period.task_id)})
        db.session.commit()
        return services.period_of(month)
    if period.state != "open":
        raise services.LedgerError(_("%(month)s is being closed or is closed already.", month=month.strftime("%m/%Y")))
    if str(reviewer_id) == str(actor.id):
        raise services.LedgerError(_("Choose someone else to review the month: a second person checks it."),
                                   {"reviewer": _("Not yourself.")})
    drafts = db.session.scalar(select(func.count()).select_from(Entry).where(
        Entry.state == "draft", Entry.entry_date >= month, Entry.entry_date <= services.last_day(month)))
    if drafts:
        raise services.LedgerError(_("%(month)s still has %(count)d draft entries: post or delete them before "
                                     "closing it.", month=month.strftime("%m/%Y"), count=drafts))
    period.state = "in_review"
    db.session.add(period)
    db.session.flush()
    period.report_id = _store_report(actor, tenant, period)  # commits
    period = services.period_of(month)
    try:
        title = _("Close the books of %(month)s", month=month.strftime("%m/%Y"))
        task = work.create_task(actor, tenant, title=title, service_line_key="bookkeeping", assignee_id=str(actor.id),
                                reviewer_id=str(reviewer_id), needs_approval=True, source="ledger",
                                recurrence_key=f"ledger-close:{month.isoformat()}")
    except work.WorkError as exc:
        raise services.LedgerError(str(exc), {"reviewer": str(exc)}) from None
    period = services.period_of(month)
    period.task_id = task.id
    db.session.commit()
    work.attach_product(actor, str(task.id), str(period.report_id))  # commits
    work.move(actor, tenant, str(task.id), "start")  # the one closing works on it: submit it for review next
    audit.record("ledger.month_in_review", audit.Actor.of(actor), tenant_id=tenant.id, object_type="ledger_period",
                 object_id=period.id, ip=ip, data={"month": month.isoformat(), "task": str(task.id)})
    db.session.commit()
    return period


def rewrite_report(actor: User, tenant: Tenant, period: Period, note: str | None = None) -> None:
    """Write the month's report again (a new version; commits)."""
    _store_report(actor, tenant, period, note)


def back_to_work(actor: User, period: Period, reason: str) -> None:
    """A reopened month's closing task goes back to whoever closed it, its approval void: the month is closed
    again only after a second person's review and the client's approval of the corrected report."""
    from portal.work import services as work
    from portal.work.models import Task
    from portal.work.states import FINAL, State

    task = db.session.scalar(select(Task).where(Task.id == period.task_id).with_for_update(of=Task)) \
        if period.task_id else None
    if task is None or task.state in FINAL - {State.DONE}:
        return
    source = task.state
    task.state, task.done_at, task.updated_at = State.IN_PROGRESS, None, utcnow()
    task.approved_sha256 = task.approved_by_id = task.approved_at = None
    work.add_event(task, actor, "moved", source=source, target=State.IN_PROGRESS, move="reopened")
    work.record("task.reopened", actor, task, reason=reason)


def posted_into(actor: User, tenant: Tenant, day: date) -> None:
    """An entry was posted into ``day``'s month: if it is in review, its report is written again (the vault's
    new version voids an approval of the old one)."""
    period = services.period_of(day)
    if period is not None and period.state == "in_review" and period.report_id is not None:
        _store_report(actor, tenant, period)


def task_done(tenant_id: uuid.UUID, task_id: str) -> None:
    """``task.done``: a month whose closing task is done closes, if the approved report is the month's now."""
    from portal.documents.models import DocumentVersion, StoredObject
    from portal.work.models import Task

    period = db.session.scalar(select(Period).where(Period.task_id == uuid.UUID(task_id)).with_for_update())
    if period is None or period.state != "in_review":
        return
    task = db.session.get(Task, period.task_id)
    current = db.session.scalar(select(StoredObject.sha256).join(DocumentVersion,
                                                                 DocumentVersion.object_id == StoredObject.id)
                                .where(DocumentVersion.document_id == period.report_id)
                                .order_by(DocumentVersion.number.desc()).limit(1))
    fresh = report_csv(period.month)
    if task.approved_sha256 is None or task.approved_sha256 != current or hashlib.sha256(fresh).hexdigest() != current:
        return  # the books moved since the client approved: the month stays in review
    services.close(period, task.approved_by_id, audit.SYSTEM, approved=current)
    db.session.commit()

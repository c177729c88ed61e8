"""The intake chain: small ordered steps over one document version, under one progress record.

Each step says whether it applies to the document (``applies``) and does its part (``run``), leaving
what it made on the record or elsewhere (a thumbnail, the text, a task), and returns a short note. The
chain (``run``) is one job per document version that carries ids only; it binds the document's tenant
as a request does (the job runner does) and is idempotent:

- the record is claimed with a lease (``INTAKE_LEASE_SECONDS``): a second run while the first holds it
  does nothing, and a run after a worker died (SIGKILL: the lease runs out) goes on where it stopped; the
  rq job holding the lease is recorded, so its own retry (a try that died or met a database outage and could
  not hand the lease back) takes over at once instead of waiting for the lease;
- every step finished is recorded (``steps``) in the same transaction as what it left behind, so a
  step is never done twice, and a step interrupted half-way is run again from its start;
- a file that cannot be read fails its step (``StepFailed``, with the reader's word for why) and the
  chain goes on, so the document still reaches its task; the record ends failed, never in a retry
  loop, and staff can try again (``retry``). Any other error (the database, storage) rolls back, and
  rq tries again with back-off.

Steps register in order with ``register``; later areas (invoice fields, bank files) add theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import false, func, or_, select, update

from portal.documents.models import Document, DocumentVersion, StoredObject
from portal.extensions import db
from portal.intake.models import IntakeRecord
from tenants.models import utcnow


class StepFailed(Exception):
    """The file itself stops the step (damaged, unreadable): the message is a stable word for why, which
    pages turn into a sentence (``steps.REASONS``)."""


@dataclass
class Intake:
    """What a step sees: the record, the document, the version being read and its stored object."""

    record: IntakeRecord
    document: Document
    version: DocumentVersion
    object: StoredObject


@dataclass(frozen=True)
class Step:
    name: str  # stable: it is written in the records
    applies: Callable[[Intake], bool]
    run: Callable[[Intake], str | None]
    # Heavy for this document (OCR of a large file): the chain goes on in the heavy queue, behind the rest.
    heavy: Callable[[Intake], bool] = lambda _it: False


HEAVY_QUEUE = "intake_heavy"


STEPS: list[Step] = []


def register(step: Step, *, before: str | None = None) -> None:
    """Add a step at the end of the chain, or before the step named ``before`` (each once)."""
    if any(s.name == step.name for s in STEPS):
        return
    at = next((i for i, s in enumerate(STEPS) if s.name == before), len(STEPS)) if before else len(STEPS)
    STEPS.insert(at, step)


def start(tenant_id: uuid.UUID, document_id: str, version: str) -> None:
    """The vault stored a document or a version (``portal.events``): its record, and its turn in the queue."""
    from sqlalchemy.dialects.postgresql import insert

    db.session.execute(
        insert(IntakeRecord).values(id=uuid.uuid4(), tenant_id=tenant_id, document_id=uuid.UUID(document_id),
                                    version=int(version), state="waiting", steps={}, attempts=0,
                                    updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["document_id", "version"]))  # announced twice: one record
    top_up(tenant_id)


def top_up(tenant_id: uuid.UUID) -> int:
    """Queue the tenant's oldest waiting records while it has fewer than ``INTAKE_TENANT_SLOTS`` queued or
    running: one tenant's import of 5,000 files never has more than a few jobs ahead of anyone else's.
    Returns how many were queued; in the caller's transaction (the tenant's own lock, held to its end)."""
    from workers import enqueue

    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"intake:{tenant_id}", 0))))
    busy = db.session.scalar(select(func.count()).select_from(IntakeRecord).where(
        IntakeRecord.tenant_id == tenant_id, IntakeRecord.state.in_(("waiting", "running")),
        IntakeRecord.queued_at.is_not(None))) or 0
    free = current_app.config["INTAKE_TENANT_SLOTS"] - busy
    if free <= 0:
        return 0
    turn = db.session.execute(select(IntakeRecord.id, IntakeRecord.document_id, IntakeRecord.version).where(
        IntakeRecord.tenant_id == tenant_id, IntakeRecord.state == "waiting", IntakeRecord.queued_at.is_(None))
        .order_by(IntakeRecord.created_at, IntakeRecord.id).limit(free)).all()
    now = utcnow()
    for row in turn:
        db.session.execute(update(IntakeRecord).where(IntakeRecord.id == row.id).values(queued_at=now,
                                                                                         updated_at=now))
        enqueue("intake.run", row.document_id, row.version, tenant_id=tenant_id)
    return len(turn)


def run(document_id: str, version: str, queue: str = "default") -> str:
    """Run the chain on the bound tenant's document version from where it stopped; returns its state.

    A step the file stops (``StepFailed``) is recorded as failed and the chain goes on (a document that
    cannot be read still reaches its task); the record ends failed, saying why, until staff try again.
    A step that is heavy for this document hands the rest of the chain to the heavy queue, so a long
    scan never holds up the previews and texts of everything uploaded after it.
    """
    from workers import enqueue

    record_id = _claim(uuid.UUID(document_id), int(version))
    if record_id is None:
        return "busy_or_finished"
    for step in list(STEPS):
        record = db.session.get(IntakeRecord, record_id, populate_existing=True)
        if step.name in record.steps:
            continue
        intake = _intake(record)
        if intake is None:  # the document or version went (purged) while it waited: free its slot
            record.state, record.queued_at, record.lease_until = "done", None, None
            top_up(record.tenant_id)
            db.session.commit()
            return "gone"
        applies = step.applies(intake)
        if queue != HEAVY_QUEUE and applies and step.heavy(intake):
            record.state, record.lease_until, record.updated_at = "waiting", None, utcnow()
            enqueue("intake.run", document_id, version, HEAVY_QUEUE, tenant_id=record.tenant_id,
                    queue_name=HEAVY_QUEUE)
            db.session.commit()
            return "handed_to_heavy_queue"
        record.step, record.lease_until, record.updated_at = step.name, _lease(), utcnow()
        db.session.commit()  # where it is, for the pages; the lease renewed for this step
        try:
            outcome = {"state": "done", "note": step.run(intake)} if applies else {"state": "skipped"}
        except StepFailed as exc:
            db.session.rollback()
            outcome = {"state": "failed", "reason": str(exc)[:40]}
            _audit_failure(record_id, step.name, outcome["reason"])
        except Exception:  # not the file's fault (the database, storage): rq tries again, and may take it now
            db.session.rollback()
            db.session.execute(update(IntakeRecord).where(IntakeRecord.id == record_id).values(lease_until=utcnow()))
            db.session.commit()
            raise
        record = db.session.get(IntakeRecord, record_id)
        record.steps = {**record.steps, step.name: {**outcome, "at": utcnow().isoformat()}}
        db.session.commit()  # the step's results and its mark, together
    record = db.session.get(IntakeRecord, record_id)
    failed = next(((s.name, record.steps[s.name]["reason"]) for s in STEPS
                   if record.steps.get(s.name, {}).get("state") == "failed"), None)
    record.state = "failed" if failed else "done"
    record.step, record.error = failed if failed else (None, None)
    record.lease_until, record.finished_at, record.updated_at = None, utcnow(), utcnow()
    record.queued_at = None
    top_up(record.tenant_id)  # its slot goes to the tenant's next document
    db.session.commit()
    return record.state


def retry(record: IntakeRecord) -> None:
    """Staff try a failed record again (the caller audits and commits): from the step that failed, in its
    turn among the tenant's waiting documents."""
    if record.state != "failed":
        raise ValueError("only a record that failed can be tried again")
    # From the first step that failed on: what came after it may have depended on it (no text: no kind).
    names = [s.name for s in STEPS]
    first = min((names.index(n) for n, v in record.steps.items() if v.get("state") == "failed" and n in names),
                default=len(names))
    record.steps = {n: v for n, v in record.steps.items() if n in names[:first]}
    record.state, record.error, record.lease_until, record.updated_at = "waiting", None, None, utcnow()
    record.queued_at = None
    db.session.flush()
    top_up(record.tenant_id)


def resume_stale(batch: int = 500) -> int:
    """Records whose run died (lease over) or never started (waiting a while): their chain again; and
    documents whose current version has no record at all (stored before intake existed, or an
    announcement lost), ``batch`` at a time: their record and chain.

    For the scheduler, with every tenant bound; returns how many were sent. The outbox's own reaper
    re-runs a job rq lost; this covers a job that ran, found the lease still held, and ended.
    """
    from workers import enqueue

    now = utcnow()
    unread = db.session.execute(
        select(Document.tenant_id, Document.id, Document.current_version)
        .outerjoin(IntakeRecord, (IntakeRecord.document_id == Document.id)
                   & (IntakeRecord.version == Document.current_version))
        .where(IntakeRecord.id.is_(None), Document.trashed_at.is_(None),
               Document.created_at < now - timedelta(minutes=1))  # not one whose announcement is on its way
        .limit(batch)).all()
    for tenant_id, document_id, version in unread:
        start(tenant_id, str(document_id), str(version))
    rows = db.session.execute(select(IntakeRecord.id, IntakeRecord.tenant_id, IntakeRecord.document_id,
                                     IntakeRecord.version).where(or_(
        (IntakeRecord.state == "running") & (IntakeRecord.lease_until < now),
        (IntakeRecord.state == "waiting") & (IntakeRecord.queued_at < now - _lease_length())))).all()
    for row in rows:  # queued or running long ago, and nothing came of it: its job again
        db.session.execute(update(IntakeRecord).where(IntakeRecord.id == row.id).values(queued_at=now,
                                                                                         updated_at=now))
        enqueue("intake.run", row.document_id, row.version, tenant_id=row.tenant_id)
    waiting = db.session.scalars(select(IntakeRecord.tenant_id).where(
        IntakeRecord.state == "waiting", IntakeRecord.queued_at.is_(None)).distinct()).all()
    queued = sum(top_up(tenant_id) for tenant_id in waiting)  # a slot freed without taking the next one
    db.session.commit()
    return len(rows) + queued


# --- inside -----------------------------------------------------------------------------------------------

def _lease_length() -> timedelta:
    return timedelta(seconds=current_app.config["INTAKE_LEASE_SECONDS"])


def _lease() -> Any:
    return utcnow() + _lease_length()


def _claim(document_id: uuid.UUID, version: int) -> uuid.UUID | None:
    """Take the record for this run: waiting, or running with its lease over (its worker died), or running
    under this same rq job: an earlier try of it that could not hand the lease back (the database went away,
    its worker was killed), which has ended, since rq retries a job only then."""
    from workers.jobs import running_job

    now, job = utcnow(), running_job()
    held_by_me = (IntakeRecord.lease_job == job) if job is not None else false()
    claimed = db.session.execute(
        update(IntakeRecord)
        .where(IntakeRecord.document_id == document_id, IntakeRecord.version == version,
               or_(IntakeRecord.state == "waiting",
                   (IntakeRecord.state == "running") & ((IntakeRecord.lease_until < now) | held_by_me)))
        .values(state="running", lease_until=now + _lease_length(), lease_job=job,
                attempts=IntakeRecord.attempts + 1, queued_at=func.coalesce(IntakeRecord.queued_at, now),
                updated_at=now)
        .returning(IntakeRecord.id)).first()
    db.session.commit()
    return claimed.id if claimed else None


def _intake(record: IntakeRecord) -> Intake | None:
    row = db.session.execute(
        select(Document, DocumentVersion, StoredObject)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .join(StoredObject, StoredObject.id == DocumentVersion.object_id)
        .where(Document.id == record.document_id, DocumentVersion.number == record.version)).first()
    if row is None:
        return None
    return Intake(record, row.Document, row.DocumentVersion, row.StoredObject)


def _audit_failure(record_id: uuid.UUID, step: str, reason: str) -> None:
    from tenants import audit

    record = db.session.get(IntakeRecord, record_id)
    audit.record("intake.failed", audit.SYSTEM, tenant_id=record.tenant_id, object_type="document",
                 object_id=record.document_id, data={"step": step, "version": record.version, "reason": reason})
    current_app.logger.info("intake of %s v%s: %s failed: %s", record.document_id, record.version, step, reason)

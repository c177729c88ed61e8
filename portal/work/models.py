"""Tasks of the provider's work for a tenant, their timeline and comments.

``ServiceLine`` is provider-level (the provider's lines of work); everything else
belongs to one tenant (``TenantScoped``, row-level security in the migration).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.documents.models import Document
from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, User, new_id, utcnow


class ServiceLine(Timestamped, db.Model):
    """A line of work the provider offers (bookkeeping, payroll, data entry, admin, …)."""

    __tablename__ = "service_lines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Tasks of this line go to the client for approval after review (payroll runs, closes).
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Task(TenantScoped, Timestamped, db.Model):
    """One piece of work for one tenant, moved through ``portal.work.states``."""

    __tablename__ = "tasks"
    __table_args__ = (
        # The queue: open, unassigned tasks of a line, most urgent first (take-next reads this).
        Index("ix_tasks_queue", "service_line_id", "priority", "due_date", "created_at",
              postgresql_where=text("state = 'open' and assignee_id is null")),
        # Take-next over any line: the head of all open, unassigned tasks in queue order.
        Index("ix_tasks_queue_any_line", "priority", "due_date", "created_at",
              postgresql_where=text("state = 'open' and assignee_id is null")),
        # The team queues: what waits per client and line (counts and a line's page read only the index).
        Index("ix_tasks_waiting_by_tenant", "tenant_id", "service_line_id", "priority", "due_date",
              postgresql_where=text("state = 'open' and assignee_id is null")),
        # A tenant's tasks newest first (the API's list and its cursor).
        Index("ix_tasks_tenant_created", "tenant_id", "created_at", "id"),
        # "My work": a person's tasks by due date.
        Index("ix_tasks_assignee_due", "assignee_id", "due_date", "priority", "id",
              postgresql_where=text("state not in ('done', 'cancelled')")),
        # ... and what waits for their review (the other half of "my work"'s OR: without it, a scan).
        Index("ix_tasks_reviewer_in_review", "reviewer_id", "due_date", "priority", "id",
              postgresql_where=text("state = 'in_review'")),
        # The review queue: sent to review with no reviewer named, oldest first (take-next-review).
        Index("ix_tasks_review_queue", "service_line_id", "priority", "updated_at",
              postgresql_where=text("state = 'in_review' and reviewer_id is null")),
        UniqueConstraint("tenant_id", "recurrence_key", name="uq_tasks_recurrence"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(Sealed("tasks.title"), nullable=False)
    description: Mapped[str | None] = mapped_column(Sealed("tasks.description"))
    service_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("service_lines.id"), nullable=False)
    state: Mapped[str] = mapped_column(String(20), default="open", nullable=False)
    priority: Mapped[int] = mapped_column(Integer, default=3, nullable=False)  # 1 urgent … 4 low
    due_date: Mapped[date | None] = mapped_column(Date)
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    source: Mapped[str] = mapped_column(String(20), default="manual", nullable=False)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # Who did the work that is in review: never allowed to review it (four eyes).
    worked_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # Where a question to the client came from, to return there when the client answers.
    resume_state: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # Recurring tasks: "<template id>:<period>", unique per tenant, so each period is created once.
    recurrence_key: Mapped[str | None] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The work product the client approves (a vault document), and the SHA-256 of exactly the
    # version they approved: when the document changes, the approval no longer counts.
    product_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"),
                                                         index=True)
    approved_sha256: Mapped[str | None] = mapped_column(String(64))
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    service_line: Mapped[ServiceLine] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id], lazy="joined")
    product: Mapped[Document | None] = relationship()
    # Loaded when read (the task page), not with every task a list or a job loads.
    events: Mapped[list[TaskEvent]] = relationship(back_populates="task", order_by="TaskEvent.at")
    comments: Mapped[list[TaskComment]] = relationship(back_populates="task", order_by="TaskComment.created_at")


class TaskEvent(TenantScoped, db.Model):
    """A line of a task's timeline: who did what, when."""

    __tablename__ = "task_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(254), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)  # created, moved, assigned, …
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    # Staff-only events (an internal comment was added) are never shown to the client.
    internal: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    data: Mapped[dict] = mapped_column(JSONB, default=dict, nullable=False)

    task: Mapped[Task] = relationship(back_populates="events")


class TaskComment(TenantScoped, Timestamped, db.Model):
    """A comment: visible to the client, or internal (staff only, never on a client page, API or e-mail)."""

    __tablename__ = "task_comments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    author_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Sealed("task_comments.body"), nullable=False)
    internal: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    kind: Mapped[str] = mapped_column(String(12), default="comment", nullable=False)  # comment, question, answer

    task: Mapped[Task] = relationship(back_populates="comments")
    author: Mapped[User | None] = relationship(lazy="joined")


class TaskTemplate(TenantScoped, Timestamped, db.Model):
    """Recurring work of a tenant: a rule (``portal.work.recurrence.Rule``) makes one task per period."""

    __tablename__ = "task_templates"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(Sealed("task_templates.title"), nullable=False)
    service_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("service_lines.id"), nullable=False)
    rule: Mapped[dict] = mapped_column(JSONB, nullable=False)
    since: Mapped[date] = mapped_column(Date, nullable=False)  # no task for a period due before this
    lead_days: Mapped[int] = mapped_column(Integer, default=7, nullable=False)  # open it this long before due
    priority: Mapped[int] = mapped_column(Integer, default=3, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    service_line: Mapped[ServiceLine] = relationship(lazy="joined")


class TaskDocument(TenantScoped, db.Model):
    """A vault document linked to a task (a client's attachment, an invoice the task is about)."""

    __tablename__ = "task_documents"
    __table_args__ = (UniqueConstraint("task_id", "document_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    document_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="CASCADE"),
                                                   index=True, nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    document: Mapped[Document] = relationship(lazy="joined")


class TimeEntry(TenantScoped, Timestamped, db.Model):
    """Time spent on a task: a running timer (no ``ended_at`` yet) or a finished/manual entry."""

    __tablename__ = "time_entries"
    __table_args__ = (
        # One running timer per person, whatever the tenant.
        Index("uq_time_entries_running", "user_id", unique=True, postgresql_where=text("ended_at is null")),
        Index("ix_time_entries_tenant_started", "tenant_id", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    minutes: Mapped[int | None] = mapped_column(Integer)  # set when the entry ends (or typed in)
    billable: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    note: Mapped[str | None] = mapped_column(Sealed("time_entries.note"))


class Notification(TenantScoped, Timestamped, db.Model):
    """Something a person should know about a task; shown in the portal and e-mailed (now or in a digest)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "created_at",
                            postgresql_where=text("read_at is null")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                               nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)  # assigned, question, answer, approval_needed, …
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceTarget(TenantScoped, Timestamped, db.Model):
    """The turnaround the provider commits to for one tenant and service line (shown beside the results)."""

    __tablename__ = "service_targets"
    __table_args__ = (UniqueConstraint("tenant_id", "service_line_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    service_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("service_lines.id"), nullable=False)
    turnaround_days: Mapped[int] = mapped_column(Integer, nullable=False)
    on_time_percent: Mapped[int] = mapped_column(Integer, default=95, nullable=False)

    service_line: Mapped[ServiceLine] = relationship(lazy="joined")


# --- quality control by sampling (portal.work.quality) -------------------------------------------

class QualityRate(db.Model):
    """The provider-wide share of a service line's finished tasks drawn for a second check (percent)."""

    __tablename__ = "quality_rates"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    service_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("service_lines.id"), unique=True,
                                                       nullable=False)
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))


class TenantQualityRate(TenantScoped, db.Model):
    """One client's own sampling rate for a service line: replaces the provider-wide one (a client that
    needs more checks, or none)."""

    __tablename__ = "tenant_quality_rates"
    __table_args__ = (UniqueConstraint("tenant_id", "service_line_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    service_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("service_lines.id"), nullable=False)
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))


class QualityCheck(TenantScoped, db.Model):
    """A finished task drawn at random for a second check, and what the check found.

    At most one per task (``task_id`` is unique). Who did and who reviewed the work are kept as
    they were when it was drawn: neither may check it. The note is the provider's internal finding,
    sealed with the tenant's key; nothing of a check is ever shown to the client.
    """

    __tablename__ = "quality_checks"
    __table_args__ = (
        UniqueConstraint("task_id"),
        CheckConstraint("state in ('open', 'done')", name="state"),
        CheckConstraint("finding is null or finding in ('none', 'minor', 'major')", name="finding"),
        CheckConstraint("state = 'open' or (finding is not null and checked_at is not null)", name="done_has_finding"),
        # The check queue: drawn, nobody checking yet, oldest first (take-next-check reads this).
        Index("ix_quality_checks_waiting", "drawn_at", postgresql_where=text("state = 'open' and checker_id is null")),
        # The error rates: checks finished in a month, per tenant.
        Index("ix_quality_checks_checked", "tenant_id", "checked_at", postgresql_where=text("state = 'done'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False)
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)  # the rate it was drawn at
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    worked_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    checker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"),
                                                         index=True)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(10), default="open", nullable=False)  # open | done
    finding: Mapped[str | None] = mapped_column(String(10))  # none | minor | major
    kind: Mapped[str | None] = mapped_column(String(30))  # portal.work.quality.KINDS
    note: Mapped[str | None] = mapped_column(Sealed("quality_checks.note"))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The move that sent the work back (its line on the task's timeline), when the check did.
    rework_event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("task_events.id",
                                                                               ondelete="SET NULL"))

    task: Mapped[Task] = relationship()
    checker: Mapped[User | None] = relationship(foreign_keys=[checker_id], lazy="joined")

"""Intake's one progress record per document version, and what the chain left behind."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id, utcnow


class IntakeRecord(TenantScoped, Timestamped, db.Model):
    """Where a document version is in the intake chain, and what each step left behind.

    ``state``: waiting (announced, not started), running (a worker holds it until ``lease_until``),
    done, failed (``error``: the reader's word for why, shown as a sentence; staff may try again). ``steps`` maps each
    step's name to ``{"state": done | skipped, "at": ISO time, "note": short text}``: a step recorded
    there is never run again, so a run after a crash goes on from the step that was interrupted.
    ``text`` is the document's text (its own text layer, or OCR), sealed with the tenant's field key
    like every free text of the tenant's; ``text_source`` says which (layer, ocr, mixed).
    """

    __tablename__ = "intake_records"
    __table_args__ = (
        UniqueConstraint("document_id", "version"),
        # What is not finished: the progress counts, and the sweep for runs whose worker died.
        Index("ix_intake_records_open", "tenant_id", "state",
              postgresql_where=sql_text("state in ('waiting', 'running')")),
        Index("ix_intake_records_invoice_key", "tenant_id", "invoice_key",
              postgresql_where=sql_text("invoice_key is not null")),
        Index("ix_intake_records_search_tokens", "search_tokens", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="CASCADE"),
                                                   index=True, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(10), default="waiting", nullable=False)
    step: Mapped[str | None] = mapped_column(String(20))  # the step running, or the one that failed
    steps: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The rq job whose run holds the lease: that job's retry (the same id) may take it over before it runs out.
    lease_job: Mapped[str | None] = mapped_column(String(80))
    # When its job was queued (it holds one of the tenant's INTAKE_TENANT_SLOTS until it ends); None: waiting
    # for a slot.
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Sealed("intake.text"))
    text_source: Mapped[str | None] = mapped_column(String(10))
    pages: Mapped[int | None] = mapped_column(Integer)
    classified: Mapped[str | None] = mapped_column(String(20))  # what the text reads as: invoice, receipt, ...
    # Structured data read exactly (an e-invoice's fields and lines), JSON sealed like the text.
    extracted: Mapped[str | None] = mapped_column(Sealed("intake.extracted"))
    # The words of the first pages with their boxes (``readers.Page.words``), JSON sealed like the text.
    layout: Mapped[str | None] = mapped_column(Sealed("intake.layout"))
    # Invoice or receipt fields read from the pages (``fields.Field`` by name), and staff's corrections of
    # them (``{name: {"value", "by", "at"}}``): the reading is kept as it was.
    fields: Mapped[str | None] = mapped_column(Sealed("intake.fields"))
    corrections: Mapped[str | None] = mapped_column(Sealed("intake.corrections"))
    # SHA-256 of the invoice's identity (seller tax code, template, symbol, number): a second copy is found.
    invoice_key: Mapped[str | None] = mapped_column(String(64))
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    # An e-invoice's XML and its PDF copy point at each other.
    paired_with: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    # Blind tokens of the text's words (``search``): keyed hashes under the tenant's field key, never a word.
    search_tokens: Mapped[list[bytes] | None] = mapped_column(ARRAY(LargeBinary))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

"""Data entry: the templates the provider defines for a tenant, and the records staff key from documents.

A template's fields are JSONB (``fields.Field.as_json``, in the order they are keyed): the provider's own
definition, in clear like a chart of accounts. What is keyed (the values) is the client's business: one
sealed JSON text per record (``fields`` holds how each type is stored: amounts as integers in the tenant's
currency's minor unit, numbers as exact decimal strings, dates in ISO).

Two unique keys make keying idempotent (migration 0024): a document has at most one record per template,
and a form's submission token (``submission``) makes at most one record, so a double click, a reloaded
POST or a repeated API call with the same ``Idempotency-Key`` never makes a second one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.documents.models import Document
from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, User, new_id


class Template(TenantScoped, Timestamped, db.Model):
    """What to key for a tenant: a name, a description and its fields. Archived ones key nothing new."""

    __tablename__ = "data_entry_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(Sealed("data_entry_templates.description"))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class Record(TenantScoped, Timestamped, db.Model):
    """One record keyed with a template, from a document of the tenant's (or from none).

    ``number`` counts the template's records from 1 (a deleted one's number is not given again).
    """

    __tablename__ = "data_entry_records"
    __table_args__ = (
        UniqueConstraint("template_id", "number", name="uq_data_entry_records_number"),
        UniqueConstraint("template_id", "document_id", name="uq_data_entry_records_document"),
        UniqueConstraint("tenant_id", "submission", name="uq_data_entry_records_submission"),
        Index("ix_data_entry_records_keyed", "tenant_id", "template_id", "keyed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    template_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_entry_templates.id", ondelete="RESTRICT"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"),
                                                          index=True)
    field_values: Mapped[str] = mapped_column(Sealed("data_entry_records.field_values"), nullable=False)
    submission: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    keyed_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    keyed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    template: Mapped[Template] = relationship(lazy="joined")
    keyed_by: Mapped[User | None] = relationship(foreign_keys=[keyed_by_id], lazy="joined")
    document: Mapped[Document | None] = relationship()

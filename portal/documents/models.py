"""The vault's catalogue: stored objects, documents and their versions, document requests.

The bytes live in object storage, sealed (``tenants.sealed``); these rows say what
each object is and hold its wrapped data key. Every table is tenant-owned
(``TenantScoped``, row-level security in the migration).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, User, new_id


class StoredObject(TenantScoped, Timestamped, db.Model):
    """One sealed object in storage: a document's content or a thumbnail we rendered.

    ``id`` is the object id bound into the sealed header; ``storage_key`` is random
    and says nothing. Content objects are unique per tenant by SHA-256 of the
    plaintext, which is how a second upload of the same file is recognised.
    """

    __tablename__ = "stored_objects"
    __table_args__ = (
        Index("uq_stored_objects_content_sha", "tenant_id", "sha256", unique=True,
              postgresql_where=text("purpose = 'content'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    purpose: Mapped[str] = mapped_column(String(12), nullable=False)  # content | thumbnail
    storage_key: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sealed_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)  # pdf, image, csv, xlsx, xml, zip, png
    mime: Mapped[str] = mapped_column(String(100), nullable=False)
    key_id: Mapped[str] = mapped_column(String(80), nullable=False)
    key_version: Mapped[int] = mapped_column(Integer, nullable=False)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # Thumbnail state of a content object: pending, ready, none (kind without preview), failed.
    preview: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    thumbnail_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("stored_objects.id", ondelete="SET NULL"))


class Document(TenantScoped, Timestamped, db.Model):
    """A document of the client's: a category, a month, tags, and one or more versions."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    category: Mapped[str] = mapped_column(String(20), nullable=False)
    period: Mapped[date | None] = mapped_column(Date)  # first day of the month it belongs to
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list, server_default="{}",
                                            nullable=False)
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    uploaded_by: Mapped[User | None] = relationship(lazy="joined")
    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.number.desc()", lazy="selectin")

    @property
    def latest(self) -> DocumentVersion:
        return self.versions[0]


class DocumentVersion(TenantScoped, Timestamped, db.Model):
    """One version of a document; older versions are kept when a new one arrives."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("documents.id", ondelete="CASCADE"), index=True, nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    object_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("stored_objects.id", ondelete="RESTRICT"), index=True, nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)  # sanitised, for display only
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    document: Mapped[Document] = relationship(back_populates="versions")
    object: Mapped[StoredObject] = relationship(lazy="joined")
    uploaded_by: Mapped[User | None] = relationship(lazy="joined")


class DocumentRequest(TenantScoped, Timestamped, db.Model):
    """Provider staff asking the client for documents: a list of items with due dates."""

    __tablename__ = "document_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(Sealed("document_requests.title"), nullable=False)
    note: Mapped[str | None] = mapped_column(Sealed("document_requests.note"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    created_by: Mapped[User | None] = relationship(lazy="joined")
    items: Mapped[list[RequestItem]] = relationship(
        back_populates="request", order_by="RequestItem.position", lazy="selectin")

    @property
    def outstanding(self) -> list[RequestItem]:
        return [item for item in self.items if item.fulfilled_at is None]


class RequestItem(TenantScoped, Timestamped, db.Model):
    """One document asked for; fulfilled by an upload against it."""

    __tablename__ = "document_request_items"
    __table_args__ = (Index("ix_request_items_open_due", "tenant_id", "due_date",
                            postgresql_where=text("fulfilled_at is null")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("document_requests.id", ondelete="CASCADE"), index=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str] = mapped_column(Sealed("document_request_items.description"), nullable=False)
    category: Mapped[str] = mapped_column(String(20), default="other", nullable=False)
    due_date: Mapped[date | None] = mapped_column(Date)
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("documents.id", ondelete="SET NULL"), index=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # Set when the reminder went out, so a scheduler that runs twice sends it once.
    reminded_before_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_after_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    request: Mapped[DocumentRequest] = relationship(back_populates="items")
    document: Mapped[Document | None] = relationship()

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
    and_,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import ColumnElement

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
    purpose: Mapped[str] = mapped_column(String(12), nullable=False)  # content | thumbnail | searchable | ...
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
    # A scanned PDF's searchable copy (intake adds the recognised text under the page images): like the
    # thumbnail, a rendition of this content that goes when the content goes.
    searchable_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("stored_objects.id", ondelete="SET NULL"))

    @property
    def renditions(self) -> list[uuid.UUID]:
        """The objects made from this one (thumbnail, searchable copy), deleted with it."""
        return [i for i in (self.thumbnail_id, self.searchable_id) if i is not None]


class Document(TenantScoped, Timestamped, db.Model):
    """A document of the client's: a category, a month, tags, and one or more versions.

    A removed document is in the trash (``trashed_at`` set): out of every list, download and
    preview, restorable by the provider, and purged with its versions and objects once the
    retention period is over (``services.purge_trash``). Accounting records are never deleted
    silently: who removed it, when and why are kept (the reason sealed with the tenant's key).
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_tenant_created", "tenant_id", "created_at", "id"),
        # The trash page and the purge job: what is in the trash, oldest first.
        Index("ix_documents_trashed", "tenant_id", "trashed_at", postgresql_where=text("trashed_at is not null")),
    )

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
    trashed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trashed_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    trash_reason: Mapped[str | None] = mapped_column(Sealed("documents.trash_reason"))

    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id], lazy="joined")
    trashed_by: Mapped[User | None] = relationship(foreign_keys=[trashed_by_id])
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
        return [item for item in self.items if item.is_open]

    @property
    def not_applicable(self) -> list[RequestItem]:
        return [item for item in self.items if item.not_applicable_at is not None]


class RequestItem(TenantScoped, Timestamped, db.Model):
    """One document asked for; fulfilled by an upload against it, or answered "not applicable".

    An item is open (outstanding, perhaps overdue, reminded) until a document fulfils it or the
    client says, with a reason, that they do not have it (``not_applicable_at``); the provider can
    reopen the latter.
    """

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
    # "We don't have this / not applicable": resolved without a document, with the client's reason.
    not_applicable_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_applicable_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    not_applicable_reason: Mapped[str | None] = mapped_column(Sealed("document_request_items.not_applicable_reason"))

    request: Mapped[DocumentRequest] = relationship(back_populates="items")
    document: Mapped[Document | None] = relationship()
    not_applicable_by: Mapped[User | None] = relationship(foreign_keys=[not_applicable_by_id])

    @hybrid_property
    def is_open(self) -> bool:
        """Still needed: neither fulfilled nor answered "not applicable" (outstanding, reminded, overdue)."""
        return self.fulfilled_at is None and self.not_applicable_at is None

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls) -> ColumnElement[bool]:
        return and_(cls.fulfilled_at.is_(None), cls.not_applicable_at.is_(None))

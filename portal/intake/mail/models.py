"""E-mail in: each tenant's intake address, its registered senders, and every message received.

All four tables are tenant-owned (``TenantScoped``, row-level security in revision 0020). What would say
who writes to the tenant, or what about, is sealed with the tenant's field key: the address's local part,
added senders' addresses, a message's sender, subject, note and attachment list. Lookups go through
hashes instead: the local part's SHA-256 (the address is a random secret, like an API token) and a
blind token of a sender's address (``tenants.fields.blind_tokens``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id, utcnow


class IntakeMailAddress(TenantScoped, Timestamped, db.Model):
    """A tenant's intake address. One is current (``retired_at`` unset); rotating retires it at once.

    ``local_hash`` is the SHA-256 of the local part (``<slug>.<random>``), what the receiver looks up;
    the local part itself is sealed, shown only to the tenant's people.
    """

    __tablename__ = "intake_mail_addresses"
    __table_args__ = (
        Index("uq_intake_mail_addresses_current", "tenant_id", unique=True,
              postgresql_where=sql_text("retired_at is null")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    local_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True, nullable=False)
    local_part: Mapped[str] = mapped_column(Sealed("intake_mail_addresses.local_part"), nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntakeMailSender(TenantScoped, Timestamped, db.Model):
    """An address the client admin registered besides the tenant's own people (a scanner, an accountant)."""

    __tablename__ = "intake_mail_senders"
    __table_args__ = (UniqueConstraint("tenant_id", "email_token"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Sealed("intake_mail_senders.email"), nullable=False)
    email_token: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)  # blind token of the address
    added_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))


class IntakeMail(TenantScoped, Timestamped, db.Model):
    """One message received for the tenant, kept as the note on the documents it brought.

    ``state``: receiving (its attachments are being stored; a delivery again goes on from there),
    stored, held (in the quarantine: ``reason`` says why, ``raw_object_id`` is the whole message, sealed in
    object storage like a document), released (stored after all, by ``decided_by``), dropped (the raw
    message deleted). ``message_key`` (SHA-256 of the Message-ID, or of the message without one) makes a
    message delivered twice count once. ``outcome`` is JSON: each attachment's name, size, status and message.
    """

    __tablename__ = "intake_mails"
    __table_args__ = (
        UniqueConstraint("tenant_id", "message_key"),
        Index("ix_intake_mails_held", "tenant_id", "received_at", postgresql_where=sql_text("state = 'held'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_key: Mapped[str] = mapped_column(String(64), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(20))  # unknown_sender, spf_fail, dkim_fail, dmarc_fail
    sender: Mapped[str] = mapped_column(Sealed("intake_mails.sender"), nullable=False)
    sender_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    subject: Mapped[str | None] = mapped_column(Sealed("intake_mails.subject"))
    body: Mapped[str | None] = mapped_column(Sealed("intake_mails.body"))
    outcome: Mapped[str | None] = mapped_column(Sealed("intake_mails.outcome"))
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    raw_object_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("stored_objects.id",
                                                                             ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntakeMailDocument(TenantScoped, db.Model):
    """A document a message brought (the message is the document's note)."""

    __tablename__ = "intake_mail_documents"

    mail_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("intake_mails.id", ondelete="CASCADE"),
                                               primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="CASCADE"),
                                                   primary_key=True, index=True)

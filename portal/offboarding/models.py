"""What a tenant takes with it and how it leaves: exports and the record of an offboarding."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id


class TenantExport(TenantScoped, Timestamped, db.Model):
    """Everything a client owns, in open formats, in one 7z archive encrypted with a passphrase.

    Built by a job; the passphrase is shown once (then forgotten); the archive is deleted
    after it is fetched once, or when it expires.
    """

    __tablename__ = "tenant_exports"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # queued → building → ready → fetched | expired; failed (with ``error``) when it could not be built.
    state: Mapped[str] = mapped_column(String(10), default="queued", nullable=False)
    files_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    files_total: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # A builder holds the export until then; a builder that died lets the next one take over after it.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    object_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("stored_objects.id", ondelete="SET NULL"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    passphrase: Mapped[str | None] = mapped_column(Sealed("tenant_exports.passphrase"))
    passphrase_shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def percent(self) -> int:
        if self.state in ("ready", "fetched"):
            return 100
        return round(self.files_done * 100 / self.files_total) if self.files_total else 0


class Offboarding(db.Model):
    """The provider's record of a tenant's offboarding: each step done, resumable after a crash.

    Provider-level (it outlives the tenant's rows). It keeps no content of the tenant: counts,
    key ids, who did it, and the certificate's digest and signature (the certificate itself goes
    to the client, and to a file when the provider asks for one).
    """

    __tablename__ = "offboardings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="RESTRICT"), unique=True,
                                                 nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(300), nullable=False)  # as the certificate names them
    step: Mapped[str] = mapped_column(String(20), nullable=False)  # the last step completed
    keys: Mapped[list[str]] = mapped_column(JSONB, default=list, nullable=False)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, nullable=False)
    # The client admins to send the certificate to, sealed with FIELD_KEY; wiped once it is sent.
    recipients_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The people whose membership ended here (ids only), to erase those left with no workspace.
    people: Mapped[list[str]] = mapped_column(JSONB, default=list, nullable=False)
    certificate_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate_signature: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

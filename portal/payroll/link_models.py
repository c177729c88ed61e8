"""Payslips e-mailed to employees as a link (migration 0028).

A link opens one payslip's PDF for 30 days to whoever presents its token (in the e-mail alone: only its SHA-256
is kept) and the employee's national id number as a second factor. Wrong numbers are counted; the fifth locks
the link. A link is sent once when its run is marked paid (``reason`` "paid", unique per payslip) and again only
by the provider's people (``reason`` "resent"), which revokes the one before: one live link per payslip.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.payroll.run_models import Payslip
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id

REASONS = ("paid", "resent")


class PayslipLink(TenantScoped, Timestamped, db.Model):
    """One e-mailed link to one payslip."""

    __tablename__ = "payroll_payslip_links"
    __table_args__ = (CheckConstraint("reason in ('paid', 'resent')", name="reason"),
                      CheckConstraint("failed_attempts >= 0", name="attempts"),
                      Index("uq_payroll_payslip_links_paid", "payslip_id", unique=True,
                            postgresql_where=text("reason = 'paid'")),
                      Index("uq_payroll_payslip_links_live", "payslip_id", unique=True,
                            postgresql_where=text("revoked_at is null")))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    payslip_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payroll_payslips.id", ondelete="CASCADE"),
                                                  nullable=False, index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True, nullable=False)  # SHA-256 of the token
    reason: Mapped[str] = mapped_column(String(8), nullable=False)  # paid | resent
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the first time it opened
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a newer link replaced it
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    payslip: Mapped[Payslip] = relationship()

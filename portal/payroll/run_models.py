"""A tenant's pay runs, their payslips and its payroll settings (migration 0027).

One run per tenant and month. Its figures are the payslips': each one's lines, the inputs they came from and the
employee's bank account as approved, kept as sealed JSON (``tenants.fields.Sealed``, the tenant's field key), so
that nothing in clear says what anyone earns. In clear stay only what the run's state machine and its lists need:
the month, the state, the pay date, the headcount, the version and the SHA-256 of the figures (what the client's
approval binds to, through the summary document in the vault).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id, utcnow

# draft → calculated → in_review (a second person) → awaiting_approval (the client) → approved → paid.
STATES = ("draft", "calculated", "in_review", "awaiting_approval", "approved", "paid")
PAYSLIP_LANGUAGES = ("both", "vi", "en", "employee")


class PayRun(TenantScoped, Timestamped, db.Model):
    """The tenant's payroll of one month (``month``: its first day), paid on ``pay_date``."""

    __tablename__ = "payroll_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "month"),
                      CheckConstraint("extract(day from month) = 1", name="first_of_month"),
                      CheckConstraint("state in ('draft', 'calculated', 'in_review', 'awaiting_approval', "
                                      "'approved', 'paid')", name="state"),
                      CheckConstraint("version >= 0 and headcount >= 0", name="counts"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    state: Mapped[str] = mapped_column(String(20), default="draft", nullable=False)
    pay_date: Mapped[date] = mapped_column(Date, nullable=False)
    jurisdiction: Mapped[str] = mapped_column(String(10), default="VN", nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)  # calculations that changed figures
    headcount: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # {"gross", "net", "pit", "employee_contributions", ...}: sums of the payslips, sealed JSON.
    totals_sealed: Mapped[str | None] = mapped_column("totals", Sealed("payroll_runs.totals"))
    figures_sha256: Mapped[str | None] = mapped_column(String(64))
    summary_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="SET NULL"))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id", ondelete="SET NULL"))
    calculated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    calculated_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    approved_sha256: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    payslips: Mapped[list[Payslip]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                   passive_deletes=True, order_by="Payslip.employee_code")

    @property
    def totals(self) -> dict[str, int]:
        return json.loads(self.totals_sealed) if self.totals_sealed else {}

    @totals.setter
    def totals(self, value: dict[str, int]) -> None:
        self.totals_sealed = json.dumps(value, sort_keys=True) if value else None

    @property
    def label(self) -> str:
        return self.month.strftime("%m/%Y")

    @property
    def key(self) -> str:
        """The month as the run's address: ``2026-11``."""
        return self.month.strftime("%Y-%m")


class Payslip(TenantScoped, Timestamped, db.Model):
    """One employee's month in a run: every line, the inputs and the bank account it was calculated with (sealed
    JSON, ``portal.payroll.runs`` writes it), and the PDF kept in the vault (``document_id``, rendered for the
    run's ``pdf_version``)."""

    __tablename__ = "payroll_payslips"
    __table_args__ = (UniqueConstraint("run_id", "employee_code"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payroll_runs.id", ondelete="CASCADE"),
                                              nullable=False, index=True)
    employee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("payroll_employees.id",
                                                                          ondelete="SET NULL"), index=True)
    employee_code: Mapped[str] = mapped_column(String(20), nullable=False)
    content_sealed: Mapped[str] = mapped_column("content", Sealed("payroll_payslips.content"), nullable=False)
    run_version: Mapped[int] = mapped_column(Integer, nullable=False)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    pdf_version: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[PayRun] = relationship(back_populates="payslips")

    @property
    def content(self) -> dict[str, Any]:
        return json.loads(self.content_sealed)

    @content.setter
    def content(self, value: dict[str, Any]) -> None:
        self.content_sealed = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class PayrollSettings(TenantScoped, db.Model):
    """How a tenant's pay runs come out: the bank's transfer file layout, the payslips' language, and whether
    payslips are e-mailed to employees (the client switches it on)."""

    __tablename__ = "payroll_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),
                      CheckConstraint("payslip_language in ('both', 'vi', 'en', 'employee')",
                                      name="payslip_language"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bank_layout: Mapped[str] = mapped_column(String(20), default="generic", nullable=False)  # bank_file.LAYOUTS
    payslip_language: Mapped[str] = mapped_column(String(10), default="both", nullable=False)
    email_payslips: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

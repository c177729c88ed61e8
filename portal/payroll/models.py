"""A tenant's employees, their dependants and their monthly attendance: what a pay run reads.

Payroll is the most sensitive data a client hands over. Everything that names or pays a person is sealed with the
tenant's field key (``tenants.fields.Sealed``: destroyed with the tenant's key on offboarding): names, national
ids, personal tax codes, bank accounts, e-mail addresses, and every salary figure (base salary, insurance salary,
allowances, bonuses, deductions). In clear stay only what a pay run must select or sort by and that names no
one: the employee's code, contract type and dates, region, residence, and the attendance counts (days, hours).
Money is exact: integers in đồng (the books' currency's minor unit), kept as sealed text and read back as int.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id

CONTRACTS = ("indefinite", "fixed", "seasonal", "probation")  # Labour Code 2019 Art. 20, and probation (Art. 24)
REGIONS = ("I", "II", "III", "IV")  # of the regional minimum wage, where the employer's unit operates


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


class Employee(TenantScoped, Timestamped, db.Model):
    """One employee of the tenant, on a labour contract."""

    __tablename__ = "payroll_employees"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),
                      CheckConstraint("contract_type in ('indefinite', 'fixed', 'seasonal', 'probation')",
                                      name="contract_type"),
                      CheckConstraint("region in ('I', 'II', 'III', 'IV')", name="region"),
                      CheckConstraint("contract_end is null or contract_end >= contract_start", name="contract_dates"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(20), nullable=False)  # the client's employee number
    full_name: Mapped[str] = mapped_column(Sealed("payroll.full_name"), nullable=False)
    email: Mapped[str | None] = mapped_column(Sealed("payroll.email"))
    national_id: Mapped[str | None] = mapped_column(Sealed("payroll.national_id"))  # CCCD, 12 digits
    tax_code: Mapped[str | None] = mapped_column(Sealed("payroll.tax_code"))  # personal MST
    bank_name: Mapped[str | None] = mapped_column(String(80))
    bank_account: Mapped[str | None] = mapped_column(Sealed("payroll.bank_account"))
    contract_type: Mapped[str] = mapped_column(String(10), nullable=False)
    contract_start: Mapped[date] = mapped_column(Date, nullable=False)
    contract_end: Mapped[date | None] = mapped_column(Date)
    probation_end: Mapped[date | None] = mapped_column(Date)
    region: Mapped[str] = mapped_column(String(3), default="I", nullable=False)
    resident: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    foreigner: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    pensioner: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # Salary figures, sealed: read them through the properties (ints).
    base_salary_sealed: Mapped[str] = mapped_column("base_salary", Sealed("payroll.base_salary"), nullable=False)
    insurance_salary_sealed: Mapped[str | None] = mapped_column("insurance_salary",
                                                                Sealed("payroll.insurance_salary"))
    # [{"name", "amount", "taxable", "insurance_bearing", "kind"}], sealed JSON.
    allowances_sealed: Mapped[str | None] = mapped_column("allowances", Sealed("payroll.allowances"))

    dependants: Mapped[list[Dependant]] = relationship(back_populates="employee", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="Dependant.from_month")

    @property
    def base_salary(self) -> int:
        return int(self.base_salary_sealed)

    @base_salary.setter
    def base_salary(self, value: int) -> None:
        self.base_salary_sealed = str(int(value))

    @property
    def insurance_salary(self) -> int | None:
        """The salary registered with the insurance agency; None: base salary plus insurance-bearing allowances."""
        return _int(self.insurance_salary_sealed)

    @insurance_salary.setter
    def insurance_salary(self, value: int | None) -> None:
        self.insurance_salary_sealed = None if value is None else str(int(value))

    @property
    def allowances(self) -> list[dict[str, Any]]:
        return json.loads(self.allowances_sealed) if self.allowances_sealed else []

    @allowances.setter
    def allowances(self, value: list[dict[str, Any]]) -> None:
        self.allowances_sealed = json.dumps(value, ensure_ascii=False) if value else None

    def dependants_in(self, month: date) -> int:
        """How many dependants are registered for tax in ``month`` (each from its first month to its last)."""
        first = month.replace(day=1)
        return sum(1 for d in self.dependants
                   if d.from_month <= first and (d.to_month is None or d.to_month >= first))


class Dependant(TenantScoped, db.Model):
    """A dependant registered for the family deduction, from ``from_month`` to ``to_month`` (first days)."""

    __tablename__ = "payroll_dependants"
    __table_args__ = (CheckConstraint("extract(day from from_month) = 1", name="from_first"),
                      CheckConstraint("to_month is null or (extract(day from to_month) = 1 and to_month >= from_month)",
                                      name="to_first"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    employee_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payroll_employees.id", ondelete="CASCADE"),
                                                   nullable=False, index=True)
    name: Mapped[str] = mapped_column(Sealed("payroll.dependant_name"), nullable=False)
    relation: Mapped[str | None] = mapped_column(String(20))  # child, spouse, parent, other
    from_month: Mapped[date] = mapped_column(Date, nullable=False)
    to_month: Mapped[date | None] = mapped_column(Date)

    employee: Mapped[Employee] = relationship(back_populates="dependants")


class Attendance(TenantScoped, Timestamped, db.Model):
    """An employee's month as worked: days against the month's working days, leave, overtime hours by kind
    (the rule set's kinds: weekday, weekend, holiday, night, ...), and that month's bonuses and deductions
    (sealed JSON lists of {"name", "amount"})."""

    __tablename__ = "payroll_attendance"
    __table_args__ = (UniqueConstraint("employee_id", "month"),
                      CheckConstraint("extract(day from month) = 1", name="first_of_month"),
                      CheckConstraint("working_days > 0 and days_worked >= 0 and paid_leave >= 0 "
                                      "and unpaid_leave >= 0", name="days"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    employee_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payroll_employees.id", ondelete="CASCADE"),
                                                   nullable=False, index=True)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    working_days: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)
    days_worked: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)
    paid_leave: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=0, nullable=False)
    unpaid_leave: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=0, nullable=False)
    overtime: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, nullable=False)  # kind -> hours ("12.5")
    bonuses_sealed: Mapped[str | None] = mapped_column("bonuses", Sealed("payroll.bonuses"))
    deductions_sealed: Mapped[str | None] = mapped_column("deductions", Sealed("payroll.deductions"))
    source: Mapped[str] = mapped_column(String(8), default="keyed", nullable=False)  # keyed | import
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))

    employee: Mapped[Employee] = relationship()

    @property
    def bonuses(self) -> list[dict[str, Any]]:
        return json.loads(self.bonuses_sealed) if self.bonuses_sealed else []

    @bonuses.setter
    def bonuses(self, value: list[dict[str, Any]]) -> None:
        self.bonuses_sealed = json.dumps(value, ensure_ascii=False) if value else None

    @property
    def deductions(self) -> list[dict[str, Any]]:
        return json.loads(self.deductions_sealed) if self.deductions_sealed else []

    @deductions.setter
    def deductions(self, value: list[dict[str, Any]]) -> None:
        self.deductions_sealed = json.dumps(value, ensure_ascii=False) if value else None


class PayrollImport(TenantScoped, Timestamped, db.Model):
    """A file of employees or of a month's attendance between its preview and its confirmation
    (``portal.payroll.imports``). Only a file without errors is kept, sealed with the tenant's field key (its
    bytes as base64 text, its name too), bound to its SHA-256: the confirmation names the digest it saw, and a
    different file is refused. Once applied the content is dropped; the row stays as the import's record."""

    __tablename__ = "payroll_imports"
    __table_args__ = (CheckConstraint("kind in ('employees', 'attendance')", name="kind"),
                      CheckConstraint("kind = 'employees' or month is not null", name="month"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)  # employees | attendance
    month: Mapped[date | None] = mapped_column(Date)  # attendance: the month's first day
    filename: Mapped[str] = mapped_column(Sealed("payroll.import_filename"), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content: Mapped[str | None] = mapped_column(Sealed("payroll.import_file"))  # base64; None once applied
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

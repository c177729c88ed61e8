"""Bank statements read from documents, their transactions, and the CSV mappings staff saved.

Money is exact: signed integers in the currency's minor unit (VND has none, USD has cents) beside the
ISO code, as everywhere in the portal, so that the ledger (issue 14) reconciles by plain integer sums.
Who and what (account numbers, counterparties, references) is sealed with the tenant's field key; what
is in clear (dates, amounts, currencies, the bank's name, the account's last digits) is said in
docs/security.md. The statement's account is found again by a keyed hash (``account_key``), never by
its number, so the database can link a statement to the one before without ever holding the number.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id, utcnow


class BankStatement(TenantScoped, Timestamped, db.Model):
    """One statement read from a document version (a file may hold several: ``seq``).

    ``continuity``: ``first`` (no earlier statement of the account), ``ok`` (its opening balance is the
    closing balance of ``follows``, the account's statement before it by period end), ``gap`` (it is
    not: a statement is missing, or a balance is wrong), ``unknown`` (the file gives no balances).
    """

    __tablename__ = "bank_statements"
    __table_args__ = (
        UniqueConstraint("document_id", "version", "seq"),
        Index("ix_bank_statements_account", "tenant_id", "account_key", "currency", "period_end"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="CASCADE"),
                                                   index=True, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)  # its place in the file, from 1
    format: Mapped[str] = mapped_column(String(6), nullable=False)  # csv, ofx, mt940
    bank: Mapped[str | None] = mapped_column(String(80))
    account: Mapped[str | None] = mapped_column(Sealed("bank.account"))
    account_mask: Mapped[str | None] = mapped_column(String(16))  # "•••• 3456": enough to tell accounts apart
    account_key: Mapped[bytes | None] = mapped_column(LargeBinary)  # keyed hash of bank and account number
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    opening_balance: Mapped[int | None] = mapped_column(BigInteger)
    closing_balance: Mapped[int | None] = mapped_column(BigInteger)
    opening_computed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    follows_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("bank_statements.id", ondelete="SET NULL"))
    continuity: Mapped[str] = mapped_column(String(7), nullable=False)  # first, ok, gap, unknown
    lines: Mapped[int] = mapped_column(Integer, nullable=False)

    follows: Mapped[BankStatement | None] = relationship(remote_side=[id])


class BankTransaction(TenantScoped, db.Model):
    """One line of a statement: ``amount`` signed (money in is positive), in ``currency``'s minor unit."""

    __tablename__ = "bank_transactions"
    __table_args__ = (UniqueConstraint("statement_id", "line_no"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    statement_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("bank_statements.id", ondelete="CASCADE"),
                                                    nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    booked_on: Mapped[date] = mapped_column(Date, nullable=False)
    value_on: Mapped[date | None] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    counterparty_name: Mapped[str | None] = mapped_column(Sealed("bank.counterparty_name"))
    counterparty_account: Mapped[str | None] = mapped_column(Sealed("bank.counterparty_account"))
    reference: Mapped[str | None] = mapped_column(Sealed("bank.reference"))
    bank_ref: Mapped[str | None] = mapped_column(Sealed("bank.bank_ref"))
    balance: Mapped[int | None] = mapped_column(BigInteger)


class BankCsvMapping(TenantScoped, Timestamped, db.Model):
    """Which column of a bank's CSV export holds what, saved by staff for the tenant.

    Found by ``fingerprint`` (SHA-256 of the header's column names): one layout, one mapping. ``mapping``
    is ``parse_csv.Mapping.as_json`` (column numbers, date format, decimal separator, currency): no
    figures and no names; the account the statements are of, when the file does not say, is sealed.
    """

    __tablename__ = "bank_csv_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "fingerprint"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bank: Mapped[str] = mapped_column(String(80), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    header: Mapped[list[str]] = mapped_column(JSONB, nullable=False)  # the column names, to show the mapping
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    account: Mapped[str | None] = mapped_column(Sealed("bank.mapping_account"))
    saved_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

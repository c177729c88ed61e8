"""A tenant's books: the chart of accounts, months, journal entries and their lines.

Money is exact: integers in the tenant's currency's minor unit (VND has none), as everywhere in the
portal. A line in another currency keeps its original amount (in that currency's minor unit) and the
rate used, beside the amount in the books' currency that the books add up.

The database holds the rules no code path may break, whatever the service does (migration 0021):
a posted entry's debits equal its credits and it has at least two lines (a deferred constraint trigger,
checked at commit), a posted entry and its lines never change again except to be marked reversed, and
an entry is never posted into a closed month.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.fields import Sealed
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, new_id, utcnow

TYPES = ("asset", "liability", "equity", "revenue", "expense", "closing")
PERIOD_STATES = ("open", "in_review", "closed")


class Book(TenantScoped, Timestamped, db.Model):
    """Bookkeeping switched on for a tenant: its chart's regime, currency and first month of the fiscal year."""

    __tablename__ = "ledger_books"
    __table_args__ = (UniqueConstraint("tenant_id"),
                      CheckConstraint("vat_period in ('monthly', 'quarterly')", name="vat_period"),
                      CheckConstraint("pit_period in ('monthly', 'quarterly')", name="pit_period"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    chart: Mapped[str] = mapped_column(String(20), nullable=False)  # vn_tt133, vn_tt99, generic
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    fiscal_year_start: Mapped[int] = mapped_column(Integer, default=1, nullable=False)  # a month, 1..12
    # The client's own tax code: an invoice it issued is a sale, any other a purchase.
    tax_code: Mapped[str | None] = mapped_column(String(14))
    started_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # The filing calendar's settings (portal.ledger.filing_services, migration 0025): how often VAT is filed,
    # whether the provider runs payroll and how often the PIT withheld is filed, and the first day whose deadlines
    # count (None: the day the books started).
    vat_period: Mapped[str] = mapped_column(String(9), default="monthly", server_default="monthly", nullable=False)
    payroll: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false", nullable=False)
    pit_period: Mapped[str] = mapped_column(String(9), default="monthly", server_default="monthly", nullable=False)
    filing_since: Mapped[date | None] = mapped_column(Date)


class Account(TenantScoped, Timestamped, db.Model):
    """An account of the tenant's chart: from its template, or a sub-account the provider added.

    An account with sub-accounts is a heading: lines post to the leaves. Names are the chart's (in clear,
    like the template they come from); ``name_vi`` is the legal name, ``name_en`` a translation.
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(20), nullable=False)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_accounts.id", ondelete="RESTRICT"))
    name_vi: Mapped[str] = mapped_column(String(200), nullable=False)
    name_en: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str] = mapped_column(String(10), nullable=False)  # TYPES
    normal: Mapped[str] = mapped_column(String(6), nullable=False)  # debit | credit
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    from_template: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    def name(self, locale: str) -> str:
        return self.name_vi if locale.startswith("vi") else self.name_en


class Period(TenantScoped, Timestamped, db.Model):
    """A month of the tenant's books: open (entries post), in review (closing), closed (nothing posts)."""

    __tablename__ = "ledger_periods"
    __table_args__ = (UniqueConstraint("tenant_id", "month"),
                      CheckConstraint("state in ('open', 'in_review', 'closed')", name="state"),
                      CheckConstraint("extract(day from month) = 1", name="first_of_month"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    month: Mapped[date] = mapped_column(Date, nullable=False)  # its first day
    state: Mapped[str] = mapped_column(String(10), default="open", nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # The hash of the month's trial balance when it was closed (what the client approved binds to it).
    closed_hash: Mapped[str | None] = mapped_column(String(64))
    reopened_reason: Mapped[str | None] = mapped_column(Sealed("ledger_periods.reopened_reason"))
    # The closing task (a second person's review, then the client's approval of the month's report).
    task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tasks.id", ondelete="SET NULL"))
    report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))


class Entry(TenantScoped, Timestamped, db.Model):
    """A journal entry: a draft (edited freely) or posted (never changed again; corrected by a reversal).

    ``number`` is given at posting, one sequence per tenant, so posted entries are numbered without gaps.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),
                      CheckConstraint("state in ('draft', 'posted')", name="state"),
                      CheckConstraint("(state = 'posted') = (number is not null and posted_at is not null)",
                                      name="posted_numbered"),
                      Index("ix_ledger_entries_date", "tenant_id", "state", "entry_date"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[int | None] = mapped_column(Integer)
    entry_date: Mapped[date] = mapped_column(Date, nullable=False)
    state: Mapped[str] = mapped_column(String(6), default="draft", nullable=False)
    memo: Mapped[str | None] = mapped_column(Sealed("ledger_entries.memo"))
    source: Mapped[str] = mapped_column(String(12), default="manual", nullable=False)  # manual, invoice, bank, reversal
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"),
                                                          index=True)
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id", ondelete="RESTRICT"),
                                                          unique=True)
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ledger_entries.id", ondelete="RESTRICT", use_alter=True), unique=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    posted_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    # An invoice's due date (its receivable or payable is overdue after it); none: due on its date.
    due_date: Mapped[date | None] = mapped_column(Date)

    lines: Mapped[list[Line]] = relationship(back_populates="entry", order_by="Line.line_no",
                                             cascade="all, delete-orphan", passive_deletes=True)

    @property
    def total(self) -> int:
        return sum(line.debit for line in self.lines)


class Line(TenantScoped, db.Model):
    """One line of an entry: a debit or a credit (never both, never zero) to a postable account."""

    __tablename__ = "ledger_lines"
    __table_args__ = (UniqueConstraint("entry_id", "line_no"),
                      CheckConstraint("debit >= 0 and credit >= 0 and (debit = 0) <> (credit = 0)",
                                      name="one_side"),
                      CheckConstraint("(currency is null) = (original_amount is null) and "
                                      "(currency is null) = (rate is null)", name="foreign_whole"),
                      Index("ix_ledger_lines_account", "tenant_id", "account_id"),
                      Index("ix_ledger_lines_party", "tenant_id", "party_key",
                            postgresql_where=text("party_key is not null")))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_entries.id", ondelete="CASCADE"),
                                                nullable=False, index=True)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_accounts.id", ondelete="RESTRICT"),
                                                  nullable=False)
    debit: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    credit: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    description: Mapped[str | None] = mapped_column(Sealed("ledger_lines.description"))
    counterparty: Mapped[str | None] = mapped_column(Sealed("ledger_lines.counterparty"))
    tax_code: Mapped[str | None] = mapped_column(String(10))  # a VAT rate: "10", "8", "5", "0", "KCT"
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    # A line in a foreign currency: its amount in that currency's minor unit and the rate used.
    currency: Mapped[str | None] = mapped_column(String(3))
    original_amount: Mapped[int | None] = mapped_column(BigInteger)
    rate: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    # A keyed hash of the counterparty (``open_items.party_key``): ageing groups by it, never by a name.
    party_key: Mapped[bytes | None] = mapped_column(LargeBinary)

    entry: Mapped[Entry] = relationship(back_populates="lines")
    account: Mapped[Account] = relationship()


class Settlement(TenantScoped, db.Model):
    """``amount`` of an open item (an invoice's receivable or payable line) settled by a payment's line on the
    same account, on the other side. Never changed: a reversed payment's settlements stop counting."""

    __tablename__ = "ledger_settlements"
    __table_args__ = (UniqueConstraint("item_line_id", "settling_line_id"),
                      CheckConstraint("amount > 0", name="positive"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    item_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_lines.id", ondelete="RESTRICT"),
                                                    nullable=False, index=True)
    settling_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_lines.id", ondelete="RESTRICT"),
                                                        nullable=False, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


# --- bank reconciliation (``portal.ledger.reconcile``, migration 0023) --------------------------------------

class BankLink(TenantScoped, Timestamped, db.Model):
    """A bank account seen in statements (its keyed hash and currency) linked to the ledger account that keeps
    it (a leaf under the chart's bank account), once per tenant: one bank account, one ledger account."""

    __tablename__ = "ledger_bank_links"
    __table_args__ = (UniqueConstraint("tenant_id", "account_key", "currency",
                                       name="uq_ledger_bank_links_bank_account"),
                      UniqueConstraint("tenant_id", "account_id", name="uq_ledger_bank_links_ledger_account"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # ``BankStatement.account_key``
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    bank: Mapped[str | None] = mapped_column(String(80))
    account_mask: Mapped[str | None] = mapped_column(String(16))
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_accounts.id", ondelete="CASCADE"),
                                                  nullable=False)
    linked_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    account: Mapped[Account] = relationship()


class BankRule(TenantScoped, Timestamped, db.Model):
    """A rule staff saved: a bank transaction whose counterparty contains ``counterparty`` and whose reference
    contains ``reference`` (either may be empty, not both), money in or out, is posted to ``account_id`` with
    ``description``. The patterns and the description are sealed: they may hold names."""

    __tablename__ = "ledger_bank_rules"
    __table_args__ = (CheckConstraint("direction in ('in', 'out')", name="direction"),
                      CheckConstraint("counterparty is not null or reference is not null", name="pattern"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    counterparty: Mapped[str | None] = mapped_column(Sealed("ledger_bank_rules.counterparty"))
    reference: Mapped[str | None] = mapped_column(Sealed("ledger_bank_rules.reference"))
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_accounts.id", ondelete="CASCADE"),
                                                  nullable=False)
    description: Mapped[str] = mapped_column(Sealed("ledger_bank_rules.description"), nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    account: Mapped[Account] = relationship()


class BankMatch(TenantScoped, db.Model):
    """A bank transaction reconciled: with the payment entry posted for the invoices it settles (``items``),
    with an entry already in the books (``entry``), by a saved rule (``rule``) or to an account by hand
    (``account``). At most one active match per transaction and per entry (partial unique indexes: a double
    click posts once). Undone, it stays (``undone``), its payment entry reversed. A transaction read again
    from its file is a new row: its old match goes with the old row (the entry stays in the books and is
    offered as the new row's match)."""

    __tablename__ = "ledger_bank_matches"
    __table_args__ = (CheckConstraint("kind in ('items', 'entry', 'rule', 'account')", name="kind"),
                      CheckConstraint("state in ('active', 'undone')", name="state"),
                      Index("uq_ledger_bank_matches_active_transaction", "transaction_id", unique=True,
                            postgresql_where=text("state = 'active'")),
                      Index("uq_ledger_bank_matches_active_entry", "entry_id", unique=True,
                            postgresql_where=text("state = 'active'")))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("bank_transactions.id", ondelete="CASCADE"),
                                                      nullable=False, index=True)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_bank_links.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(7), nullable=False)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ledger_entries.id", ondelete="RESTRICT"),
                                                nullable=False, index=True)
    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_bank_rules.id", ondelete="SET NULL"))
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the transaction's, signed
    state: Mapped[str] = mapped_column(String(6), default="active", nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    reversal_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("ledger_entries.id", ondelete="RESTRICT"))

    entry: Mapped[Entry] = relationship(foreign_keys=[entry_id])
    reversal: Mapped[Entry | None] = relationship(foreign_keys=[reversal_id])

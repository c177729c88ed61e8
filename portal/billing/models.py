"""Plans (provider-level), each tenant's plan over time, statements with their frozen lines, and payments.

Money is an integer in the currency's minor unit (VND has none: 1 is one đồng; USD has cents), never a
float. Quantities are exact decimals. Everything a statement says is frozen into its own rows when it is
issued, so a later change of plan or price never rewrites it; a correction is a new version.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from tenants.isolation import TenantScoped
from tenants.models import Timestamped, User, new_id, utcnow

CURRENCIES = ("VND", "USD")


class Plan(Timestamped, db.Model):
    """What the provider charges: a monthly fee and priced meters, in one currency."""

    __tablename__ = "plans"
    __table_args__ = (CheckConstraint("currency in ('VND', 'USD')", name="currency"),
                      CheckConstraint("monthly_fee >= 0", name="fee_not_negative"),
                      CheckConstraint("payment_days between 0 and 120", name="payment_days"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    monthly_fee: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units
    payment_days: Mapped[int] = mapped_column(Integer, default=15, nullable=False)  # due this many days after issue
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    prices: Mapped[list[PlanPrice]] = relationship(back_populates="plan", order_by="PlanPrice.meter",
                                                   cascade="all, delete-orphan")
    tax_rates: Mapped[list[PlanTaxRate]] = relationship(order_by="PlanTaxRate.effective_from",
                                                        cascade="all, delete-orphan")


class PlanPrice(db.Model):
    """One meter of a plan: how much is included each month and the price of each unit above it."""

    __tablename__ = "plan_prices"
    __table_args__ = (UniqueConstraint("plan_id", "meter"),
                      CheckConstraint("included >= 0 and unit_price >= 0", name="not_negative"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False)
    meter: Mapped[str] = mapped_column(String(60), nullable=False)  # portal.billing.meters
    included: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=0, nullable=False)
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)  # minor units per unit

    plan: Mapped[Plan] = relationship(back_populates="prices")


class PlanTaxRate(db.Model):
    """A plan's tax rate (basis points: 1000 is 10 %) from a day on; the latest one in force applies."""

    __tablename__ = "plan_tax_rates"
    __table_args__ = (UniqueConstraint("plan_id", "effective_from"),
                      CheckConstraint("rate_bp between 0 and 10000", name="rate"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False)
    rate_bp: Mapped[int] = mapped_column(Integer, nullable=False)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)


class TenantPlan(TenantScoped, Timestamped, db.Model):
    """The plan a tenant is on from a day on (the latest start on or before a day is in force then).

    ``pro_rata``: the month it starts in is split by days between the old plan and this one; otherwise a
    change starts on the first of a month. ``discount_bp`` is a negotiated discount on the subtotal.
    """

    __tablename__ = "tenant_plans"
    __table_args__ = (UniqueConstraint("tenant_id", "starts_on"),
                      CheckConstraint("discount_bp between 0 and 10000", name="discount"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("plans.id"), nullable=False)
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    pro_rata: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    discount_bp: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))

    plan: Mapped[Plan] = relationship(lazy="joined")


class Statement(TenantScoped, db.Model):
    """One version of a tenant's statement for a month. Issued versions never change but for their payment
    and approval state; a correction supersedes one with a new version and a reason."""

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("tenant_id", "month", "version"),
        # At most one version of a month in force: the run's idempotency rests on it too.
        Index("uq_statements_current", "tenant_id", "month", unique=True,
              postgresql_where=text("superseded_at is null")),
        Index("ix_statements_month", "month", "tenant_id"),
        # A Stripe invoice belongs to one statement version (webhooks find the statement by it).
        Index("uq_statements_stripe_invoice_id", "stripe_invoice_id", unique=True,
              postgresql_where=text("stripe_invoice_id is not null")),
        Index("ix_statements_stripe_payment_intent_id", "stripe_payment_intent_id",
              postgresql_where=text("stripe_payment_intent_id is not null")),
        CheckConstraint("payment_state in ('unpaid', 'partly_paid', 'paid', 'failed', 'refunded', 'disputed')",
                        name="payment_state"),
        CheckConstraint("approval in ('pending', 'approved', 'disputed')", name="approval"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    month: Mapped[date] = mapped_column(Date, nullable=False)  # its first day
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    reference: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)  # on transfers and the QR
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    locale: Mapped[str] = mapped_column(String(5), nullable=False)
    plan_name: Mapped[str] = mapped_column(String(100), nullable=False)
    subtotal: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    tax_rate_bp: Mapped[int] = mapped_column(Integer, nullable=False)
    tax: Mapped[int] = mapped_column(BigInteger, nullable=False)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    paid: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    payment_state: Mapped[str] = mapped_column(String(12), default="unpaid", nullable=False)
    approval: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))  # why this version replaces the one before
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The other sections as issued (what the work, the waiting and the targets sections showed).
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, nullable=False)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("documents.id", ondelete="SET NULL"))
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(100))
    # Stripe (portal.billing.stripe_billing): the invoice's hosted page, the payment intent that paid it (refunds
    # and disputes name it), and the Stripe time of the last webhook event applied (an older one never undoes it).
    stripe_invoice_url: Mapped[str | None] = mapped_column(String(500))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(100))
    stripe_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list[StatementLine]] = relationship(order_by="StatementLine.position",
                                                      cascade="all, delete-orphan", back_populates="statement")

    @property
    def due(self) -> int:
        """What is still to pay (never below zero)."""
        return max(0, self.total - self.paid)


class StatementLine(TenantScoped, db.Model):
    """A priced line of a statement as issued: the fee (or its pro-rata part) or one meter's usage."""

    __tablename__ = "statement_lines"
    __table_args__ = (UniqueConstraint("statement_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    statement_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("statements.id", ondelete="CASCADE"),
                                                    index=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # fee | usage
    meter: Mapped[str | None] = mapped_column(String(60))
    label: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)  # message id and params, translated when shown
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    included: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=0, nullable=False)
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)

    statement: Mapped[Statement] = relationship(back_populates="lines")


class Payment(TenantScoped, db.Model):
    """Money received for a statement (a transfer staff recorded, or a Stripe payment)."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount"),
                      UniqueConstraint("tenant_id", "method", "reference"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    statement_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("statements.id"), index=True, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)  # negative for a refund
    paid_on: Mapped[date] = mapped_column(Date, nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)  # transfer | stripe
    reference: Mapped[str] = mapped_column(String(100), nullable=False)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    recorded_by: Mapped[User | None] = relationship(lazy="joined")


class StatementRun(TenantScoped, db.Model):
    """The run report: for each month and tenant, whether its statement was issued or why it failed."""

    __tablename__ = "statement_runs"
    __table_args__ = (UniqueConstraint("month", "tenant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    month: Mapped[date] = mapped_column(Date, nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)  # issued | skipped | failed
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class BillingAccount(TenantScoped, Timestamped, db.Model):
    """A tenant's billing settings (one per tenant): its Stripe customer, suspension for non-payment, dunning.

    ``suspend_on_nonpayment`` is the provider's decision per tenant (off by default): only then does the
    last dunning stage suspend the tenant's uploads. ``dunning_stage`` is how many reminders of the
    current run of overdue statements went out (0 when nothing is overdue); ``last_dunning_on`` the day
    of the last one.
    """

    __tablename__ = "billing_accounts"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100), index=True)
    suspend_on_nonpayment: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"),
                                                        nullable=False)
    dunning_stage: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"), nullable=False)
    last_dunning_on: Mapped[date | None] = mapped_column(Date)


class StripeEvent(db.Model):
    """A Stripe webhook event we received (provider-level): its id is unique, so each event applies once.

    ``created`` is Stripe's time of the event (what orders events of one object, not their arrival);
    ``outcome`` says what came of it: applied, stale (older than what was applied), unmatched (no
    statement of ours), ignored (a type we do not act on).
    """

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's evt_...
    type: Mapped[str] = mapped_column(String(80), nullable=False)
    object_id: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(30), nullable=False)

"""Stripe billing: a billing account per tenant, processed Stripe events, a statement's Stripe state, suspension

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 12:00:00

billing_accounts: one per tenant (its Stripe customer, whether the provider suspends its uploads for
non-payment, how far dunning went). Tenant-owned.

stripe_events: every webhook event received, by Stripe's event id (unique: a duplicate delivery is
recognised and changes nothing), with when it was applied and what came of it. Provider-level, like
the platform audit log: an event is matched to its tenant only after it is verified and recorded.

statements: the hosted URL of the statement's Stripe invoice, the payment intent that paid it (refunds
and disputes name it) and the Stripe time of the last event applied (older ones never undo newer).

tenants.uploads_suspended_reason: set by billing, read by the vault (which never imports billing).
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import grant_app, protect_tenant_table

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "billing_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=100), nullable=True),
        sa.Column("suspend_on_nonpayment", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("dunning_stage", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_dunning_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_billing_accounts_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_billing_accounts_tenant_id")),
    )
    op.create_index(op.f("ix_billing_accounts_tenant_id"), "billing_accounts", ["tenant_id"])
    op.create_index("ix_billing_accounts_stripe_customer_id", "billing_accounts", ["stripe_customer_id"])
    protect_tenant_table("billing_accounts")
    grant_app("billing_accounts", "select, insert, update")

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=80), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    grant_app("stripe_events", "select, insert, update")

    op.add_column("statements", sa.Column("stripe_invoice_url", sa.String(length=500), nullable=True))
    op.add_column("statements", sa.Column("stripe_payment_intent_id", sa.String(length=100), nullable=True))
    op.add_column("statements", sa.Column("stripe_event_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_statements_stripe_invoice_id", "statements", ["stripe_invoice_id"], unique=True,
                    postgresql_where=sa.text("stripe_invoice_id is not null"))
    op.create_index("ix_statements_stripe_payment_intent_id", "statements", ["stripe_payment_intent_id"],
                    postgresql_where=sa.text("stripe_payment_intent_id is not null"))

    op.add_column("tenants", sa.Column("uploads_suspended_reason", sa.String(length=40), nullable=True))


def downgrade():
    op.drop_column("tenants", "uploads_suspended_reason")
    op.drop_index("ix_statements_stripe_payment_intent_id", table_name="statements")
    op.drop_index("uq_statements_stripe_invoice_id", table_name="statements")
    for column in ("stripe_event_at", "stripe_payment_intent_id", "stripe_invoice_url"):
        op.drop_column("statements", column)
    op.drop_table("stripe_events")
    op.drop_table("billing_accounts")

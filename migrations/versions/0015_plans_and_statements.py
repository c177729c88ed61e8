"""plans and usage pricing; tenants' plans; monthly statements, their lines, payments and the run report

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00

plans, plan_prices, plan_tax_rates: what the provider charges (provider-level, like service_lines).
Money is bigint in the currency's minor unit; quantities numeric(14, 2).

tenant_plans: which plan a tenant is on from which day. Tenant-owned.

statements, statement_lines: a month's statement as issued, one row per version; at most one version
of a month in force (the partial unique index), which the run's idempotency rests on. Tenant-owned.

payments: money received for a statement. statement_runs: the run report per month and tenant.
Tenant-owned. The services never delete a statement, its lines or a payment (a correction is a new
version, a refund a negative payment); only offboarding deletes them with the rest of the tenant.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def _tenant(table: str) -> list:
    return [sa.Column("tenant_id", sa.Uuid(), nullable=False),
            sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"),
                                    ondelete="RESTRICT")]


def upgrade():
    op.create_table(
        "plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_fee", sa.BigInteger(), nullable=False),
        sa.Column("payment_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("currency in ('VND', 'USD')", name=op.f("ck_plans_currency")),
        sa.CheckConstraint("monthly_fee >= 0", name=op.f("ck_plans_fee_not_negative")),
        sa.CheckConstraint("payment_days between 0 and 120", name=op.f("ck_plans_payment_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("key", name=op.f("uq_plans_key")),
    )
    grant_app("plans", "select, insert, update")
    op.create_table(
        "plan_prices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("meter", sa.String(length=60), nullable=False),
        sa.Column("included", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("included >= 0 and unit_price >= 0", name=op.f("ck_plan_prices_not_negative")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_prices_plan_id_plans"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_prices")),
        sa.UniqueConstraint("plan_id", "meter", name=op.f("uq_plan_prices_plan_id")),
    )
    grant_app("plan_prices")
    op.create_table(
        "plan_tax_rates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.CheckConstraint("rate_bp between 0 and 10000", name=op.f("ck_plan_tax_rates_rate")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_tax_rates_plan_id_plans"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_tax_rates")),
        sa.UniqueConstraint("plan_id", "effective_from", name=op.f("uq_plan_tax_rates_plan_id")),
    )
    grant_app("plan_tax_rates", "select, insert, update")

    op.create_table(
        "tenant_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("pro_rata", sa.Boolean(), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_tenant("tenant_plans"),
        sa.CheckConstraint("discount_bp between 0 and 10000", name=op.f("ck_tenant_plans_discount")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_tenant_plans_plan_id_plans")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_tenant_plans_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_plans")),
        sa.UniqueConstraint("tenant_id", "starts_on", name=op.f("uq_tenant_plans_tenant_id")),
    )
    op.create_index(op.f("ix_tenant_plans_tenant_id"), "tenant_plans", ["tenant_id"])
    protect_tenant_table("tenant_plans")
    grant_app("tenant_plans")

    op.create_table(
        "statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("plan_name", sa.String(length=100), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate_bp", sa.Integer(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("payment_state", sa.String(length=12), nullable=False),
        sa.Column("approval", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sections", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("stripe_invoice_id", sa.String(length=100), nullable=True),
        *_tenant("statements"),
        sa.CheckConstraint("payment_state in ('unpaid', 'partly_paid', 'paid', 'failed', 'refunded', 'disputed')",
                           name=op.f("ck_statements_payment_state")),
        sa.CheckConstraint("approval in ('pending', 'approved', 'disputed')", name=op.f("ck_statements_approval")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name=op.f("fk_statements_document_id_documents"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("reference", name=op.f("uq_statements_reference")),
        sa.UniqueConstraint("tenant_id", "month", "version", name=op.f("uq_statements_tenant_id")),
    )
    op.create_index(op.f("ix_statements_tenant_id"), "statements", ["tenant_id"])
    op.create_index("ix_statements_month", "statements", ["month", "tenant_id"])
    op.create_index("uq_statements_current", "statements", ["tenant_id", "month"], unique=True,
                    postgresql_where=sa.text("superseded_at is null"))
    protect_tenant_table("statements")
    grant_app("statements")

    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("meter", sa.String(length=60), nullable=True),
        sa.Column("label", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("included", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        *_tenant("statement_lines"),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"],
                                name=op.f("fk_statement_lines_statement_id_statements"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_lines")),
        sa.UniqueConstraint("statement_id", "position", name=op.f("uq_statement_lines_statement_id")),
    )
    op.create_index(op.f("ix_statement_lines_tenant_id"), "statement_lines", ["tenant_id"])
    op.create_index(op.f("ix_statement_lines_statement_id"), "statement_lines", ["statement_id"])
    protect_tenant_table("statement_lines")
    grant_app("statement_lines")

    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        *_tenant("payments"),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_payments_amount")),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"], name=op.f("fk_payments_statement_id_statements")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["users.id"], name=op.f("fk_payments_recorded_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("tenant_id", "method", "reference", name=op.f("uq_payments_tenant_id")),
    )
    op.create_index(op.f("ix_payments_tenant_id"), "payments", ["tenant_id"])
    op.create_index(op.f("ix_payments_statement_id"), "payments", ["statement_id"])
    protect_tenant_table("payments")
    grant_app("payments")

    op.create_table(
        "statement_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *_tenant("statement_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_runs")),
        sa.UniqueConstraint("month", "tenant_id", name=op.f("uq_statement_runs_month")),
    )
    op.create_index(op.f("ix_statement_runs_tenant_id"), "statement_runs", ["tenant_id"])
    protect_tenant_table("statement_runs")
    grant_app("statement_runs")


def downgrade():
    for table in ("statement_runs", "payments", "statement_lines", "statements", "tenant_plans", "plan_tax_rates",
                  "plan_prices", "plans"):
        op.drop_table(table)

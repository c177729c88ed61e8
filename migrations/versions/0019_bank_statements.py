"""bank statements and transactions read from CSV, OFX and MT940 files; CSV column mappings per bank and tenant

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10 10:00:00

bank_statements: one per statement in a document version (a file may hold several: seq), with its
bank, its account (sealed; the last digits in clear; a keyed hash to find the account's other
statements), currency, period, opening and closing balances in the currency's minor unit, and whether
it follows the account's previous statement (follows_id, continuity). bank_transactions: its lines,
signed amounts in the minor unit; counterparty, account, reference and the bank's id sealed.
bank_csv_mappings: which column of a bank's CSV holds what, per tenant and header (fingerprint).
All tenant-owned; statements and transactions are deleted with their document.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def _tenant(table: str) -> list:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"),
                                ondelete="RESTRICT"),
    ]


def upgrade():
    op.create_table(
        "bank_statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=6), nullable=False),
        sa.Column("bank", sa.String(length=80), nullable=True),
        sa.Column("account", sa.LargeBinary(), nullable=True),
        sa.Column("account_mask", sa.String(length=16), nullable=True),
        sa.Column("account_key", sa.LargeBinary(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("opening_balance", sa.BigInteger(), nullable=True),
        sa.Column("closing_balance", sa.BigInteger(), nullable=True),
        sa.Column("opening_computed", sa.Boolean(), nullable=False),
        sa.Column("follows_id", sa.Uuid(), nullable=True),
        sa.Column("continuity", sa.String(length=7), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_tenant("bank_statements"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name=op.f("fk_bank_statements_document_id_documents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["follows_id"], ["bank_statements.id"],
                                name=op.f("fk_bank_statements_follows_id_bank_statements"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statements")),
        sa.UniqueConstraint("document_id", "version", "seq", name=op.f("uq_bank_statements_document_id")),
    )
    op.create_index(op.f("ix_bank_statements_tenant_id"), "bank_statements", ["tenant_id"])
    op.create_index(op.f("ix_bank_statements_document_id"), "bank_statements", ["document_id"])
    # The account's statements by period end: the one before a new statement, and the one after it.
    op.create_index("ix_bank_statements_account", "bank_statements",
                    ["tenant_id", "account_key", "currency", "period_end"])

    op.create_table(
        "bank_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("value_on", sa.Date(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("counterparty_name", sa.LargeBinary(), nullable=True),
        sa.Column("counterparty_account", sa.LargeBinary(), nullable=True),
        sa.Column("reference", sa.LargeBinary(), nullable=True),
        sa.Column("bank_ref", sa.LargeBinary(), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=True),
        *_tenant("bank_transactions"),
        sa.ForeignKeyConstraint(["statement_id"], ["bank_statements.id"],
                                name=op.f("fk_bank_transactions_statement_id_bank_statements"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_transactions")),
        sa.UniqueConstraint("statement_id", "line_no", name=op.f("uq_bank_transactions_statement_id")),
    )
    op.create_index(op.f("ix_bank_transactions_tenant_id"), "bank_transactions", ["tenant_id"])

    op.create_table(
        "bank_csv_mappings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bank", sa.String(length=80), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("header", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("mapping", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("account", sa.LargeBinary(), nullable=True),
        sa.Column("saved_by_id", sa.Uuid(), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_tenant("bank_csv_mappings"),
        sa.ForeignKeyConstraint(["saved_by_id"], ["users.id"], name=op.f("fk_bank_csv_mappings_saved_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_csv_mappings")),
        sa.UniqueConstraint("tenant_id", "fingerprint", name=op.f("uq_bank_csv_mappings_tenant_id")),
    )
    op.create_index(op.f("ix_bank_csv_mappings_tenant_id"), "bank_csv_mappings", ["tenant_id"])

    for table in ("bank_statements", "bank_transactions", "bank_csv_mappings"):
        protect_tenant_table(table)
        grant_app(table, "select, insert, update, delete")


def downgrade():
    op.drop_table("bank_transactions")
    op.drop_table("bank_statements")
    op.drop_table("bank_csv_mappings")

"""the intake chain's progress record per document version

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-09 10:00:00

intake_records: one per document version the vault announced; the chain's state (waiting, running
under a lease, done, failed with the reason), the steps it finished, and what they left behind: the
document's text and an e-invoice's fields, sealed with the tenant's field key; a hash of an invoice's
identity (seller tax code, template, symbol, number) to find a second copy; blind tokens of the text's
words (keyed hashes under the tenant's field key, never a word) with a GIN index for search.
Tenant-owned; deleted with its document.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "intake_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=True),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=40), nullable=True),
        sa.Column("text", sa.LargeBinary(), nullable=True),
        sa.Column("text_source", sa.String(length=10), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("classified", sa.String(length=20), nullable=True),
        sa.Column("extracted", sa.LargeBinary(), nullable=True),
        sa.Column("invoice_key", sa.String(length=64), nullable=True),
        sa.Column("duplicate_of", sa.Uuid(), nullable=True),
        sa.Column("paired_with", sa.Uuid(), nullable=True),
        sa.Column("search_tokens", postgresql.ARRAY(sa.LargeBinary()), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name=op.f("fk_intake_records_document_id_documents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["duplicate_of"], ["documents.id"],
                                name=op.f("fk_intake_records_duplicate_of_documents"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["paired_with"], ["documents.id"],
                                name=op.f("fk_intake_records_paired_with_documents"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_intake_records_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_records")),
        sa.UniqueConstraint("document_id", "version", name=op.f("uq_intake_records_document_id")),
    )
    op.create_index(op.f("ix_intake_records_tenant_id"), "intake_records", ["tenant_id"])
    op.create_index(op.f("ix_intake_records_document_id"), "intake_records", ["document_id"])
    # What is not finished: the progress counts and the sweep for runs whose worker died.
    op.create_index("ix_intake_records_open", "intake_records", ["tenant_id", "state"],
                    postgresql_where=sa.text("state in ('waiting', 'running')"))
    op.create_index("ix_intake_records_invoice_key", "intake_records", ["tenant_id", "invoice_key"],
                    postgresql_where=sa.text("invoice_key is not null"))
    op.create_index("ix_intake_records_search_tokens", "intake_records", ["search_tokens"], postgresql_using="gin")
    protect_tenant_table("intake_records")
    grant_app("intake_records", "select, insert, update, delete")


def downgrade():
    op.drop_table("intake_records")

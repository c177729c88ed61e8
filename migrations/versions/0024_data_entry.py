"""data entry: templates per tenant and the records keyed from documents

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 11:00:00

Tenant-owned tables under row-level security: data_entry_templates (a name, a sealed description and the
fields as JSONB; archived, never deleted once it has records) and data_entry_records (the values keyed,
one sealed JSON text; who keyed them and when). A document has at most one record per template, and a
form's submission token makes at most one record (unique keys), so a double submit makes one record.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

TABLES = ("data_entry_templates", "data_entry_records")


def upgrade() -> None:
    op.create_table(
        "data_entry_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.LargeBinary(), nullable=True),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_data_entry_templates_created_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_data_entry_templates_tenant_id_tenants"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_entry_templates")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_data_entry_templates_tenant_id")),
    )
    op.create_index(op.f("ix_data_entry_templates_tenant_id"), "data_entry_templates", ["tenant_id"])

    op.create_table(
        "data_entry_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("field_values", sa.LargeBinary(), nullable=False),
        sa.Column("submission", sa.Uuid(), nullable=True),
        sa.Column("keyed_by_id", sa.Uuid(), nullable=True),
        sa.Column("keyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["data_entry_templates.id"],
                                name=op.f("fk_data_entry_records_template_id_data_entry_templates"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_data_entry_records_document_id_documents"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["keyed_by_id"], ["users.id"],
                                name=op.f("fk_data_entry_records_keyed_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"],
                                name=op.f("fk_data_entry_records_updated_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_data_entry_records_tenant_id_tenants"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_entry_records")),
        sa.UniqueConstraint("template_id", "number", name="uq_data_entry_records_number"),
        sa.UniqueConstraint("template_id", "document_id", name="uq_data_entry_records_document"),
        sa.UniqueConstraint("tenant_id", "submission", name="uq_data_entry_records_submission"),
    )
    op.create_index(op.f("ix_data_entry_records_tenant_id"), "data_entry_records", ["tenant_id"])
    op.create_index(op.f("ix_data_entry_records_document_id"), "data_entry_records", ["document_id"])
    # A template's records by the time they were keyed: the records page's days, newest first.
    op.create_index("ix_data_entry_records_keyed", "data_entry_records", ["tenant_id", "template_id", "keyed_at"])
    for table in TABLES:
        protect_tenant_table(table)
        grant_app(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

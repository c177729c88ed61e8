"""sealed free text of tenants' rows; audit details sealed; signed checkpoints of the audit chains; scheduler claims in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:00:00

The free text of a tenant's rows is sealed with the tenant's own field key (tenants.fields),
so destroying the key on offboarding leaves no readable copy in live rows, dead rows, WAL or
backups. The columns become bytea; existing text is kept as its UTF-8 bytes, which the
application reads as legacy plain values until `portal data seal` rewrites them sealed.

Audit rows of a tenant's chain gain `sealed` (who, from where and the details, sealed; the
hash covers the sealed bytes) and `internal` (not shown in the client's access log). The
signed checkpoints of every chain's head are copied into the database for display; the
authoritative copies are in object storage.

A person's cross-tenant read is logged once per window (audit_read_marks), which bounds the
platform log's growth.

The scheduler claims each period of a periodic job in `schedule_runs`, in the transaction
that enqueues its jobs (a tick killed before its commit used to skip the period).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SEALED = {
    "tasks": ("title", "description"),
    "task_comments": ("body",),
    "task_templates": ("title",),
    "time_entries": ("note",),
    "document_requests": ("title", "note"),
    "document_request_items": ("description",),
    "api_tokens": ("name",),
}


def upgrade():
    for table, columns in SEALED.items():
        for column in columns:
            op.execute(f"alter table {table} alter column {column} type bytea using convert_to({column}, 'UTF8')")

    for table in ("audit_events", "platform_audit_events"):
        op.add_column(table, sa.Column("sealed", sa.LargeBinary(), nullable=True))
        op.add_column(table, sa.Column("internal", sa.Boolean(), server_default="false", nullable=False))

    checkpoint_columns = lambda: [  # noqa: E731
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.String(length=200), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    ]
    op.create_table("platform_audit_checkpoints", *checkpoint_columns(),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_audit_checkpoints")))
    op.create_index("ix_platform_audit_checkpoints_seq", "platform_audit_checkpoints", ["seq"])
    op.create_table("audit_checkpoints", *checkpoint_columns(),
                    sa.Column("tenant_id", sa.Uuid(), nullable=False),
                    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                            name=op.f("fk_audit_checkpoints_tenant_id_tenants"), ondelete="RESTRICT"),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")))
    op.create_index(op.f("ix_audit_checkpoints_tenant_id"), "audit_checkpoints", ["tenant_id"])
    op.create_index("ix_audit_checkpoints_tenant_seq", "audit_checkpoints", ["tenant_id", "seq"])
    op.create_table("schedule_runs",
                    sa.Column("name", sa.String(length=80), nullable=False),
                    sa.Column("period", sa.String(length=40), nullable=False),
                    sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                              nullable=False),
                    sa.PrimaryKeyConstraint("name", "period", name=op.f("pk_schedule_runs")))
    grant_app("schedule_runs", "select, insert, delete")
    op.create_table("audit_read_marks",
                    sa.Column("user_id", sa.Uuid(), nullable=False),
                    sa.Column("reason", sa.String(length=80), nullable=False),
                    sa.Column("scope_hash", sa.LargeBinary(length=32), nullable=False),
                    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint("user_id", "reason", "scope_hash", name=op.f("pk_audit_read_marks")))
    grant_app("audit_read_marks", "select, insert, update")
    protect_tenant_table("audit_checkpoints")
    # Like the chains themselves: read and append, never rewrite.
    grant_app("audit_checkpoints", "select, insert")
    grant_app("platform_audit_checkpoints", "select, insert")


def downgrade():
    op.drop_table("audit_read_marks")
    op.drop_table("schedule_runs")
    op.drop_table("audit_checkpoints")
    op.drop_table("platform_audit_checkpoints")
    for table in ("audit_events", "platform_audit_events"):
        op.drop_column(table, "internal")
        op.drop_column(table, "sealed")
    for table, columns in SEALED.items():
        for column in columns:
            op.execute(f"alter table {table} alter column {column} type text using convert_from({column}, 'UTF8')")

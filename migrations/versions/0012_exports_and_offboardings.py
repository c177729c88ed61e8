"""exports of a tenant's data; the record of each offboarding

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 23:00:00

tenant_exports: a client's archive being built, ready (its passphrase sealed with the
tenant's key until shown once), fetched or expired (its object deleted). Tenant-owned.

offboardings: the provider's record of a tenant's offboarding, one row per tenant, with the
step it reached so a crashed run resumes. Provider-level: it outlives the tenant's rows and
holds no content of the tenant (counts, key ids, the certificate's digest and signature).

Timers left running in a tenant their person was removed from are stopped (removing someone
now hands over their timer and tasks in the same transaction).

mail_messages.subject_enc: subjects sealed like bodies (they name tenants), and both cleared,
with the recipient, once a message is delivered.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tenant_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("object_id", sa.Uuid(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("passphrase", sa.LargeBinary(), nullable=True),
        sa.Column("passphrase_shown_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["stored_objects.id"], name=op.f("fk_tenant_exports_object_id_stored_objects"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"], name=op.f("fk_tenant_exports_requested_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_exports_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_exports")),
    )
    op.create_index(op.f("ix_tenant_exports_tenant_id"), "tenant_exports", ["tenant_id"])
    protect_tenant_table("tenant_exports")
    grant_app("tenant_exports")

    op.create_table(
        "offboardings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("keys", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("stats", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("recipients_enc", sa.LargeBinary(), nullable=True),
        sa.Column("people", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("certificate_id", sa.Uuid(), nullable=True),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column("certificate_signature", sa.String(length=200), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["started_by_id"], ["users.id"], name=op.f("fk_offboardings_started_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_offboardings_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offboardings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_offboardings_tenant_id")),
    )
    grant_app("offboardings", "select, insert, update")

    # Timers left running in a tenant their person was removed from: stopped, as removing someone now
    # does (at most 12 hours logged, like any forgotten timer). The owner is subject to the FORCE'd
    # policies too: bind every tenant for this one statement's transaction.
    op.execute("select set_config('app.tenant_ids', coalesce((select string_agg(id::text, ',') from tenants), ''), "
               "true)")
    op.execute("""
        update time_entries t
           set ended_at = least(now(), t.started_at + interval '12 hours'),
               minutes = greatest(1, least(720, ceil(extract(epoch from now() - t.started_at) / 60)::int))
         where t.ended_at is null
           and not exists (select 1 from assignments a where a.tenant_id = t.tenant_id and a.user_id = t.user_id)
           and not exists (select 1 from users u where u.id = t.user_id and u.provider_role = 'provider_admin')
    """)

    # E-mail subjects name tenants: sealed like the bodies, and cleared with them once delivered.
    op.add_column("mail_messages", sa.Column("subject_enc", sa.LargeBinary(), nullable=True))
    op.alter_column("mail_messages", "subject", existing_type=sa.String(length=200), nullable=True)


def downgrade():
    op.alter_column("mail_messages", "subject", existing_type=sa.String(length=200), nullable=False)
    op.drop_column("mail_messages", "subject_enc")
    op.drop_table("offboardings")
    op.drop_table("tenant_exports")

"""e-mail intake: each tenant's address, registered senders and the quarantine

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10 10:00:00

intake_mail_addresses: a tenant's intake address (the local part sealed, its SHA-256 for the receiver's
lookup; one current, the rotated ones retired). intake_mail_senders: addresses the client admin registered
besides its people (sealed, with a blind token). intake_mails: every message received (sender, subject,
note and attachment outcomes sealed; the quarantined raw message is a sealed object in the vault's
storage). intake_mail_documents: which documents a message brought. All tenant-owned.
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import PRESENTED_INTAKE_ADDRESS, grant_app, protect_tenant_table

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"),
                                   ondelete="RESTRICT")


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"),
                                   ondelete="SET NULL")


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade():
    op.create_table(
        "intake_mail_addresses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("local_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("local_part", sa.LargeBinary(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        _user_fk("intake_mail_addresses", "created_by_id"),
        _tenant_fk("intake_mail_addresses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_mail_addresses")),
        sa.UniqueConstraint("local_hash", name=op.f("uq_intake_mail_addresses_local_hash")),
    )
    op.create_index(op.f("ix_intake_mail_addresses_tenant_id"), "intake_mail_addresses", ["tenant_id"])
    # Rotating retires the current address in the same transaction that makes the new one: one at a time.
    op.create_index("uq_intake_mail_addresses_current", "intake_mail_addresses", ["tenant_id"], unique=True,
                    postgresql_where=sa.text("retired_at is null"))

    op.create_table(
        "intake_mail_senders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.LargeBinary(), nullable=False),
        sa.Column("email_token", sa.LargeBinary(length=12), nullable=False),
        sa.Column("added_by_id", sa.Uuid(), nullable=True),
        _created_at(),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        _user_fk("intake_mail_senders", "added_by_id"),
        _tenant_fk("intake_mail_senders"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_mail_senders")),
        sa.UniqueConstraint("tenant_id", "email_token", name=op.f("uq_intake_mail_senders_tenant_id")),
    )
    op.create_index(op.f("ix_intake_mail_senders_tenant_id"), "intake_mail_senders", ["tenant_id"])

    op.create_table(
        "intake_mails",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("sender", sa.LargeBinary(), nullable=False),
        sa.Column("sender_user_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.LargeBinary(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("outcome", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw_object_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        _user_fk("intake_mails", "sender_user_id"),
        _user_fk("intake_mails", "decided_by_id"),
        sa.ForeignKeyConstraint(["raw_object_id"], ["stored_objects.id"],
                                name=op.f("fk_intake_mails_raw_object_id_stored_objects"), ondelete="SET NULL"),
        _tenant_fk("intake_mails"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_mails")),
        sa.UniqueConstraint("tenant_id", "message_key", name=op.f("uq_intake_mails_tenant_id")),
    )
    op.create_index(op.f("ix_intake_mails_tenant_id"), "intake_mails", ["tenant_id"])
    # The quarantine page: what is held, oldest first.
    op.create_index("ix_intake_mails_held", "intake_mails", ["tenant_id", "received_at"],
                    postgresql_where=sa.text("state = 'held'"))

    op.create_table(
        "intake_mail_documents",
        sa.Column("mail_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["mail_id"], ["intake_mails.id"],
                                name=op.f("fk_intake_mail_documents_mail_id_intake_mails"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_intake_mail_documents_document_id_documents"), ondelete="CASCADE"),
        _tenant_fk("intake_mail_documents"),
        sa.PrimaryKeyConstraint("mail_id", "document_id", name=op.f("pk_intake_mail_documents")),
    )
    op.create_index(op.f("ix_intake_mail_documents_tenant_id"), "intake_mail_documents", ["tenant_id"])
    op.create_index(op.f("ix_intake_mail_documents_document_id"), "intake_mail_documents", ["document_id"])

    # The receiver finds an address's tenant before binding one: the row whose local part's SHA-256 it
    # presents (app.intake_address) is readable, read-only, as a presented API token's is.
    protect_tenant_table("intake_mail_addresses", also_readable=PRESENTED_INTAKE_ADDRESS)
    for table in ("intake_mail_senders", "intake_mails", "intake_mail_documents"):
        protect_tenant_table(table)
    for table in ("intake_mail_addresses", "intake_mail_senders", "intake_mails", "intake_mail_documents"):
        grant_app(table, "select, insert, update, delete")


def downgrade():
    for table in ("intake_mail_documents", "intake_mails", "intake_mail_senders", "intake_mail_addresses"):
        op.drop_table(table)

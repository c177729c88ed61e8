"""the documents' trash; request items answered "not applicable"; the review queue's index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:00:00

documents.trashed_at, trashed_by_id, trash_reason: a removed document waits in the trash (who
removed it, when, and why: the reason sealed with the tenant's key) until the retention period
is over and the purge job deletes it with its versions and stored objects. The partial index
finds what is in the trash (the trash page, the purge job) without reading the live documents.

document_request_items.not_applicable_at, not_applicable_by_id, not_applicable_reason: the
client answered an item "we don't have this / not applicable", with a reason (sealed); the item
is resolved without a document until the provider reopens it.

tasks: ix_tasks_review_queue, the review queue (sent to review with no reviewer named), which
take-next-review reads.

New columns of existing tenant-owned tables only: their row-level security policies and grants
cover them already.
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("documents", sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("documents", sa.Column("trashed_by_id", sa.Uuid(), nullable=True))
    op.add_column("documents", sa.Column("trash_reason", sa.LargeBinary(), nullable=True))
    op.create_foreign_key(op.f("fk_documents_trashed_by_id_users"), "documents", "users", ["trashed_by_id"], ["id"],
                          ondelete="SET NULL")
    op.create_index("ix_documents_trashed", "documents", ["tenant_id", "trashed_at"],
                    postgresql_where=sa.text("trashed_at is not null"))

    op.add_column("document_request_items",
                  sa.Column("not_applicable_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("document_request_items", sa.Column("not_applicable_by_id", sa.Uuid(), nullable=True))
    op.add_column("document_request_items", sa.Column("not_applicable_reason", sa.LargeBinary(), nullable=True))
    op.create_foreign_key(op.f("fk_document_request_items_not_applicable_by_id_users"), "document_request_items",
                          "users", ["not_applicable_by_id"], ["id"], ondelete="SET NULL")

    op.create_index("ix_tasks_review_queue", "tasks", ["service_line_id", "priority", "updated_at"],
                    postgresql_where=sa.text("state = 'in_review' and reviewer_id is null"))


def downgrade():
    op.drop_index("ix_tasks_review_queue", table_name="tasks")

    op.drop_constraint(op.f("fk_document_request_items_not_applicable_by_id_users"), "document_request_items",
                       type_="foreignkey")
    op.drop_column("document_request_items", "not_applicable_reason")
    op.drop_column("document_request_items", "not_applicable_by_id")
    op.drop_column("document_request_items", "not_applicable_at")

    op.drop_index("ix_documents_trashed", table_name="documents")
    op.drop_constraint(op.f("fk_documents_trashed_by_id_users"), "documents", type_="foreignkey")
    op.drop_column("documents", "trash_reason")
    op.drop_column("documents", "trashed_by_id")
    op.drop_column("documents", "trashed_at")

"""invoice and receipt fields read from documents, and their corrections

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 10:00:00

intake_records gains, sealed with the tenant's field key like the text: ``layout`` (the words of the
first pages with their boxes, from which fields are read), ``fields`` (each field read: value,
confidence, page and box) and ``corrections`` (what staff corrected, by whom and when; the reading
stays as it was). stored_objects gains ``searchable_id``: a scanned PDF's searchable copy, a rendition
deleted with its content like the thumbnail.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    for column in ("layout", "fields", "corrections"):
        op.add_column("intake_records", sa.Column(column, sa.LargeBinary(), nullable=True))
    op.add_column("stored_objects", sa.Column("searchable_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f("fk_stored_objects_searchable_id_stored_objects"), "stored_objects", "stored_objects",
                          ["searchable_id"], ["id"], ondelete="SET NULL")


def downgrade():
    op.drop_column("stored_objects", "searchable_id")
    for column in ("corrections", "fields", "layout"):
        op.drop_column("intake_records", column)

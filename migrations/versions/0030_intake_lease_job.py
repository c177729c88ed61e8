"""intake: which job holds a record's lease, so that job's own retry takes it over at once

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-09 12:00:00

A run that failed while the database was away (or whose worker was killed) could not hand its lease back;
its job's retry then found the record held and ended, and the document waited for the lease to run out and
the next resume tick (up to 20 minutes). The rq job's id is kept: rq retries a job under the same id once its
try has ended, while a job re-queued because rq lost track of it gets a new one (its first try may still be
running). A nullable column: the previous release neither reads nor writes it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("intake_records", sa.Column("lease_job", sa.String(80), nullable=True))


def downgrade() -> None:
    op.drop_column("intake_records", "lease_job")

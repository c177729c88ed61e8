"""task reviewer index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 18:55:00

"My work" lists a person's tasks and those waiting for their review; the review half
had no index, so at a million tasks the list scanned the table.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tasks_reviewer_in_review', 'tasks', ['reviewer_id', 'due_date', 'priority', 'id'],
                    unique=False, postgresql_where=sa.text("state = 'in_review'"))


def downgrade():
    op.drop_index('ix_tasks_reviewer_in_review', table_name='tasks', postgresql_where=sa.text("state = 'in_review'"))

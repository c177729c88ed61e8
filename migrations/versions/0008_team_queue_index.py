"""team queue index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 18:30:00

The team queues count and list the waiting tasks of a person's clients per service
line; the queue indexes are ordered for take-next over all tenants, so counting a
few clients' tasks among a million walked the whole queue.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

WAITING = sa.text("state = 'open' and assignee_id is null")


def upgrade():
    op.create_index('ix_tasks_waiting_by_tenant', 'tasks', ['tenant_id', 'service_line_id', 'priority', 'due_date'],
                    unique=False, postgresql_where=WAITING)


def downgrade():
    op.drop_index('ix_tasks_waiting_by_tenant', table_name='tasks', postgresql_where=WAITING)

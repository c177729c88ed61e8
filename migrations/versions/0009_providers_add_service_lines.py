"""providers add service lines

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 18:45:00

Provider admins add and rename service lines from the console, so the application role
may now insert and update them (still never delete: tasks refer to them).
"""
from alembic import op

from tenants.rls import app_role

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(f'grant insert, update on service_lines to "{app_role()}"')


def downgrade():
    op.execute(f'revoke insert, update on service_lines from "{app_role()}"')

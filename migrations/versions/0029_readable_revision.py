"""the application role may read the schema's revision (alembic_version), for /readyz

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 12:00:00

Readiness compares the database's revision with the code's. Read as the application role, the web tier needs
no owner credentials (MIGRATION_DATABASE_URL) at all: only the migration job holds them.
"""
from alembic import op

from tenants.rls import app_role, grant_app

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    grant_app("alembic_version", "select")


def downgrade() -> None:
    op.execute(f'revoke select on alembic_version from "{app_role()}"')  # noqa: S608 - the configured role

"""row-level security policies read their settings once per statement

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:40:00

The policies compared each row's tenant_id with a list parsed from app.tenant_ids
for every row a scan looked at; a queue scan over a few thousand rows spent tens
of milliseconds parsing. The same comparisons, with each setting read in a scalar
subquery (evaluated once per statement), select exactly the same rows.
"""
from alembic import op

from tenants.rls import rewrite_policy

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _protected_tables() -> list[str]:
    rows = op.get_bind().exec_driver_sql(
        "select tablename from pg_policies where policyname = 'tenant_isolation' and schemaname = current_schema()"
        " order by tablename")
    return [row[0] for row in rows]


def upgrade():
    for table in _protected_tables():
        rewrite_policy(table)


def downgrade():
    # Nothing to undo: the rewritten policies admit exactly the rows the earlier ones did.
    pass

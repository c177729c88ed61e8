"""row-level security: writes only in the bound tenants; task timelines append-only

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 10:00:00

The policies of memberships, assignments, api_tokens and notifications admitted a
user's own rows (and the presented API token) in their USING clause, so that the
workspace switcher can read them before a tenant is bound. UPDATE and DELETE find
their rows through USING too: a user could change or delete their own rows of a
tenant that was not bound. Each of those tables now has its main policy on the
bound tenants only, for every command, and the widening in a FOR SELECT policy of
its own (tenants.rls). Databases created from scratch already get that shape from
the earlier revisions (they call the same helpers), so this revision is written to
reach it from either state.

The portal only appends to a task's timeline: the application role loses UPDATE and
DELETE on task_events. Deleting a task still removes its events: the foreign key's
ON DELETE CASCADE runs as the table's owner, not as the application role.
"""
from alembic import op

from tenants.rls import ALSO_READABLE, POLICY, READ_POLICY, TENANT_MATCH, app_role, rewrite_policy

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    for table in ALSO_READABLE:
        rewrite_policy(table)
    op.execute(f'revoke update, delete on task_events from "{app_role()}"')


def downgrade():
    op.execute(f'grant update, delete on task_events to "{app_role()}"')
    # Back to one policy per table, the widening in its USING clause (as revision 0006 left it).
    for table, extra in ALSO_READABLE.items():
        op.execute(f"drop policy if exists {READ_POLICY} on {table}")
        op.execute(f"alter policy {POLICY} on {table} using (({TENANT_MATCH}) or ({extra})) "
                   f"with check ({TENANT_MATCH})")

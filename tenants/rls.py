"""DDL for row-level security and grants, used by hand-written migration revisions.

Autogenerate does not see policies, so every revision that adds a tenant-owned
table calls ``protect_tenant_table`` for it, and every revision that adds any
table calls ``grant_app`` with exactly the privileges the application needs.
Kept small and stable: old revisions import it.
"""

from __future__ import annotations

from alembic import op

# Rows of the tenants bound to this transaction (app.tenant_ids, comma-separated
# uuids, set with set_config(..., true)). An unset or empty setting matches
# nothing: the policy fails closed. Each setting is read inside a scalar subquery,
# which PostgreSQL evaluates once per statement (an InitPlan) instead of parsing
# the list again for every row it looks at (revision 0006). The cast to uuid[] is
# inside the subquery (outside, it would run per row); the no-op cast after it makes
# ``any`` read the subquery as one array, not as a set of rows.
TENANT_MATCH = (
    "tenant_id = any ((select string_to_array(nullif(current_setting('app.tenant_ids', true), ''), ',')::uuid[])"
    "::uuid[])"
)
# The acting user's own rows (their memberships, assignments and tokens in any tenant).
OWN_ROWS = "user_id = (select nullif(current_setting('app.user_id', true), '')::uuid)"
# The one API token whose secret the caller presented (its SHA-256, hex, in app.token_hash):
# knowing the secret is what lets a bearer request find its token before any tenant is bound.
PRESENTED_TOKEN = "token_hash = (select decode(nullif(current_setting('app.token_hash', true), ''), 'hex'))"  # noqa: S105 - SQL, not a secret
# What each table with wider read access may also read (every other protected table: TENANT_MATCH only).
ALSO_READABLE = {
    "memberships": OWN_ROWS,
    "assignments": OWN_ROWS,
    "api_tokens": f"{OWN_ROWS} or {PRESENTED_TOKEN}",
    "notifications": OWN_ROWS,
}


def app_role() -> str:
    """The application's database role, passed in by migrations/env.py."""
    return op.get_context().opts["app_role"]


def protect_tenant_table(table: str, *, also_readable: str | None = None) -> None:
    """ENABLE and FORCE row-level security with one policy (USING and WITH CHECK).

    ``also_readable`` widens what may be *read* (never written), e.g. OWN_ROWS; by default what
    ``ALSO_READABLE`` says for the table, so that a later ``rewrite_policy`` keeps it.
    """
    also_readable = also_readable if also_readable is not None else ALSO_READABLE.get(table)
    op.execute(f"alter table {table} enable row level security")
    op.execute(f"alter table {table} force row level security")
    op.execute(f"create policy tenant_isolation on {table} {_clauses(also_readable)}")


def rewrite_policy(table: str) -> None:
    """Replace ``table``'s policy expressions with the current ones (same rows, cheaper plan)."""
    op.execute(f"alter policy tenant_isolation on {table} {_clauses(ALSO_READABLE.get(table))}")


def _clauses(also_readable: str | None) -> str:
    using = f"({TENANT_MATCH})" + (f" or ({also_readable})" if also_readable else "")
    return f"using ({using}) with check ({TENANT_MATCH})"


def grant_app(table: str, privileges: str = "select, insert, update, delete") -> None:
    """Grant the application role ``privileges`` on ``table`` (and its sequences)."""
    op.execute(f'grant {privileges} on {table} to "{app_role()}"')


def grant_sequence(sequence: str) -> None:
    op.execute(f'grant usage, select on sequence {sequence} to "{app_role()}"')

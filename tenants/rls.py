"""DDL for row-level security and grants, used by hand-written migration revisions.

Autogenerate does not see policies, so every revision that adds a tenant-owned
table calls ``protect_tenant_table`` for it, and every revision that adds any
table calls ``grant_app`` with exactly the privileges the application needs.
Kept small and stable: old revisions import it.

Each protected table has one policy for every command, ``tenant_isolation``: USING and
WITH CHECK on the bound tenants only, so reads, inserts, updates and deletes all stay
inside them. A table whose users may also *read* some rows of other tenants (their own
memberships, say) has a second policy, ``also_readable``, FOR SELECT only: PostgreSQL
ORs permissive policies per command, and UPDATE and DELETE find their rows through
their own policies' USING, so a widening in the main policy would let a user change or
delete their rows in a tenant that is not bound (revision 0010 split them).
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
# The one intake address whose local part an incoming message was sent to (its SHA-256, hex, in
# app.intake_address): knowing the random address is what lets the mail receiver find its tenant.
# Revision 0020 passes it to protect_tenant_table itself: ALSO_READABLE is iterated by revision 0010,
# which runs before that table exists (a rewrite_policy of intake_mail_addresses must pass it again).
PRESENTED_INTAKE_ADDRESS = ("local_hash = (select decode(nullif(current_setting('app.intake_address', true), ''), "
                            "'hex'))")
# The one e-mailed payslip link whose token an employee presented (its SHA-256, hex, in app.payslip_link): knowing
# the random token is what lets the public payslip page find the link's tenant (revision 0028 passes it itself).
PRESENTED_PAYSLIP_LINK = ("token_hash = (select decode(nullif(current_setting('app.payslip_link', true), ''), "
                          "'hex'))")
# What each table with wider read access may also read (every other protected table: TENANT_MATCH only).
ALSO_READABLE = {
    "memberships": OWN_ROWS,
    "assignments": OWN_ROWS,
    "api_tokens": f"{OWN_ROWS} or {PRESENTED_TOKEN}",
    "notifications": OWN_ROWS,
}
POLICY = "tenant_isolation"  # every command, the bound tenants only
READ_POLICY = "also_readable"  # FOR SELECT only: what ALSO_READABLE adds


def app_role() -> str:
    """The application's database role, passed in by migrations/env.py."""
    return op.get_context().opts["app_role"]


def protect_tenant_table(table: str, *, also_readable: str | None = None) -> None:
    """ENABLE and FORCE row-level security: the bound tenants' rows for every command (USING and
    WITH CHECK), plus a FOR SELECT policy for ``also_readable`` when there is one.

    ``also_readable`` widens what may be *read* (never written, updated or deleted), e.g. OWN_ROWS;
    by default what ``ALSO_READABLE`` says for the table, so that a later ``rewrite_policy`` keeps it.
    """
    also_readable = also_readable if also_readable is not None else ALSO_READABLE.get(table)
    op.execute(f"alter table {table} enable row level security")
    op.execute(f"alter table {table} force row level security")
    op.execute(f"create policy {POLICY} on {table} {_clauses()}")
    if also_readable:
        op.execute(f"create policy {READ_POLICY} on {table} for select using ({also_readable})")


def rewrite_policy(table: str) -> None:
    """Replace ``table``'s policies with the current ones: the tenant match for every command, and
    the read-only widening of ``ALSO_READABLE`` (if any) as a FOR SELECT policy of its own."""
    op.execute(f"alter policy {POLICY} on {table} {_clauses()}")
    op.execute(f"drop policy if exists {READ_POLICY} on {table}")
    if table in ALSO_READABLE:
        op.execute(f"create policy {READ_POLICY} on {table} for select using ({ALSO_READABLE[table]})")


def _clauses() -> str:
    return f"using ({TENANT_MATCH}) with check ({TENANT_MATCH})"


def grant_app(table: str, privileges: str = "select, insert, update, delete") -> None:
    """Grant the application role ``privileges`` on ``table`` (and its sequences)."""
    op.execute(f'grant {privileges} on {table} to "{app_role()}"')


def grant_sequence(sequence: str) -> None:
    op.execute(f'grant usage, select on sequence {sequence} to "{app_role()}"')

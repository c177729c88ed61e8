"""bank reconciliation: links of bank accounts, matches and rules

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 11:00:00

Tenant-owned tables under row-level security:
- ledger_bank_links: a bank account seen in statements (its keyed hash and currency, never its number) linked
  to the ledger account that keeps it; one each way per tenant.
- ledger_bank_rules: "counterparty contains X, reference contains Y, money in or out -> account Z"; the patterns
  and the description are sealed (they may hold names).
- ledger_bank_matches: a bank transaction reconciled with the entry that books it. At most one active match per
  transaction and per entry (partial unique indexes), so a double click posts once; undone matches stay. A
  transaction deleted (its file read again, its document purged) takes its matches with it; the entries stay.
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import grant_app, protect_tenant_table

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

TABLES = ("ledger_bank_links", "ledger_bank_rules", "ledger_bank_matches")

def _tenant() -> list[sa.Column]:
    return [sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                      index=True)]


def _user(name: str) -> sa.Column:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL"))


def upgrade() -> None:
    op.create_table(
        "ledger_bank_links",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("account_key", sa.LargeBinary(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("bank", sa.String(80)),
        sa.Column("account_mask", sa.String(16)),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id", ondelete="CASCADE"), nullable=False),
        _user("linked_by_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_tenant(),
        sa.UniqueConstraint("tenant_id", "account_key", "currency", name="uq_ledger_bank_links_bank_account"),
        sa.UniqueConstraint("tenant_id", "account_id", name="uq_ledger_bank_links_ledger_account"),
    )
    op.create_table(
        "ledger_bank_rules",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("counterparty", sa.LargeBinary()),
        sa.Column("reference", sa.LargeBinary()),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("ledger_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.LargeBinary(), nullable=False),
        _user("created_by_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_tenant(),
        sa.CheckConstraint("direction in ('in', 'out')", name=op.f("ck_ledger_bank_rules_direction")),
        sa.CheckConstraint("counterparty is not null or reference is not null",
                           name=op.f("ck_ledger_bank_rules_pattern")),
    )
    op.create_table(
        "ledger_bank_matches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("transaction_id", sa.Uuid(), sa.ForeignKey("bank_transactions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("link_id", sa.Uuid(), sa.ForeignKey("ledger_bank_links.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(7), nullable=False),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"), nullable=False,
                  index=True),
        sa.Column("rule_id", sa.Uuid(), sa.ForeignKey("ledger_bank_rules.id", ondelete="SET NULL")),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(6), nullable=False),
        _user("created_by_id"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
        _user("undone_by_id"),
        sa.Column("reversal_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT")),
        *_tenant(),
        sa.CheckConstraint("kind in ('items', 'entry', 'rule', 'account')", name=op.f("ck_ledger_bank_matches_kind")),
        sa.CheckConstraint("state in ('active', 'undone')", name=op.f("ck_ledger_bank_matches_state")),
    )
    # The double click's guard: one active match per transaction, and an entry books one transaction.
    op.create_index("uq_ledger_bank_matches_active_transaction", "ledger_bank_matches", ["transaction_id"],
                    unique=True, postgresql_where=sa.text("state = 'active'"))
    op.create_index("uq_ledger_bank_matches_active_entry", "ledger_bank_matches", ["entry_id"], unique=True,
                    postgresql_where=sa.text("state = 'active'"))
    for table in TABLES:
        protect_tenant_table(table)
        grant_app(table)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

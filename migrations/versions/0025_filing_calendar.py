"""the filing calendar: a tenant's filing settings and its deadlines

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 11:00:00

The filing calendar's settings are columns of the tenant's books (``ledger_books``, already under row-level
security and deleted by offboarding with the rest of the books): how often the tenant files VAT, whether the
provider runs its payroll and how often the PIT withheld from salaries is filed, and the first day whose deadlines
count (null: the day the books started). The deadlines themselves are data (``portal/ledger/deadlines/``) and the
tasks they open are ordinary tasks, keyed ``filing:<rule>:<period>`` on the existing unique recurrence key.
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger_books", sa.Column("vat_period", sa.String(9), server_default="monthly", nullable=False))
    op.add_column("ledger_books", sa.Column("payroll", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("ledger_books", sa.Column("pit_period", sa.String(9), server_default="monthly", nullable=False))
    op.add_column("ledger_books", sa.Column("filing_since", sa.Date()))
    op.create_check_constraint(op.f("ck_ledger_books_vat_period"), "ledger_books",
                               "vat_period in ('monthly', 'quarterly')")
    op.create_check_constraint(op.f("ck_ledger_books_pit_period"), "ledger_books",
                               "pit_period in ('monthly', 'quarterly')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_ledger_books_pit_period"), "ledger_books", type_="check")
    op.drop_constraint(op.f("ck_ledger_books_vat_period"), "ledger_books", type_="check")
    for column in ("filing_since", "pit_period", "payroll", "vat_period"):
        op.drop_column("ledger_books", column)

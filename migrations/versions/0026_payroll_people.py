"""payroll: employees, their dependants and their monthly attendance

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 12:00:00

Tenant-owned tables under row-level security. Names, national ids, personal tax codes, bank accounts, e-mail
addresses and every salary figure are sealed with the tenant's field key (bytea); in clear only what names no
one (codes, contract types and dates, regions, days and hours). ``payroll_imports`` keeps a file of employees or
attendance, sealed, between its preview and its confirmation (``portal.payroll.imports``).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenants.rls import grant_app, protect_tenant_table

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

TABLES = ("payroll_employees", "payroll_dependants", "payroll_attendance", "payroll_imports")


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                     index=True)


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade():
    op.create_table(
        "payroll_employees",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("full_name", sa.LargeBinary(), nullable=False),
        sa.Column("email", sa.LargeBinary()),
        sa.Column("national_id", sa.LargeBinary()),
        sa.Column("tax_code", sa.LargeBinary()),
        sa.Column("bank_name", sa.String(80)),
        sa.Column("bank_account", sa.LargeBinary()),
        sa.Column("contract_type", sa.String(10), nullable=False),
        sa.Column("contract_start", sa.Date(), nullable=False),
        sa.Column("contract_end", sa.Date()),
        sa.Column("probation_end", sa.Date()),
        sa.Column("region", sa.String(3), nullable=False),
        sa.Column("resident", sa.Boolean(), nullable=False),
        sa.Column("foreigner", sa.Boolean(), nullable=False),
        sa.Column("pensioner", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("base_salary", sa.LargeBinary(), nullable=False),
        sa.Column("insurance_salary", sa.LargeBinary()),
        sa.Column("allowances", sa.LargeBinary()),
        _created(), _tenant(),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_payroll_employees_tenant_id")),
        sa.CheckConstraint("contract_type in ('indefinite', 'fixed', 'seasonal', 'probation')",
                           name=op.f("ck_payroll_employees_contract_type")),
        sa.CheckConstraint("region in ('I', 'II', 'III', 'IV')", name=op.f("ck_payroll_employees_region")),
        sa.CheckConstraint("contract_end is null or contract_end >= contract_start",
                           name=op.f("ck_payroll_employees_contract_dates")),
    )
    op.create_table(
        "payroll_dependants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("employee_id", sa.Uuid(), sa.ForeignKey("payroll_employees.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("relation", sa.String(20)),
        sa.Column("from_month", sa.Date(), nullable=False),
        sa.Column("to_month", sa.Date()),
        _tenant(),
        sa.CheckConstraint("extract(day from from_month) = 1", name=op.f("ck_payroll_dependants_from_first")),
        sa.CheckConstraint("to_month is null or (extract(day from to_month) = 1 and to_month >= from_month)",
                           name=op.f("ck_payroll_dependants_to_first")),
    )
    op.create_table(
        "payroll_attendance",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("employee_id", sa.Uuid(), sa.ForeignKey("payroll_employees.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("working_days", sa.Numeric(5, 2), nullable=False),
        sa.Column("days_worked", sa.Numeric(5, 2), nullable=False),
        sa.Column("paid_leave", sa.Numeric(5, 2), nullable=False),
        sa.Column("unpaid_leave", sa.Numeric(5, 2), nullable=False),
        sa.Column("overtime", postgresql.JSONB(), nullable=False),
        sa.Column("bonuses", sa.LargeBinary()),
        sa.Column("deductions", sa.LargeBinary()),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL")),
        _created(), _tenant(),
        sa.UniqueConstraint("employee_id", "month", name=op.f("uq_payroll_attendance_employee_id")),
        sa.CheckConstraint("extract(day from month) = 1", name=op.f("ck_payroll_attendance_first_of_month")),
        sa.CheckConstraint("working_days > 0 and days_worked >= 0 and paid_leave >= 0 and unpaid_leave >= 0",
                           name=op.f("ck_payroll_attendance_days")),
    )
    op.create_table(  # a file between its preview and its confirmation, sealed (portal.payroll.imports)
        "payroll_imports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("month", sa.Date()),
        sa.Column("filename", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary()),
        sa.Column("created_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.Column("applied_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        _created(), _tenant(),
        sa.CheckConstraint("kind in ('employees', 'attendance')", name=op.f("ck_payroll_imports_kind")),
        sa.CheckConstraint("kind = 'employees' or month is not null", name=op.f("ck_payroll_imports_month")),
    )
    for table in TABLES:
        protect_tenant_table(table)
        grant_app(table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)

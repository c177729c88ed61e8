"""payroll: pay runs, their payslips and the tenant's payroll settings

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 12:00:00

Tenant-owned tables under row-level security. A payslip's lines, the inputs they came from and the bank account
they are paid to, and a run's totals, are sealed with the tenant's field key (bytea); in clear only the month, the
state, the pay date, counts and the SHA-256 of the run's figures (what the client's approval binds to).
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import grant_app, protect_tenant_table

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

TABLES = ("payroll_runs", "payroll_payslips", "payroll_settings")


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                     index=True)


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def _user(name: str) -> sa.Column:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL"))


def upgrade():
    op.create_table(
        "payroll_runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("pay_date", sa.Date(), nullable=False),
        sa.Column("jurisdiction", sa.String(10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("totals", sa.LargeBinary()),
        sa.Column("figures_sha256", sa.String(64)),
        sa.Column("summary_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL")),
        sa.Column("task_id", sa.Uuid(), sa.ForeignKey("tasks.id", ondelete="SET NULL")),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("ledger_entries.id", ondelete="SET NULL")),
        sa.Column("calculated_at", sa.DateTime(timezone=True)),
        _user("calculated_by_id"),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        _user("approved_by_id"),
        sa.Column("approved_sha256", sa.String(64)),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
        _user("paid_by_id"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _created(), _tenant(),
        sa.UniqueConstraint("tenant_id", "month", name=op.f("uq_payroll_runs_tenant_id")),
        sa.CheckConstraint("extract(day from month) = 1", name=op.f("ck_payroll_runs_first_of_month")),
        sa.CheckConstraint("state in ('draft', 'calculated', 'in_review', 'awaiting_approval', 'approved', 'paid')",
                           name=op.f("ck_payroll_runs_state")),
        sa.CheckConstraint("version >= 0 and headcount >= 0", name=op.f("ck_payroll_runs_counts")),
    )
    op.create_table(
        "payroll_payslips",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("run_id", sa.Uuid(), sa.ForeignKey("payroll_runs.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("employee_id", sa.Uuid(), sa.ForeignKey("payroll_employees.id", ondelete="SET NULL"), index=True),
        sa.Column("employee_code", sa.String(20), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("run_version", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL")),
        sa.Column("pdf_version", sa.Integer()),
        _created(), _tenant(),
        sa.UniqueConstraint("run_id", "employee_code", name=op.f("uq_payroll_payslips_run_id")),
    )
    op.create_table(
        "payroll_settings",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("bank_layout", sa.String(20), nullable=False),
        sa.Column("payslip_language", sa.String(10), nullable=False),
        sa.Column("email_payslips", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _user("updated_by_id"),
        _tenant(),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_payroll_settings_tenant_id")),
        sa.CheckConstraint("payslip_language in ('both', 'vi', 'en', 'employee')",
                           name=op.f("ck_payroll_settings_payslip_language")),
    )
    for table in TABLES:
        protect_tenant_table(table)
        grant_app(table)


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table)

"""payroll: payslips e-mailed to employees as a link

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08 12:00:00

payroll_payslip_links: one e-mailed link to one payslip, tenant-owned under row-level security like the other
payroll tables. Only the SHA-256 of the link's random token is kept; the token itself is in the e-mail alone. The
public payslip page finds the link's tenant through the token the employee presents (``app.payslip_link``, a
FOR SELECT policy of its own: it reads that one row, never writes). Two partial unique indexes: a payslip is
e-mailed once when its run is paid (a second marking, a job run twice, mail once), and it has one live link at a
time (sending again revokes the old one first).
"""
import sqlalchemy as sa
from alembic import op

from tenants.rls import PRESENTED_PAYSLIP_LINK, grant_app, protect_tenant_table

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payroll_payslip_links",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("payslip_id", sa.Uuid(), sa.ForeignKey("payroll_payslips.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("reason", sa.String(8), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True)),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_by_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id", ondelete="RESTRICT"), nullable=False,
                  index=True),
        sa.UniqueConstraint("token_hash", name=op.f("uq_payroll_payslip_links_token_hash")),
        sa.CheckConstraint("reason in ('paid', 'resent')", name=op.f("ck_payroll_payslip_links_reason")),
        sa.CheckConstraint("failed_attempts >= 0", name=op.f("ck_payroll_payslip_links_attempts")),
    )
    # Mailed once when the run is paid, whatever runs twice; one live link per payslip.
    op.create_index("uq_payroll_payslip_links_paid", "payroll_payslip_links", ["payslip_id"], unique=True,
                    postgresql_where=sa.text("reason = 'paid'"))
    op.create_index("uq_payroll_payslip_links_live", "payroll_payslip_links", ["payslip_id"], unique=True,
                    postgresql_where=sa.text("revoked_at is null"))
    protect_tenant_table("payroll_payslip_links", also_readable=PRESENTED_PAYSLIP_LINK)
    grant_app("payroll_payslip_links")


def downgrade():
    op.drop_table("payroll_payslip_links")

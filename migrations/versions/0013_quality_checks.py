"""quality control by sampling: sampling rates, and the checks of finished tasks drawn at random

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00

quality_rates: the provider-wide share of a service line's finished tasks drawn for a second
check. Provider-level, like service_lines.

tenant_quality_rates: a client's own rate for a line, replacing the provider-wide one.
Tenant-owned.

quality_checks: one row per task drawn (unique task_id), who may not check it (who did and who
reviewed the work, as they were when it was drawn), who checks it, and what was found; the
note is sealed with the tenant's key. Tenant-owned. The application may not delete a check: it
goes with its task (ON DELETE CASCADE), as a task's timeline does.
"""
from alembic import op
import sqlalchemy as sa

from tenants.rls import grant_app, protect_tenant_table

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "quality_rates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_line_id", sa.Uuid(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["service_line_id"], ["service_lines.id"],
                                name=op.f("fk_quality_rates_service_line_id_service_lines")),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], name=op.f("fk_quality_rates_updated_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_rates")),
        sa.UniqueConstraint("service_line_id", name=op.f("uq_quality_rates_service_line_id")),
    )
    grant_app("quality_rates")

    op.create_table(
        "tenant_quality_rates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_line_id", sa.Uuid(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["service_line_id"], ["service_lines.id"],
                                name=op.f("fk_tenant_quality_rates_service_line_id_service_lines")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_quality_rates_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"],
                                name=op.f("fk_tenant_quality_rates_updated_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_quality_rates")),
        sa.UniqueConstraint("tenant_id", "service_line_id", name=op.f("uq_tenant_quality_rates_tenant_id")),
    )
    op.create_index(op.f("ix_tenant_quality_rates_tenant_id"), "tenant_quality_rates", ["tenant_id"])
    protect_tenant_table("tenant_quality_rates")
    grant_app("tenant_quality_rates")

    op.create_table(
        "quality_checks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worked_by_id", sa.Uuid(), nullable=True),
        sa.Column("reviewed_by_id", sa.Uuid(), nullable=True),
        sa.Column("checker_id", sa.Uuid(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("finding", sa.String(length=10), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rework_event_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("state in ('open', 'done')", name=op.f("ck_quality_checks_state")),
        sa.CheckConstraint("finding is null or finding in ('none', 'minor', 'major')",
                           name=op.f("ck_quality_checks_finding")),
        sa.CheckConstraint("state = 'open' or (finding is not null and checked_at is not null)",
                           name=op.f("ck_quality_checks_done_has_finding")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_quality_checks_task_id_tasks"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worked_by_id"], ["users.id"], name=op.f("fk_quality_checks_worked_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"], name=op.f("fk_quality_checks_reviewed_by_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["checker_id"], ["users.id"], name=op.f("fk_quality_checks_checker_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["rework_event_id"], ["task_events.id"],
                                name=op.f("fk_quality_checks_rework_event_id_task_events"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_quality_checks_tenant_id_tenants"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_checks")),
        sa.UniqueConstraint("task_id", name=op.f("uq_quality_checks_task_id")),
    )
    op.create_index(op.f("ix_quality_checks_tenant_id"), "quality_checks", ["tenant_id"])
    op.create_index(op.f("ix_quality_checks_checker_id"), "quality_checks", ["checker_id"])
    op.create_index("ix_quality_checks_waiting", "quality_checks", ["drawn_at"],
                    postgresql_where=sa.text("state = 'open' and checker_id is null"))
    op.create_index("ix_quality_checks_checked", "quality_checks", ["tenant_id", "checked_at"],
                    postgresql_where=sa.text("state = 'done'"))
    protect_tenant_table("quality_checks")
    grant_app("quality_checks", "select, insert, update")


def downgrade():
    op.drop_table("quality_checks")
    op.drop_table("tenant_quality_rates")
    op.drop_table("quality_rates")

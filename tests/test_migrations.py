"""Migrations: an empty database reaches head, the models match it, and it goes back down."""

from __future__ import annotations

import os

from flask_migrate import check, downgrade, upgrade
from sqlalchemy import create_engine, inspect

from tests.data.schema_snapshot import scratch_database


def test_empty_database_to_head_with_no_drift():
    # Named for this run, as every test database is, so that runs side by side never meet.
    with scratch_database(f"portal_test_migrations_{os.getpid()}") as (fresh, urls), fresh.app_context():
        upgrade()
        check()  # raises if the models and the migrations disagree
        engine = create_engine(urls.owner)
        tables = set(inspect(engine).get_table_names())
        assert {"tenants", "users", "memberships", "audit_events", "outbox_jobs"} <= tables
        downgrade(revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        engine.dispose()

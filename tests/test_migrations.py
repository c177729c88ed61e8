"""Migrations: an empty database reaches head, the models match it, and it goes back down."""

from __future__ import annotations

from flask_migrate import check, downgrade, upgrade
from sqlalchemy import create_engine, inspect

from portal import create_app
from portal.dbsetup import bootstrap
from tests.services import postgres_superuser_url


def test_empty_database_to_head_with_no_drift(app, tmp_path):
    urls = bootstrap(postgres_superuser_url(), "portal_test_migrations", recreate=True)
    fresh = create_app({"TESTING": True, "DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner,
                        "REDIS_URL": app.config["REDIS_URL"], "INSTANCE_PATH": str(tmp_path),
                        "SECRET_KEY": "x" * 32})
    with fresh.app_context():
        upgrade()
        check()  # raises if the models and the migrations disagree
        engine = create_engine(urls.owner)
        tables = set(inspect(engine).get_table_names())
        assert {"tenants", "users", "memberships", "audit_events", "outbox_jobs"} <= tables
        downgrade(revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        engine.dispose()

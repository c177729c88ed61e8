"""Alembic environment: migrations run as the *owner* role (MIGRATION_DATABASE_URL).

The application's role (the user of DATABASE_URL) is passed to the revisions as
``app_role`` so they can grant it exactly what it needs and nothing more.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
log = logging.getLogger("alembic.env")

# Import every model so autogenerate (and `portal db check`) sees the whole schema.
import portal.billing.models  # noqa: E402,F401
import portal.documents.models  # noqa: E402,F401
import portal.mail  # noqa: E402,F401
import portal.work.models  # noqa: E402,F401
import tenants.audit  # noqa: E402,F401
import tenants.models  # noqa: E402,F401
import workers.models  # noqa: E402,F401
from portal.extensions import db  # noqa: E402

target_metadata = db.metadata


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    return True


def run_migrations_online() -> None:
    owner_url = current_app.config.get("MIGRATION_DATABASE_URL")
    if not owner_url:
        raise SystemExit("MIGRATION_DATABASE_URL must be set to run migrations (the owner role)")
    app_role = make_url(current_app.config["DATABASE_URL"]).username
    engine = create_engine(owner_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=_include_object,
            compare_type=True,
            app_role=app_role,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `portal db upgrade`")
run_migrations_online()

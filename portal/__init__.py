"""The Flask application: web pages and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` overrides settings read from the environment."""
    from portal import config as settings
    from portal.embedded import fill as fill_embedded
    from portal.instance import fill_dev_secrets

    cfg = settings.load(config)
    app = Flask(__name__, instance_path=cfg["INSTANCE_PATH"], instance_relative_config=False)
    if not cfg["PRODUCTION"]:
        fill_dev_secrets(cfg)
        fill_embedded(cfg)
    app.config.update(cfg)
    app.config["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    # limits spells a Unix-socket Redis (the embedded default) "redis+unix://".
    limits_redis = cfg.get("RATELIMIT_REDIS_URL") or cfg["REDIS_URL"]
    app.config["RATELIMIT_STORAGE_URI"] = limits_redis.replace("unix://", "redis+unix://", 1)

    from portal import (
        access,
        account,
        api,
        auth,
        billing,
        boundary,
        cli,
        clients,
        dataentry,
        documents,
        errors,
        extensions,
        i18n,
        intake,
        ledger,
        logs,
        metrics,
        offboarding,
        payroll,
        provider,
        security,
        trust,
        views,
        work,
    )
    from workers import init_app as init_workers

    logs.init_app(app)
    metrics.init_app(app)  # right after the request id: the time covers every other hook
    extensions.db.init_app(app)
    with app.app_context():
        for engine in extensions.db.engines.values():
            extensions.replace_dropped_connections(engine)
    extensions.migrate.init_app(app, extensions.db, directory=cfg["MIGRATIONS_DIR"])
    extensions.csrf.init_app(app)
    extensions.limiter.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    boundary.init_app(app)  # before the gate: its tenant lookup would be the first query to choke
    access.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    views.init_app(app)
    account.init_app(app)
    clients.init_app(app)
    documents.init_app(app)
    work.init_app(app)
    intake.init_app(app)
    ledger.init_app(app)
    dataentry.init_app(app)
    payroll.init_app(app)
    provider.init_app(app)
    api.init_app(app)
    trust.init_app(app)
    offboarding.init_app(app)
    billing.init_app(app)
    init_workers(app)
    cli.init_app(app)
    return app

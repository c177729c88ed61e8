"""Settings from the environment, in one place.

Every setting has a safe local default so that ``make run`` works with nothing
configured; in production (``PORTAL_ENV=production``) a missing secret or a
dev default stops start-up with a one-line error naming the variable.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"

# Variables a production deployment must set explicitly.
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL",
                          "FIELD_KEY", "BASE_URL")


class ConfigError(RuntimeError):
    """Raised when the configuration cannot run safely; the message names the variable."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from ``env`` (default ``os.environ``) and ``overrides``."""
    env = dict(os.environ if env is None else env)
    production = env.get("PORTAL_ENV", "development") == "production"
    instance = Path(env.get("PORTAL_INSTANCE", DEFAULT_INSTANCE))

    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
        if missing:
            raise ConfigError(f"{missing[0]} must be set when PORTAL_ENV=production")

    cfg: dict[str, Any] = {
        "PRODUCTION": production,
        "INSTANCE_PATH": str(instance),
        # The Alembic folder: beside the package in a checkout; an installed wheel has none (the image copies it
        # to /app/migrations and sets this). The app's `db` commands and /readyz's head come from it.
        "MIGRATIONS_DIR": env.get("MIGRATIONS_DIR") or str(ROOT / "migrations"),
        "SECRET_KEY": env.get("SECRET_KEY"),
        "FIELD_KEY": env.get("FIELD_KEY"),
        # The application connects as a role that owns nothing (RLS applies to it);
        # migrations connect as the owner role.
        "DATABASE_URL": env.get("DATABASE_URL"),
        "MIGRATION_DATABASE_URL": env.get("MIGRATION_DATABASE_URL"),
        "REDIS_URL": env.get("REDIS_URL"),
        # Sign-in throttling's counters; the queues' Redis (REDIS_URL) unless one of its own (docs/scaling.md).
        "RATELIMIT_REDIS_URL": env.get("RATELIMIT_REDIS_URL"),
        "SMTP_URL": env.get("SMTP_URL"),
        "MAIL_FROM": env.get("MAIL_FROM", "Back-office portal <no-reply@portal.invalid>"),
        "MAIL_OUTBOX_DIR": env.get("MAIL_OUTBOX_DIR"),
        # E-mailed links; `portal dev` points it at the port it serves when it is unset.
        "BASE_URL": env.get("BASE_URL", "http://127.0.0.1:5000"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),  # of the portal's own loggers (portal/logs.py)
        "LOG_FORMAT": env.get("LOG_FORMAT", "json"),  # one JSON object per line; "text" for a person reading
        # /metrics (portal/metrics.py): a scraper sends "Authorization: Bearer <METRICS_TOKEN>". Unset, the
        # endpoint answers 404, unless METRICS_OPEN lets anyone read it (development only).
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "METRICS_OPEN": _bool(env.get("METRICS_OPEN"), False),
        # `portal worker` answers its own /metrics (jobs) on this port, same token; 0: off.
        "WORKER_METRICS_PORT": int(env.get("WORKER_METRICS_PORT") or 0),
        # No pre-ping: a pooled connection is checked as it is taken by looking at its socket (no round trip;
        # portal/extensions.py replace_dropped_connections) and replaced if the server dropped it, so the
        # service recovers by itself after PostgreSQL restarted and no request meets a dead connection
        # (tests/test_faults.py). Connections are recycled before servers time them out.
        # JIT off: PostgreSQL compiled the books' report queries for 200+ ms, longer than they run
        # (bench/ledger.py); a web app's short queries never win that time back.
        # hide_parameters: a statement's values (names, amounts) never reach an error message, hence a log.
        # The pool's sizes: lower them when many instances share one server (docs/scaling.md).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "pool_recycle": 1800,
                                      "pool_size": int(env.get("DB_POOL_SIZE", "10")),
                                      "max_overflow": int(env.get("DB_MAX_OVERFLOW", "10")),
                                      "connect_args": {"options": "-c jit=off"}, "hide_parameters": True},
        # Sessions: server-side rows behind a signed cookie (see portal/auth/sessions.py).
        "SESSION_COOKIE_NAME": "portal_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), production),
        # The cookie holds only a session token checked server side on every request;
        # re-signing it on every response buys nothing.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=int(env.get("SESSION_IDLE_MINUTES", "30"))),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=int(env.get("SESSION_ABSOLUTE_HOURS", "12"))),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=int(env.get("SESSION_ABSOLUTE_HOURS", "12"))),
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "INVITE_TTL": timedelta(days=int(env.get("INVITE_TTL_DAYS", "7"))),
        "RESET_TTL": timedelta(hours=1),
        # Throttling of sign-in, per IP and per account (Flask-Limiter on Redis).
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # keep throttling if Redis is down
        "RATELIMIT_HEADERS_ENABLED": True,  # a 429 says when to retry (Retry-After), as do the X-RateLimit-* headers
        "LOGIN_LIMIT_IP": env.get("LOGIN_LIMIT_IP", "30 per minute"),
        "LOGIN_LIMIT_ACCOUNT": env.get("LOGIN_LIMIT_ACCOUNT", "5 per minute"),
        "ARGON2_TIME_COST": int(env.get("ARGON2_TIME_COST", "2")),
        "ARGON2_MEMORY_KIB": int(env.get("ARGON2_MEMORY_KIB", str(19 * 1024))),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        # The provider's own time zone: its pages over several clients (a tenant's pages use the tenant's).
        "PROVIDER_TIMEZONE": env.get("PROVIDER_TIMEZONE", "Asia/Ho_Chi_Minh"),
        # A person's same read over several clients is logged once per window (0: every page view).
        "CROSS_TENANT_AUDIT_WINDOW_SECONDS": int(env.get("CROSS_TENANT_AUDIT_WINDOW_SECONDS", "900")),
        # What the deletion certificate states about copies kept after offboarding.
        "BACKUP_RETENTION_DAYS": int(env.get("BACKUP_RETENTION_DAYS", "35")),
        "KEY_BACKUP_RETENTION_DAYS": int(env.get("KEY_BACKUP_RETENTION_DAYS", "0")),
        # A client's export waits this long to be downloaded, then it is deleted.
        "EXPORT_TTL_HOURS": int(env.get("EXPORT_TTL_HOURS", "72")),
        # A removed document stays in the trash (restorable by the provider) this many days, then it is
        # purged with its versions and stored objects.
        "TRASH_RETENTION_DAYS": int(env.get("TRASH_RETENTION_DAYS", "90")),
        # A plan's tax rate (basis points: 1000 is 10 %, Vietnam's standard VAT) until the provider sets one.
        "BILLING_DEFAULT_TAX_BP": int(env.get("BILLING_DEFAULT_TAX_BP", "1000")),
        # Dunning: a reminder this many days after an unpaid statement's due day, each stage once; after the
        # last one a tenant's uploads are suspended if (and only if) the provider switched that on for it.
        "BILLING_DUNNING_DAYS": tuple(sorted({int(d) for d in env.get("BILLING_DUNNING_DAYS", "3,7,14").split(",")
                                              if d.strip()})),
        # Who issues the statements and where clients pay by bank transfer (VietQR needs the bank's 6-digit BIN).
        "PROVIDER_NAME": env.get("PROVIDER_NAME", ""),
        "PROVIDER_BANK_NAME": env.get("PROVIDER_BANK_NAME", ""),
        "PROVIDER_BANK_BIN": env.get("PROVIDER_BANK_BIN", ""),
        "PROVIDER_BANK_ACCOUNT": env.get("PROVIDER_BANK_ACCOUNT", ""),
        "PROVIDER_ACCOUNT_NAME": env.get("PROVIDER_ACCOUNT_NAME", ""),
        "LANGUAGES": {"en": "English", "vi": "Tiếng Việt"},
        "API_TITLE": "Back-office portal API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_PAGE_SIZE": 50,
        # In priority order: a worker takes the next job of the first queue that has one, so the heavy
        # intake work (OCR of a long scan) waits behind everything else (previews, e-mail, statements).
        "RQ_QUEUES": ["default", "mail", "intake_heavy"],
        # The vault. Objects: a local folder by default, S3 when STORAGE_BACKEND=s3.
        "STORAGE_BACKEND": env.get("STORAGE_BACKEND", "local"),
        "STORAGE_DIR": env.get("STORAGE_DIR"),
        "S3_BUCKET": env.get("S3_BUCKET"),
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL"),
        "AWS_ENDPOINT_URL": env.get("AWS_ENDPOINT_URL"),
        "KMS_ENDPOINT_URL": env.get("KMS_ENDPOINT_URL"),
        "AWS_REGION": env.get("AWS_REGION", "eu-west-1"),
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY"),
        # Keys: tenant keys in a directory of their own (never in the database, so backups
        # of the data never hold them); the master key is a file there, or AWS KMS.
        "KEY_DIR": env.get("KEY_DIR"),
        "KMS_KEY_ID": env.get("KMS_KEY_ID"),
        "UPLOAD_MAX_BYTES": int(env.get("UPLOAD_MAX_MB", "200")) * 1024 * 1024,
        "TENANT_QUOTA_BYTES": int(env.get("TENANT_QUOTA_GB", "20")) * 1024 ** 3,
        "PREVIEW_MAX_BYTES": int(env.get("PREVIEW_MAX_MB", "64")) * 1024 * 1024,
        # Intake: files read for their text up to this size; scanned pages OCR'd per document at most;
        # how long one reading may take; how long a run holds its record before another may take it
        # over (a worker that died: its run is picked up after this).
        "INTAKE_READ_MAX_BYTES": int(env.get("INTAKE_READ_MAX_MB", "64")) * 1024 * 1024,
        "INTAKE_OCR_MAX_PAGES": int(env.get("INTAKE_OCR_MAX_PAGES", "50")),
        "INTAKE_READ_TIMEOUT": int(env.get("INTAKE_READ_TIMEOUT", "240")),
        "INTAKE_LEASE_SECONDS": int(env.get("INTAKE_LEASE_SECONDS", "600")),
        "INTAKE_HEAVY_BYTES": int(env.get("INTAKE_HEAVY_MB", "2")) * 1024 * 1024,
        "INTAKE_TENANT_SLOTS": int(env.get("INTAKE_TENANT_SLOTS", "4")),
        # E-mail in (portal/intake/mail): each tenant's address is <slug>.<random>@INTAKE_MAIL_DOMAIN (unset in
        # production: mail-in is off). The receiver listens on INTAKE_SMTP_HOST:PORT (`portal mail-in`; `portal
        # dev` on loopback) and refuses messages over INTAKE_MAIL_MAX_MB.
        "INTAKE_MAIL_DOMAIN": env.get("INTAKE_MAIL_DOMAIN", "" if production else "intake.localhost"),
        "INTAKE_SMTP_HOST": env.get("INTAKE_SMTP_HOST", "127.0.0.1"),
        "INTAKE_SMTP_PORT": int(env.get("INTAKE_SMTP_PORT", "2525")),
        "INTAKE_MAIL_MAX_BYTES": int(env.get("INTAKE_MAIL_MAX_MB", "50")) * 1024 * 1024,
        # Downloads up to this size are read and authenticated whole before their first byte is sent, so
        # damage anywhere answers 502 instead of a cut-off file. 16 MiB costs about 7 ms of AES-GCM on one
        # core here and holds at most 16 MiB per download in flight (64 MiB for a gunicorn worker's 4
        # threads); most invoices, statements and scans are far smaller. Larger files stream chunk by chunk
        # and are cut off short of their Content-Length at a damaged chunk (docs/vault-format.md).
        "DOWNLOAD_VERIFY_MAX_BYTES": int(env.get("DOWNLOAD_VERIFY_MAX_MB", "16")) * 1024 * 1024,
        "REMINDER_DAYS_BEFORE": int(env.get("REMINDER_DAYS_BEFORE", "3")),
        # Stripe (portal/billing/stripe_gateway.py): off unless STRIPE_API_KEY is set. The webhook secret
        # verifies the Stripe-Signature of incoming events; STRIPE_API_BASE points the client at a local
        # emulator in tests and is Stripe's own otherwise.
        "STRIPE_API_KEY": env.get("STRIPE_API_KEY"),
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET"),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", "https://api.stripe.com"),
        "STRIPE_WEBHOOK_LIMIT": env.get("STRIPE_WEBHOOK_LIMIT", "600 per minute"),
    }
    if overrides:
        cfg.update(overrides)
    # Folders default to the instance folder, wherever the overrides moved it.
    for name, folder in (("MAIL_OUTBOX_DIR", "outbox"), ("STORAGE_DIR", "objects"), ("KEY_DIR", "keys")):
        cfg[name] = cfg.get(name) or str(Path(cfg["INSTANCE_PATH"]) / folder)

    cfg["LOG_LEVEL"] = str(cfg["LOG_LEVEL"]).strip().upper()
    if cfg["LOG_LEVEL"] not in logging.getLevelNamesMapping():
        raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    cfg["LOG_FORMAT"] = str(cfg["LOG_FORMAT"]).strip().lower()
    if cfg["LOG_FORMAT"] not in {"json", "text"}:
        raise ConfigError("LOG_FORMAT must be json or text")
    if int(cfg["TRASH_RETENTION_DAYS"]) < 1:
        raise ConfigError("TRASH_RETENTION_DAYS must be at least 1: a removed document is never deleted at once")
    if production:
        if not (Path(cfg["MIGRATIONS_DIR"]) / "env.py").is_file():
            # Else /readyz could never say ready (it compares the database with these revisions): say why at start.
            raise ConfigError(f"MIGRATIONS_DIR ({cfg['MIGRATIONS_DIR']}) holds no migrations; set it to the folder"
                              " that does (the image: /app/migrations)")
        for name in ("SECRET_KEY", "FIELD_KEY"):
            if cfg[name] and cfg[name].startswith("dev-"):
                raise ConfigError(f"{name} is a development default; set a real secret")
        if cfg["METRICS_OPEN"]:
            raise ConfigError("METRICS_OPEN must not be set when PORTAL_ENV=production; set METRICS_TOKEN")
        if cfg["STRIPE_API_KEY"] and not cfg["STRIPE_WEBHOOK_SECRET"]:
            raise ConfigError("STRIPE_WEBHOOK_SECRET must be set when STRIPE_API_KEY is set")
        if cfg["STRIPE_API_KEY"] and not str(cfg["STRIPE_API_BASE"]).startswith("https://"):
            raise ConfigError("STRIPE_API_BASE must be an https:// URL when PORTAL_ENV=production")
    return cfg

"""Configuration: safe defaults locally, a refusal to start on a missing secret in production."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal import config
from portal.instance import secret_file

PROD = {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://a@h/d",
        "MIGRATION_DATABASE_URL": "postgresql://o@h/d", "REDIS_URL": "redis://h", "FIELD_KEY": "k",
        "BASE_URL": "https://portal.example.com"}


@pytest.mark.parametrize("missing", config.REQUIRED_IN_PRODUCTION)
def test_production_names_the_missing_variable(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(config.ConfigError, match=f"^{missing} must be set"):
        config.load(env=env)


def test_production_needs_the_public_address_for_e_mailed_links():
    assert "BASE_URL" in config.REQUIRED_IN_PRODUCTION
    assert config.load(env=PROD)["BASE_URL"] == "https://portal.example.com"
    assert config.load(env={})["BASE_URL"] == "http://127.0.0.1:5000"  # development: `portal dev` moves the port


def test_log_level_is_read_and_checked():
    assert config.load(env={})["LOG_LEVEL"] == "INFO"
    assert config.load(env={"LOG_LEVEL": " debug "})["LOG_LEVEL"] == "DEBUG"
    with pytest.raises(config.ConfigError, match="^LOG_LEVEL must be"):
        config.load(env={"LOG_LEVEL": "loud"})


def test_a_refused_sign_in_says_when_to_retry(app, tmp_path):
    """Throttling as configured: the 429 (our own error page) carries Retry-After."""
    import random

    from portal import create_app
    from tests.factories import csrf_token, unique

    settings = {k: app.config[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SECRET_KEY",
                                           "FIELD_KEY", "BASE_URL")}
    fresh = create_app(settings | {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "LOGIN_LIMIT_IP": "2 per minute"})
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"  # counters of its own
    email = f"{unique('nobody')}@example.test"
    client = fresh.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    statuses = []
    for _ in range(3):
        r = client.post("/auth/login", data={"email": email, "password": "not the password",
                                             "csrf_token": csrf_token(client)})
        statuses.append(r.status_code)
    assert statuses == [200, 200, 429]
    assert b"Too many attempts" in r.data
    assert "Retry-After" in r.headers, dict(r.headers)
    assert 1 <= int(r.headers["Retry-After"]) <= 60, r.headers["Retry-After"]


def test_sign_in_counters_go_to_the_rate_limiters_own_redis_when_one_is_set(app, tmp_path):
    """RATELIMIT_REDIS_URL (docs/scaling.md): a flood of sign-in attempts counts there, not beside the queues."""
    import random

    from redis import Redis

    from portal import create_app
    from tests.factories import csrf_token, unique

    queues = Redis.from_url(app.config["REDIS_URL"])
    db_number = queues.connection_pool.connection_kwargs.get("db", 0)
    limits_db = (db_number + 8) % 16
    limits_url = app.config["REDIS_URL"].rsplit("/", 1)[0] + f"/{limits_db}"
    if app.config["REDIS_URL"].startswith("unix://"):  # the embedded Redis: its socket, another database
        limits_url = app.config["REDIS_URL"].split("?")[0] + f"?db={limits_db}"
    limits = Redis.from_url(limits_url)
    settings = {k: app.config[k] for k in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "SECRET_KEY",
                                           "FIELD_KEY", "BASE_URL")}
    fresh = create_app(settings | {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "RATELIMIT_REDIS_URL": limits_url})
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"  # counters of its own
    client = fresh.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    r = client.post("/auth/login", data={"email": f"{unique('counted')}@example.test", "password": "not the password",
                                         "csrf_token": csrf_token(client)})
    assert r.status_code == 200  # refused, and counted (per address; per account under a hash of the address)
    counted = list(limits.scan_iter(f"LIMITS:LIMITER/{ip}/*"))
    assert counted, "no counter in the rate limiter's Redis"
    assert not list(queues.scan_iter(f"LIMITS:LIMITER/{ip}/*"))
    limits.delete(*counted)


def test_production_refuses_to_start_without_its_migrations(tmp_path):
    """An installed package has no migrations beside it; /readyz compares the database with them."""
    assert config.load(env=PROD)["MIGRATIONS_DIR"] == str(config.ROOT / "migrations")  # a checkout's own
    with pytest.raises(config.ConfigError, match=r"^MIGRATIONS_DIR \(.*\) holds no migrations"):
        config.load(env=dict(PROD, MIGRATIONS_DIR=str(tmp_path)))
    assert config.load(env={"MIGRATIONS_DIR": str(tmp_path)})["MIGRATIONS_DIR"] == str(tmp_path)  # development


def test_production_refuses_a_development_secret():
    with pytest.raises(config.ConfigError, match="SECRET_KEY is a development default"):
        config.load(env=dict(PROD, SECRET_KEY="dev-not-secret"))


def test_production_cookies_are_secure_and_development_defaults_are_local():
    assert config.load(env=PROD)["SESSION_COOKIE_SECURE"] is True
    dev = config.load(env={})
    assert dev["SESSION_COOKIE_SECURE"] is False and dev["DATABASE_URL"] is None  # embedded default


def test_the_command_line_says_one_line_and_exits():
    env = {k: v for k, v in os.environ.items() if k not in PROD}
    env["PORTAL_ENV"] = "production"
    portal = os.path.join(os.path.dirname(sys.executable), "portal")
    result = subprocess.run([portal, "tenants", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "portal: SECRET_KEY must be set when PORTAL_ENV=production"
    assert "Traceback" not in result.stderr


def test_processes_starting_together_agree_on_one_whole_local_secret(tmp_path):
    """gunicorn's workers each load the app at once: every one must read the secret the first one made, never a
    file still being written (an empty SECRET_KEY failed every page that worker rendered)."""
    path = tmp_path / "instance" / "secret_key"
    start = threading.Barrier(4)
    made = iter(f"secret-of-starter-{i}" for i in range(4))

    def slow_make() -> str:
        time.sleep(0.3)  # generating the value while the others start
        return next(made)

    def starter() -> str:
        start.wait()
        return secret_file(path, slow_make)

    with ThreadPoolExecutor(4) as pool:
        read = list(pool.map(lambda _: starter(), range(4)))
    assert len(set(read)) == 1 and read[0].startswith("secret-of-starter-"), read
    assert path.read_text() == read[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left behind

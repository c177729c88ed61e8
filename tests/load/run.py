#!/usr/bin/env python3
"""The load and fault test (``make load``): a mixed load with locust, the same pages alone, then faults.

On a stack of its own on loopback: a PostgreSQL cluster started with ``pg_ctl`` in a temp dir (the machine's
PostgreSQL behind a TCP proxy when the server binaries are missing), a redis-server on a spare port (the
machine's Redis, database 12, when there is none: then Redis is not restarted), a moto server (S3 and KMS)
behind a TCP proxy, gunicorn with ``infra/gunicorn.conf.py`` (2 workers) and 2 ``portal worker`` processes.
A fresh database is seeded (``tests/load/seed.py``), then:

1. the mixed load: ``LOAD_USERS`` (200) users for ``LOAD_SECONDS`` (300);
2. the baseline: the same pages, one request at a time, no other load;
3. the faults, one at a time, each under a shorter load (``LOAD_FAULT_USERS``, ``LOAD_FAULT_SECONDS``):
   Redis restarted, PostgreSQL restarted, the S3 endpoint cut for ``LOAD_FAULT_DOWN`` (30) seconds, a
   worker SIGKILLed every ``LOAD_KILL_EVERY`` (5) seconds for ``LOAD_KILL_SECONDS`` (60), and started again;
4. the jobs drained (at most ``LOAD_DRAIN_SECONDS``), then the checks: every accepted upload decrypts to
   its SHA-256, refused ones left no document, every outbox job finished once, each upload's intake ran
   once and linked it to one task.

Goals (exit status 1 when one is missed): zero 5xx under the mixed load; zero lost or damaged uploads; no
page's p95 under load more than 10x its p95 alone; during each fault only 503s with Retry-After, and none
once the part is back. The report (text and JSON) goes to tests/load/reports/ and is printed.

    .venv/bin/python tests/load/run.py                                 # the defaults, 25 to 45 minutes
    LOAD_USERS=50 LOAD_SECONDS=60 LOAD_FAULT_SECONDS=60 .venv/bin/python tests/load/run.py
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.processes import children, cpu_times, http_status, start_gunicorn, start_portal_worker  # noqa: E402
from tests.proxy import TcpProxy  # noqa: E402
from tests.services import MotoServer, RedisServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
REPORTS = HERE / "reports"
DB_NAME = "portal_load"
MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS_DB = 12
RATIO_GOAL = 10.0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass
class Settings:
    users: int = _env_int("LOAD_USERS", 200)
    seconds: int = _env_int("LOAD_SECONDS", 300)
    spawn_rate: int = _env_int("LOAD_SPAWN_RATE", 10)
    fault_users: int = _env_int("LOAD_FAULT_USERS", 0)  # 0: min(50, users)
    fault_seconds: int = _env_int("LOAD_FAULT_SECONDS", 120)
    fault_down: int = _env_int("LOAD_FAULT_DOWN", 30)
    kill_seconds: int = _env_int("LOAD_KILL_SECONDS", 60)
    kill_every: int = _env_int("LOAD_KILL_EVERY", 5)
    baseline_rounds: int = _env_int("LOAD_BASELINE_ROUNDS", 30)
    # A job killed with its worker is handed back once its heartbeat runs out (6 minutes), an intake run by its
    # ten-minute lease: the last drain waits up to 20 minutes, only while something is unfinished.
    drain_seconds: int = _env_int("LOAD_DRAIN_SECONDS", 1200)
    faults: tuple[str, ...] = tuple(f.strip() for f in os.environ.get(
        "LOAD_FAULTS", "redis,postgres,s3,worker").split(",") if f.strip())
    keep: bool = os.environ.get("LOAD_KEEP", "") not in ("", "0")

    def __post_init__(self) -> None:
        self.fault_users = self.fault_users or min(50, self.users)
        if self.seconds > 1800 or self.fault_seconds > 600 or self.drain_seconds > 3600:
            raise SystemExit("keep the run bounded: LOAD_SECONDS <= 1800, LOAD_FAULT_SECONDS <= 600, "
                             "LOAD_DRAIN_SECONDS <= 3600")


def log(message: str) -> None:
    print(f"[load {datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# --- PostgreSQL: a cluster of the run's own, or the machine's behind a proxy ------------------------------

class PgCluster:
    """A PostgreSQL cluster in a temp dir, started and stopped with pg_ctl (as the postgres user when root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="portal-load-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
                   "-c max_connections=200 -c shared_buffers=256MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                  "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class MachinePostgres:
    """The machine's PostgreSQL behind a proxy: "restarting" it cuts the proxy (the server is shared)."""

    def __init__(self) -> None:
        self.proxy = TcpProxy("127.0.0.1", 5432)
        self.url = MACHINE_POSTGRES.replace(":5432", f":{self.proxy.port}")
        self.admin_url = MACHINE_POSTGRES

    def stop(self) -> None:
        self.proxy.cut()

    def start(self) -> None:
        self.proxy.restore()

    def destroy(self) -> None:
        self.proxy.close()


def postgres() -> PgCluster | MachinePostgres:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found and shutil.which("runuser" if os.geteuid() == 0 else "true"):
        with contextlib.suppress(Exception):
            return PgCluster(Path(found[-1]).parent)
        log("could not start a cluster of our own with pg_ctl: the machine's PostgreSQL behind a proxy instead")
    return MachinePostgres()


# --- the stack ----------------------------------------------------------------------------------------

@dataclass
class Stack:
    settings: Settings
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="portal-load-")))
    pg: PgCluster | MachinePostgres | None = None
    redis: RedisServer | None = None
    redis_url: str = ""
    moto: MotoServer | None = None
    s3_proxy: TcpProxy | None = None
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    gunicorn: subprocess.Popen | None = None
    workers: list[subprocess.Popen | None] = field(default_factory=lambda: [None, None])
    base: str = ""
    facts: dict = field(default_factory=dict)
    facts_path: Path | None = None
    superuser: str = ""

    # --- services

    def start_services(self) -> None:
        self.pg = postgres()
        self.superuser = getattr(self.pg, "admin_url", self.pg.url)
        kind = "a cluster of our own (pg_ctl)" if isinstance(self.pg, PgCluster) else "the machine's, proxied"
        log(f"PostgreSQL: {kind} on port {getattr(self.pg, 'port', None) or self.pg.proxy.port}")
        try:
            self.redis = RedisServer(self.tmp / "redis", persist=True)
            self.redis_url = self.redis.url
            log(f"Redis: a redis-server of our own on port {self.redis.port} (append-only file)")
        except RuntimeError:
            if not _port_open(6379):
                raise SystemExit("no redis-server to start and no Redis on 127.0.0.1:6379") from None
            self.redis_url = f"redis://127.0.0.1:6379/{MACHINE_REDIS_DB}"
            log(f"Redis: the machine's, database {MACHINE_REDIS_DB} (it will not be restarted)")
        self.moto = MotoServer()
        self.s3_proxy = TcpProxy("127.0.0.1", self.moto.port)
        bucket = "portal-load"
        self.moto.client("s3").create_bucket(Bucket=bucket,
                                             CreateBucketConfiguration={"LocationConstraint": self.moto.region})
        kms_key = self.moto.client("kms").create_key(Description="portal load")["KeyMetadata"]["KeyId"]
        log(f"S3 and KMS: moto on port {self.moto.port}, reached through a proxy on port {self.s3_proxy.port}")

        from cryptography.fernet import Fernet

        from portal.dbsetup import bootstrap

        urls = bootstrap(self.pg.url, DB_NAME, recreate=True)
        self.config = {
            "DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.owner, "REDIS_URL": self.redis_url,
            "INSTANCE_PATH": str(self.tmp / "instance"), "SECRET_KEY": secrets.token_urlsafe(32),
            "FIELD_KEY": Fernet.generate_key().decode(), "STORAGE_BACKEND": "s3", "S3_BUCKET": bucket,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_proxy.port}", "AWS_REGION": self.moto.region,
            "AWS_ACCESS_KEY_ID": self.moto.access_key, "AWS_SECRET_ACCESS_KEY": self.moto.secret_key,
            "KMS_KEY_ID": kms_key, "KEY_DIR": str(self.tmp / "instance" / "keys"),
            # Every simulated person signs in from 127.0.0.1: the per-IP sign-in limit would stop them.
            "LOGIN_LIMIT_IP": "100000 per minute",
        }
        self.env = {k: v for k, v in os.environ.items()
                    if k not in {"PORTAL_ENV", "SMTP_URL", "STRIPE_API_KEY", "DATABASE_URL", "REDIS_URL"}}
        self.env.update({**self.config, "PORTAL_ENV": "development", "PORTAL_INSTANCE": self.config["INSTANCE_PATH"],
                         "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})

    def app(self):  # noqa: ANN201 - a Flask app on the run's database, in this process
        from portal import create_app

        overrides = {k: v for k, v in self.config.items() if k not in {"LOGIN_LIMIT_IP"}}
        return create_app(overrides)

    def migrate_and_seed(self) -> None:
        from flask_migrate import upgrade

        from tests.load.seed import Sizes, seed

        s = self.settings
        app = self.app()
        with app.app_context():
            upgrade()
            started = time.monotonic()
            # Enough open tasks that the staff's queues never run dry (about 1.5 per user and tenant).
            sizes = Sizes(tasks_per_tenant=max(40, s.users * 3 // 2))
            self.facts = seed(s.users, {"main": s.users, "fault": s.fault_users, "baseline": 1}, sizes)
            log(f"seeded {len(self.facts['tenants'])} tenants and "
                f"{sum(len(r) for p in self.facts['accounts'].values() for r in p.values())} accounts "
                f"in {time.monotonic() - started:.0f} s")
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()
        self.facts_path = self.tmp / "facts.json"
        self.facts_path.write_text(json.dumps(self.facts))

    # --- processes

    def start_web(self) -> None:
        try:
            self.gunicorn, self.base = start_gunicorn(self.env, self.tmp / "gunicorn.log", workers=2)
        except RuntimeError as err:
            raise SystemExit(str(err)) from None
        log(f"gunicorn (2 workers, infra/gunicorn.conf.py) on {self.base}")

    def start_worker(self, i: int) -> None:
        self.workers[i] = start_portal_worker(self.env, self.tmp / f"worker-{i}.log", scheduler=i == 0)

    def web_workers(self) -> list[int]:
        return children(self.gunicorn.pid) if self.gunicorn else []

    def stop(self) -> None:
        for proc in [*self.workers, self.gunicorn]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.gunicorn]:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # the process group this script started
                    proc.wait(10)
        if self.s3_proxy:
            self.s3_proxy.close()
        if self.moto:
            self.moto.stop()
        if self.redis:
            self.redis.stop()
        if self.pg:
            if isinstance(self.pg, MachinePostgres):
                self.pg.start()
                with contextlib.suppress(Exception):
                    import psycopg

                    with psycopg.connect(self.superuser, autocommit=True) as conn:
                        conn.execute(f'drop database if exists "{DB_NAME}" with (force)')
            if self.settings.keep and isinstance(self.pg, PgCluster):
                with contextlib.suppress(Exception):
                    self.pg.stop()  # its files stay for a look
            else:
                self.pg.destroy()
        if not self.settings.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- locust ---------------------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    started: float
    ended: float
    records: list[tuple]
    uploads: list[dict]
    events: list[tuple[float, str]] = field(default_factory=list)  # (time, what happened)


def locust(stack: Stack, name: str, *, users: int, seconds: int, mode: str = "mixed", phase: str = "main",
           during=None) -> Phase:  # noqa: ANN001 - during: a callable run while the load runs
    records, uploads = stack.tmp / f"{name}.records.jsonl", stack.tmp / f"{name}.uploads.jsonl"
    env = dict(os.environ, LOAD_FACTS=str(stack.facts_path), LOAD_PHASE=phase, LOAD_MODE=mode,
               LOAD_RECORDS=str(records), LOAD_UPLOADS=str(uploads), PYTHONPATH=str(ROOT),
               LOAD_BASELINE_ROUNDS=str(stack.settings.baseline_rounds))
    args = [str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless", "--host", stack.base,
            "-u", str(users), "-r", str(min(users, stack.settings.spawn_rate)), "--only-summary",
            "--stop-timeout", "15", "--loglevel", "WARNING"]
    if mode != "baseline":
        args += ["-t", f"{seconds}s"]
    started = time.time()
    phase_obj = Phase(name, started, started, [], [])
    with (stack.tmp / f"{name}.locust.log").open("ab") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
        try:
            if during is not None:
                during(phase_obj)
            proc.wait(timeout=(seconds if mode != "baseline" else 1800) + 120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    phase_obj.ended = time.time()
    if not records.exists():
        tail = (stack.tmp / f"{name}.locust.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"locust recorded nothing in phase {name} (exit {proc.returncode}):\n{tail}")
    if records.exists():
        phase_obj.records = [tuple(json.loads(line)) for line in records.read_text().splitlines()]
    if uploads.exists():
        phase_obj.uploads = [json.loads(line) for line in uploads.read_text().splitlines()]
    return phase_obj


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


def endpoint_stats(phase: Phase, since: float | None = None, until: float | None = None) -> dict[str, dict]:
    """Per request name: requests, failures, 5xx, 503s with Retry-After, req/s, p50/p95/p99 (ms), from the
    requests sent between ``since`` and ``until`` (the whole phase by default)."""
    since = since or phase.started
    until = until or phase.ended
    by_name: dict[str, list[tuple]] = {}
    for row in phase.records:
        if since <= row[0] <= until:
            by_name.setdefault(row[1], []).append(row)
    out = {}
    for name, rows in sorted(by_name.items()):
        times = [r[4] for r in rows]
        out[name] = {
            "requests": len(rows), "failures": sum(1 for r in rows if r[6]),
            "5xx": sum(1 for r in rows if r[3] >= 500 or r[3] == 0),
            "503_retry_after": sum(1 for r in rows if r[3] == 503 and r[5]),
            "rps": len(rows) / max(1.0, until - since),
            "p50": percentile(times, 50), "p95": percentile(times, 95), "p99": percentile(times, 99),
        }
    return out


# --- the faults ----------------------------------------------------------------------------------------

def fault_phase(stack: Stack, kind: str) -> dict:
    s = stack.settings
    ramp = s.fault_users / max(1, s.spawn_rate) + 10
    marks: dict[str, float] = {}
    kills: list[int] = []

    def inject(phase: Phase) -> None:
        time.sleep(ramp)
        marks["down"] = time.time()
        if kind == "redis":
            stack.redis.stop()
            time.sleep(min(s.fault_down, 10))  # a restart: down a few seconds, then back with its data
            stack.redis.start()
        elif kind == "postgres":
            stack.pg.stop()
            time.sleep(min(s.fault_down, 10))
            stack.pg.start()
        elif kind == "s3":
            stack.s3_proxy.cut()
            time.sleep(s.fault_down)
            stack.s3_proxy.restore()
        elif kind == "worker":
            end = time.time() + s.kill_seconds
            i = 0
            while time.time() < end:
                proc = stack.workers[i % 2]
                if proc is not None and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    kills.append(proc.pid)
                stack.start_worker(i % 2)  # as a supervisor would
                i += 1
                time.sleep(s.kill_every)
        marks["up"] = time.time()
        deadline = time.time() + 120
        while time.time() < deadline:  # the first time every part answers again (readiness)
            if http_status(stack.base + "/readyz") == 200:
                marks["ready"] = time.time()
                break
            time.sleep(0.5)

    log(f"fault {kind}: {s.fault_users} users for {s.fault_seconds} s")
    seconds = max(s.fault_seconds, int(ramp + (s.kill_seconds if kind == "worker" else s.fault_down) + 40))
    phase = locust(stack, f"fault-{kind}", users=s.fault_users, seconds=seconds, phase="fault", during=inject)
    down, up = marks.get("down", phase.started), marks.get("up", phase.ended)
    ready = marks.get("ready")
    settle = (ready or up) + 5  # a request sent before the part was back may still answer 503
    rows = phase.records
    unavailable = [r for r in rows if r[3] == 503 and r[5]]
    other_5xx = [r for r in rows if (r[3] >= 500 and not (r[3] == 503 and r[5])) or r[3] == 0]
    after = [r for r in rows if r[0] >= settle and (r[3] >= 500 or r[3] == 0)]
    by_name: dict[str, int] = {}
    for r in unavailable:
        by_name[r[1]] = by_name.get(r[1], 0) + 1
    others: dict[str, int] = {}
    for r in other_5xx:
        key = f"{r[3] or 'no answer'} {r[1]}"
        others[key] = others.get(key, 0) + 1
    return {
        "fault": kind, "users": s.fault_users, "seconds": round(phase.ended - phase.started),
        "down_seconds": round(up - down, 1), "ready_after_up_seconds": round(ready - up, 1) if ready else None,
        "requests": len(rows), "503_retry_after": len(unavailable), "503_by_endpoint": by_name,
        "other_5xx": len(other_5xx), "other_5xx_by_endpoint": others, "errors_after_recovery": len(after),
        "worker_kills": len(kills), "recovered": ready is not None and not after,
        "uploads": phase.uploads, "phase": phase,
    }


# --- after the run: uploads, jobs ------------------------------------------------------------------------

def drain(stack: Stack, seconds: int) -> dict:
    """Wait for the outbox and intake to finish; how long it took and what is left."""
    import psycopg

    url = _superuser_db_url(stack)
    started = time.monotonic()
    while True:
        with psycopg.connect(url) as conn:
            pending = conn.execute("select count(*) from outbox_jobs where finished_at is null").fetchone()[0]
            intake = conn.execute("select count(*) from intake_records where state in ('waiting', 'running')"
                                  ).fetchone()[0]
        if (pending == 0 and intake == 0) or time.monotonic() - started > seconds:
            return {"seconds": round(time.monotonic() - started), "outbox_pending": pending,
                    "intake_unfinished": intake}
        time.sleep(5)


def _superuser_db_url(stack: Stack) -> str:
    from sqlalchemy import make_url

    return make_url(stack.superuser).set(database=DB_NAME).render_as_string(hide_password=False)


def check_uploads(stack: Stack, uploads: list[dict]) -> dict:
    """Every upload the portal accepted decrypts to what was sent; every other left no document behind."""
    from sqlalchemy import select

    from portal.documents.models import Document
    from portal.documents.services import read_object
    from portal.extensions import db
    from tenants.context import Scope, bound

    tenant_ids = {t["slug"]: uuid.UUID(t["id"]) for t in stack.facts["tenants"]}
    accepted = [u for u in uploads if u["http"] == 200 and u["status"] in ("stored", "version", "duplicate")]
    refused = [u for u in uploads if u not in accepted]
    result = {"accepted": len(accepted), "intact": 0, "lost": [], "damaged": [], "refused": len(refused),
              "refused_but_kept": [], "refused_by_code": {}}
    for u in refused:
        key = f"{u['http']} {u.get('code') or u.get('status') or 'for the whole request'}"
        result["refused_by_code"][key] = result["refused_by_code"].get(key, 0) + 1
    app = stack.app()
    with app.app_context():
        for u in uploads:
            with bound(Scope(tenant_ids=frozenset({tenant_ids[u["tenant"]]}))):
                docs = db.session.scalars(select(Document).where(Document.title == u["name"])).all()
                if u in accepted:
                    if len(docs) != 1:
                        result["lost"].append(u["name"])
                        continue
                    plain = b"".join(read_object(docs[0].latest.object))
                    if hashlib.sha256(plain).hexdigest() == u["sha256"]:
                        result["intact"] += 1
                    else:
                        result["damaged"].append(u["name"])
                elif docs:
                    # A 503 when the database went away during the commit: it may have committed all the same.
                    # Kept whole (checked like an accepted one), it is not half-stored.
                    plain = b"".join(read_object(docs[0].latest.object))
                    whole = hashlib.sha256(plain).hexdigest() == u["sha256"]
                    result["refused_but_kept"].append({"name": u["name"], "http": u["http"], "whole": whole})
            db.session.rollback()
        db.session.remove()
        db.engine.dispose()
    return result


def check_jobs(stack: Stack) -> dict:
    """The outbox: created, finished once, pending, given up; intake once per upload and one task link each."""
    return count_jobs(_superuser_db_url(stack), stack.redis_url)


def count_jobs(url: str, redis_url: str, *, tenant_id: uuid.UUID | None = None, since_job: int = 0) -> dict:
    """``check_jobs`` on the database at ``url``: every outbox row after ``since_job`` and every upload titled
    "invoice *.pdf", or only ``tenant_id``'s (bound for row-level security too, so the app role may count them):
    a test's own rows in a database other tests share (tests/test_scale_out.py)."""
    import psycopg

    with psycopg.connect(url) as conn:
        if tenant_id is not None:
            conn.execute("select set_config('app.tenant_ids', %s, true)", (str(tenant_id),))
        mine = {"since": since_job, "tenant": str(tenant_id) if tenant_id else None}
        outbox = conn.execute("""
            select count(*), count(*) filter (where finished_at is not null and last_error is null),
                   count(*) filter (where finished_at is null),
                   count(*) filter (where finished_at is not null and last_error is not null),
                   count(*) filter (where attempts > 1)
            from outbox_jobs where id > %(since)s""", mine).fetchone()
        by_name = dict(conn.execute("""select name, count(*) filter (where finished_at is null)
                                       from outbox_jobs where id > %(since)s group by name having count(*) filter
                                       (where finished_at is null) > 0""", mine).fetchall())
        pending = conn.execute("select id, attempts from outbox_jobs where id > %(since)s and finished_at is null",
                               mine).fetchall()
        intake = conn.execute("""
            select count(*),
                   count(*) filter (where n = 0), count(*) filter (where n > 1),
                   count(*) filter (where state_ok = 0 and n > 0),
                   count(*) filter (where links = 0), count(*) filter (where links > 1),
                   coalesce(sum(attempts), 0), count(*) filter (where attempts > 1)
            from (select d.id,
                         (select count(*) from intake_records r where r.document_id = d.id
                            and r.version = d.current_version) as n,
                         (select count(*) from intake_records r where r.document_id = d.id
                            and r.version = d.current_version and r.state in ('done', 'failed')) as state_ok,
                         (select coalesce(max(r.attempts), 0) from intake_records r where r.document_id = d.id
                            and r.version = d.current_version) as attempts,
                         (select count(*) from task_events e where e.kind = 'document_linked'
                            and e.data->>'document_id' = d.id::text) as links
                  from documents d where d.title like 'invoice %%.pdf'
                    and (%(tenant)s::uuid is null or d.tenant_id = %(tenant)s::uuid)) as per_document""",
                              mine).fetchone()
    rq_status: dict[str, int] = {}
    if pending:
        from redis import Redis

        redis = Redis.from_url(redis_url)
        for job_id, attempts in pending:
            state = redis.hget(f"rq:job:outbox-{job_id}-{max(0, attempts - 1)}", "status") if attempts else b"unsent"
            key = state.decode() if state else "not in rq"
            rq_status[key] = rq_status.get(key, 0) + 1
    return {
        "outbox": {"created": outbox[0], "finished": outbox[1], "pending": outbox[2], "gave_up": outbox[3],
                   "pushed_more_than_once": outbox[4], "pending_by_name": by_name, "pending_in_rq": rq_status},
        "intake": {"documents": intake[0], "no_record": intake[1], "several_records": intake[2],
                   "unfinished": intake[3], "not_linked_to_a_task": intake[4], "linked_twice": intake[5],
                   "claims": intake[6], "claimed_more_than_once": intake[7]},
    }


# --- the report -------------------------------------------------------------------------------------------

def report(stack: Stack, main: Phase, baseline: Phase, faults: list[dict], uploads: dict, jobs: dict,
           drained: dict, spread: dict) -> tuple[str, dict, list[str]]:
    s = stack.settings
    # Latencies once every user has started and the processes are warm (the first request of each template,
    # key and client in a process costs more); 5xx are counted over the whole phase.
    warm = main.started + s.users / max(1, s.spawn_rate) + 10
    warm = warm if main.ended - warm >= 30 else main.started
    under = endpoint_stats(main, since=warm)
    alone = endpoint_stats(baseline)
    everything = endpoint_stats(main)
    missed: list[str] = []
    lines = [f"portal load test, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: {os.cpu_count()} cores, "
             f"gunicorn 2 workers x {os.environ.get('GUNICORN_THREADS', '4')} threads, 2 rq workers; "
             f"{s.users} users for {s.seconds} s (locust, loopback)",
             "figures from a shared machine: other work on it moves them; compare ratios within one run", ""]
    header = (f"{'endpoint':<44} {'reqs':>6} {'fail':>5} {'5xx':>4} {'req/s':>6} {'p50':>7} {'p95':>7} {'p99':>7}"
              f" {'p95 alone':>9} {'ratio':>6}")
    lines += ["under load (ms), and the same request alone:", header]
    table = {}
    for name, st in under.items():
        base = alone.get(name)
        ratio = st["p95"] / base["p95"] if base and base["p95"] > 0 else None
        table[name] = {**st, "p95_alone": base["p95"] if base else None, "ratio": ratio}
        lines.append(f"{name:<44} {st['requests']:>6} {st['failures']:>5} {st['5xx']:>4} {st['rps']:>6.1f} "
                     f"{st['p50']:>7.0f} {st['p95']:>7.0f} {st['p99']:>7.0f} "
                     f"{base['p95'] if base else float('nan'):>9.0f} "
                     f"{ratio if ratio is not None else float('nan'):>6.1f}")
        if ratio is not None and ratio > RATIO_GOAL:
            missed.append(f"{name}: p95 under load {ratio:.1f}x its p95 alone (goal <= {RATIO_GOAL:g}x)")
    total = sum(st["requests"] for st in everything.values())
    five = sum(st["5xx"] for st in everything.values())
    lines.append(f"{'all, the whole phase (sign-in and warm-up too)':<44} {total:>6} "
                 f"{sum(st['failures'] for st in everything.values()):>5} {five:>4} "
                 f"{total / max(1, main.ended - main.started):>6.1f}")
    lines.append(f"(latencies from {warm - main.started:.0f} s into the phase, once every user has started; "
                 f"'p95 alone': {s.baseline_rounds} requests each, one at a time)")
    if five:
        worst = Counter(f"{row[3] or 'no answer'} {row[1]}" for row in main.records if row[3] >= 500 or row[3] == 0)
        lines.append("5xx or no answer: " + ", ".join(f"{k} {v}" for k, v in sorted(worst.items())))
        if causes := Counter(str(row[6]) for row in main.records if row[3] == 0):
            lines.append("no answer, why: " + ", ".join(f"{k} {v}" for k, v in sorted(causes.items())))
        missed.append(f"{five} answers of 5xx (or no answer) under the mixed load (goal: none)")
    lines += ["", "gunicorn workers' CPU during the mixed load (s): " + ", ".join(
        f"{cpu:.0f}" for cpu in spread.get("web", [])) + "   rq workers: " + ", ".join(
        f"{cpu:.0f}" for cpu in spread.get("rq", []))]

    lines += ["", f"uploads: {uploads['accepted']} accepted, {uploads['intact']} read back to their SHA-256, "
              f"{len(uploads['lost'])} lost, {len(uploads['damaged'])} damaged; {uploads['refused']} not stored "
              f"({', '.join(f'{k}: {v}' for k, v in sorted(uploads['refused_by_code'].items())) or 'none'}), "
              f"{len(uploads['refused_but_kept'])} of them stored after all "
              f"({sum(1 for u in uploads['refused_but_kept'] if u['whole'])} whole)"]
    if uploads["lost"] or uploads["damaged"]:
        missed.append(f"uploads lost {len(uploads['lost'])}, damaged {len(uploads['damaged'])} (goal: none)")
    if any(not u["whole"] for u in uploads["refused_but_kept"]):
        missed.append("an upload answered 'not stored' left a document that does not read back whole")

    lines += ["", "faults (each under its own shorter load):",
              f"{'fault':<10} {'down s':>6} {'ready s':>7} {'reqs':>6} {'503+RA':>6} {'other 5xx':>9} "
              f"{'5xx after':>9} {'kills':>5}  recovered"]
    for f in faults:
        lines.append(f"{f['fault']:<10} {f['down_seconds']:>6} {str(f['ready_after_up_seconds']):>7} "
                     f"{f['requests']:>6} {f['503_retry_after']:>6} {f['other_5xx']:>9} "
                     f"{f['errors_after_recovery']:>9} {f['worker_kills']:>5}  {'yes' if f['recovered'] else 'NO'}")
        if f["503_by_endpoint"]:
            lines.append("           503s: " + ", ".join(f"{k} {v}" for k, v in sorted(f["503_by_endpoint"].items())))
        if f["other_5xx_by_endpoint"]:
            lines.append("           other: " + ", ".join(
                f"{k} {v}" for k, v in sorted(f["other_5xx_by_endpoint"].items())))
        if f["other_5xx"]:
            missed.append(f"fault {f['fault']}: {f['other_5xx']} answers that were not a 503 with Retry-After")
        if not f["recovered"]:
            missed.append(f"fault {f['fault']}: the service did not recover by itself")

    o, i = jobs["outbox"], jobs["intake"]
    lines += ["", f"jobs (after {drained['seconds']} s of draining): outbox {o['created']} created, {o['finished']} "
              f"finished, {o['pending']} pending, {o['gave_up']} given up, {o['pushed_more_than_once']} pushed "
              f"more than once" + (f"; pending: {o['pending_by_name']}, in rq: {o['pending_in_rq']}"
                                   if o["pending_by_name"] else ""),
              f"intake of the {i['documents']} uploaded invoices: {i['no_record']} without a record, "
              f"{i['several_records']} with several, {i['unfinished']} unfinished; linked to no task "
              f"{i['not_linked_to_a_task']}, to two or more {i['linked_twice']}; "
              f"{i['claimed_more_than_once']} claimed more than once (a run resumed after a kill)"]
    if o["pending"] or o["gave_up"]:
        missed.append(f"jobs: {o['pending']} pending and {o['gave_up']} given up after draining (goal: none lost)")
    if i["no_record"] or i["several_records"] or i["linked_twice"] or i["not_linked_to_a_task"] or i["unfinished"]:
        missed.append("intake: an upload's intake did not run exactly once to its task")
    lines += ["", "goals: " + ("all met" if not missed else "MISSED"), *[f"  - {m}" for m in missed]]
    data = {"settings": s.__dict__, "endpoints": table, "total_requests": total, "5xx": five,
            "spread": spread, "uploads": uploads, "faults": [{k: v for k, v in f.items() if k != "phase"}
                                                            for f in faults],
            "jobs": jobs, "drain": drained, "missed": missed}
    return "\n".join(lines), data, missed


def keep_errors(stack: Stack, path: Path) -> None:
    """The ERROR lines of gunicorn and the workers (JSON, ids only: portal/logs.py), to read a 5xx's cause after the
    temp dir is gone; a traceback's frames are kept, its first 4,000 characters."""
    with path.open("w") as out:
        for log_file in sorted(stack.tmp.glob("*.log")):
            if log_file.name.endswith(".locust.log"):
                continue
            for line in log_file.read_text(errors="replace").splitlines():
                if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or "[CRITICAL]" in line:
                    out.write(f"{log_file.name}: {line[:4000]}\n")


def main() -> int:
    settings = Settings()
    stack = Stack(settings)
    try:
        stack.start_services()
        stack.migrate_and_seed()
        stack.start_web()
        stack.start_worker(0)
        stack.start_worker(1)
        log("workers are taking the seeded jobs (statements, intake) before the load starts")
        drain(stack, 300)

        log(f"mixed load: {settings.users} users for {settings.seconds} s")
        before = {pid: cpu_times(pid)[0] for pid in stack.web_workers()}
        rq_before = {w.pid: cpu_times(w.pid)[0] for w in stack.workers if w}
        main_phase = locust(stack, "main", users=settings.users, seconds=settings.seconds)
        spread = {"web": [cpu_times(pid)[0] - cpu for pid, cpu in before.items()],
                  "rq": [cpu_times(pid)[0] - cpu for pid, cpu in rq_before.items()]}
        log("baseline: the same pages one at a time")
        baseline = locust(stack, "baseline", users=1, seconds=0, mode="baseline", phase="baseline")

        faults = []
        for kind in settings.faults:
            if kind == "redis" and stack.redis is None:
                log("fault redis skipped: the machine's Redis is shared, it is not restarted")
                continue
            faults.append(fault_phase(stack, kind))
            drain(stack, 120)  # each fault starts from a quiet queue

        log(f"draining the jobs (at most {settings.drain_seconds} s)")
        drained = drain(stack, settings.drain_seconds)
        all_uploads = main_phase.uploads + [u for f in faults for u in f["uploads"]] + baseline.uploads
        uploads = check_uploads(stack, all_uploads)
        jobs = check_jobs(stack)
        text, data, missed = report(stack, main_phase, baseline, faults, uploads, jobs, drained, spread)
        REPORTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        keep_errors(stack, REPORTS / f"load-{stamp}.errors.log")
        (REPORTS / f"load-{stamp}.txt").write_text(text + "\n")
        (REPORTS / f"load-{stamp}.json").write_text(json.dumps(data, indent=2, default=str))
        print("\n" + text + f"\n\nreport: tests/load/reports/load-{stamp}.txt (and .json)")
        return 1 if missed else 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: how keep-alive connections spread over the gunicorn workers.

Starts gunicorn with infra/gunicorn.conf.py (gthread; by default 2 x cores + 1 workers) on 127.0.0.1
and a free port and, as soon as it answers (one worker has loaded its app: what a load balancer or a
load test sees), loads ``/healthz`` with ``wrk -t2 -c16``: 16 keep-alive connections, opened at once.
Once every worker has loaded its app (each logs "Worker ready"), it reads each worker's CPU time (utime
+ stime in /proc/<pid>/stat) for ``--duration`` seconds: each worker's share of the CPU the workers
used, and wrk's requests/s over its whole run.

Two configurations, each in fresh servers, ``--runs`` times:

  before   the listening socket of the master, shared by every worker (GUNICORN_REUSE_PORT=0): all the
           workers wait on one socket and the first one awake accepts, often every connection at once;
  after    the configuration as it is: each worker also binds a SO_REUSEPORT socket of its own, in one
           group with the master's, and the kernel spreads new connections over them by a hash of their
           addresses.

    .venv/bin/python bench/spread.py                    # 2 runs x 5 s of each: under a minute when idle
    .venv/bin/python bench/spread.py --runs 5 --duration 10 --workers 3 --json /tmp/spread.json

No database is read (/healthz), so none is needed: the app is given addresses it never connects to.
Everything binds and connects to loopback; every run is bounded in time; gunicorn is stopped (SIGTERM,
then its process group is killed) even when the run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.processes, run from anywhere

from tests.processes import children, cpu_times  # noqa: E402
from tests.services import free_port  # noqa: E402

HOST = "127.0.0.1"
CONFIGS = {"before": {"GUNICORN_REUSE_PORT": "0"}, "after": {}}


def workers_of(master: int) -> list[int]:
    return sorted(children(master))


@contextlib.contextmanager
def gunicorn(tmp: Path, overrides: dict[str, str], workers: int | None):  # noqa: ANN201
    """gunicorn with infra/gunicorn.conf.py on a free loopback port; yields (base URL, master pid)."""
    from cryptography.fernet import Fernet

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))
           and k not in {"PORTAL_ENV", "S3_BUCKET", "KMS_KEY_ID", "STRIPE_API_KEY", "WEB_CONCURRENCY"}}
    nowhere = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # /healthz reads no database
    env.update(PORT=f"{HOST}:{port}", PORTAL_ENV="development", PORTAL_INSTANCE=str(tmp / "instance"),
               DATABASE_URL=nowhere, MIGRATION_DATABASE_URL=nowhere, REDIS_URL=f"redis://{HOST}:9/0",
               SECRET_KEY=secrets.token_urlsafe(32), FIELD_KEY=Fernet.generate_key().decode(),
               GUNICORN_ACCESS_LOG="off", GUNICORN_MAX_REQUESTS="0", **overrides)
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    log = tmp / f"gunicorn-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "infra" / "gunicorn.conf.py"),
                                 "wsgi:app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://{HOST}:{port}"
    expected = workers or (os.cpu_count() or 1) * 2 + 1
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            # Up as soon as one worker answers, as a load balancer sees it (the others may still be loading).
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200 and len(workers_of(proc.pid)) >= expected:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not come up in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base, proc.pid, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this script started
            proc.wait(10)


def measure(wrk: str, tmp: Path, name: str, args: argparse.Namespace) -> dict:
    """wrk opens its connections as soon as the server answers; the CPU is counted from the moment every
    worker has loaded its app (``Worker ready``) for ``args.duration`` seconds: how the connections opened at
    the start are served once all the workers could serve them."""
    expected = args.workers or (os.cpu_count() or 1) * 2 + 1
    with gunicorn(tmp, CONFIGS[name], args.workers) as (base, master, log):
        load = subprocess.Popen([wrk, "-t", str(args.wrk_threads), "-c", str(args.connections),
                                 "-d", f"{args.duration + 90:g}s", "--timeout", "5s", f"{base}/healthz"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("Worker ready") < expected:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the workers did not all load in 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            pids = workers_of(master)
            before = {pid: cpu_times(pid)[0] for pid in pids}
            started = time.monotonic()
            time.sleep(args.duration)
            used = {pid: max(0.0, cpu_times(pid)[0] - before[pid]) for pid in pids}
            seconds = time.monotonic() - started
        finally:
            load.send_signal(signal.SIGINT)  # wrk stops and prints its summary
            out = load.communicate(timeout=30)[0]
    match = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    rps = float(match.group(1)) if match else float("nan")
    assert seconds > 0
    total = sum(used.values()) or 1e-9
    shares = sorted((100 * cpu / total for cpu in used.values()), reverse=True)
    return {"config": name, "rps": rps, "cpu_s": total, "shares": shares}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="fresh servers per configuration (default 2)")
    parser.add_argument("--duration", type=float, default=5, help="seconds of load per run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: the config's 2*cores+1)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.duration > 60 or args.runs > 10:
        parser.error("keep runs bounded: --duration <= 60, --runs <= 10")
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is needed (Debian package wrk; `make system-deps` installs it)")

    tmp = Path(tempfile.mkdtemp(prefix="portal-spread-"))
    results = []
    try:
        for _run in range(args.runs):
            for name in CONFIGS:  # alternated, so that a noisy moment hits both
                results.append(measure(wrk, tmp, name, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    workers = args.workers or (os.cpu_count() or 1) * 2 + 1
    print(f"\nconnection spread: gunicorn gthread, {workers} workers, {os.cpu_count()} cores; wrk -t{args.wrk_threads} "
          f"-c{args.connections}, {args.duration:g} s on /healthz per run, loopback\n")
    print(f"{'config':<8} {'run':>3} {'req/s':>8} {'busiest':>8}  per-worker CPU share (%), busiest first")
    for name in CONFIGS:
        for i, r in enumerate(x for x in results if x["config"] == name):
            print(f"{name:<8} {i + 1:>3} {r['rps']:>8.0f} {r['shares'][0]:>7.0f}%  "
                  + " / ".join(f"{s:.0f}" for s in r["shares"]))
    print("\n(an even spread over the workers would be "
          f"{100 / workers:.0f}% each; 'busiest' is the largest share)")
    for name in CONFIGS:
        mine = [r for r in results if r["config"] == name]
        print(f"{name:<8} mean busiest share {sum(r['shares'][0] for r in mine) / len(mine):.0f}%, "
              f"mean {sum(r['rps'] for r in mine) / len(mine):.0f} req/s")
    if args.json:
        args.json.write_text(json.dumps({"workers": workers, "cores": os.cpu_count(), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`portal scheduler` and `portal worker --no-scheduler`: a deployment runs exactly one process that
enqueues the periodic jobs (infra/compose.yaml, infra/k8s), and workers that only work."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from portal.extensions import db
from tests.factories import make_tenant
from tests.processes import portal_env
from workers.models import ScheduleRun

# The per-tenant periodic jobs of workers/schedule.py, written out: each active tenant gets one of each.
PER_TENANT = {"documents.reminders", "work.recurring", "work.due_soon", "documents.purge_trash",
              "billing.statement", "billing.dunning"}


def _claims_of(tenant_id) -> set[str]:  # noqa: ANN001
    db.session.rollback()
    names = db.session.scalars(select(ScheduleRun.name).where(ScheduleRun.name.like(f"%:{tenant_id}"))).all()
    return {name.rsplit(":", 1)[0] for name in names}


def _claims_in(period_prefix: str) -> int:
    db.session.rollback()
    return len(db.session.scalars(select(ScheduleRun.name).where(ScheduleRun.period.like(f"{period_prefix}%")))
               .all())


def test_scheduler_once_enqueues_every_due_period_once(app, ctx):
    tenant = make_tenant()
    db.session.commit()
    # A moment of its own, on the hour (every job is due), far from the clock other tests use.
    moment = datetime(2400 + secrets.randbelow(500), 5, 6, 7, 0, tzinfo=UTC)
    runner = app.test_cli_runner()
    with time_machine.travel(moment, tick=False):
        first = runner.invoke(args=["scheduler", "--once"])
        second = runner.invoke(args=["scheduler", "--once"])
    assert first.exit_code == 0, first.output
    assert _claims_of(tenant.id) == PER_TENANT
    assert int(first.output.split()[0]) >= len(PER_TENANT) + 4  # and the provider's four, once each
    assert second.exit_code == 0 and second.output.strip() == "0 periodic jobs enqueued"


def _start(app, db_urls, moment: datetime, *argv: str) -> subprocess.Popen:  # noqa: ANN001
    """``portal <argv>`` in a process of its own whose clock (for the scheduler) reads ``moment``."""
    script = (
        "import datetime, sys\n"
        "import workers.schedule\n"
        f"workers.schedule.utcnow = lambda: datetime.datetime.fromisoformat({moment.isoformat()!r})\n"
        "from portal.cli import main\n"
        f"sys.argv = ['portal', *{list(argv)!r}]\n"
        "main()\n"
    )
    env = portal_env(app, db_urls)
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return -9, out.decode(errors="replace")
    return proc.returncode, out.decode(errors="replace")


def _wait_for(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def test_a_worker_started_with_no_scheduler_never_ticks_and_the_default_one_does(app, ctx, db_urls):
    """Both run side by side on a queue nobody uses, each with a clock of its own; only the default one
    claims its periods (its relay loop ticks every 5 s)."""
    year = 2400 + secrets.randbelow(500)
    ticking = datetime(year, 8, 9, 10, 0, tzinfo=UTC)
    quiet = datetime(year, 11, 12, 13, 0, tzinfo=UTC)
    idle = f"idle-{secrets.token_hex(4)}"
    default = _start(app, db_urls, ticking, "worker", "--queues", idle)
    no_scheduler = _start(app, db_urls, quiet, "worker", "--queues", idle, "--no-scheduler")
    try:
        assert _wait_for(lambda: _claims_in(f"{ticking:%Y-%m-%d}") > 0, 60), "the default worker never ticked"
        time.sleep(7)  # more than one round of the other's relay loop
        assert _claims_in(f"{quiet:%Y-%m-%d}") == 0
    finally:
        _stop(default)
        code, out = _stop(no_scheduler)
    assert code == 0, out[-2000:]


def test_the_scheduler_ticks_until_sigterm_then_exits_cleanly(app, ctx, db_urls):
    moment = datetime(2400 + secrets.randbelow(500), 3, 4, 5, 0, tzinfo=UTC)
    proc = _start(app, db_urls, moment, "scheduler", "--interval", "0.5")
    try:
        assert _wait_for(lambda: _claims_in(f"{moment:%Y-%m-%d}") >= 4, 60), "the scheduler never ticked"
    finally:
        code, out = _stop(proc)
    assert code == 0, out[-2000:]

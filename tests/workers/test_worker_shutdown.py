"""`portal worker` on SIGTERM (a deploy, a scale-in, Kubernetes stopping the pod): the job in progress
finishes, the relay loop ends its round, and the process exits 0 well within the grace period. Its log
lines are JSON, rq's included, tagged with the job; its metrics answer on WORKER_METRICS_PORT meanwhile."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from tests import log_capture
from tests.processes import portal_env
from tests.services import free_port
from workers import redis_connection

GRACE = 30  # seconds: Kubernetes' default terminationGracePeriodSeconds
TOKEN = "worker-metrics-token-5e7a9c"  # noqa: S105 - the test's own


def _wait_for(condition, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _scrape(port: int) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
            return answer.read().decode()
    except OSError:
        return None


def test_sigterm_lets_the_job_in_progress_finish_and_the_worker_exit_0(app, ctx, db_urls, tmp_path):
    name = f"shutdown-{uuid.uuid4().hex[:8]}"
    job = Queue(name, connection=redis_connection(), serializer=JSONSerializer).enqueue(
        "tests.workers.jobs_for_tests.sleep_then_mark", str(tmp_path), "4", job_timeout=60)
    port = free_port()
    env = portal_env(app, db_urls, WORKER_METRICS_PORT=str(port), METRICS_TOKEN=TOKEN, LOG_FORMAT="json")
    # A session of its own: whatever it leaves behind (a child holding its output) is killed with it at the end.
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker", "--queues", name, "--no-scheduler"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out = err = b""
    took = float("inf")
    try:
        assert _wait_for(lambda: (tmp_path / "started").exists() or proc.poll() is not None, 90), \
            "the worker never started the job"
        assert proc.poll() is None, "the worker stopped on its own"
        scraped = _scrape(port)
        assert scraped is not None and "portal_job_duration_seconds" in scraped

        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):  # judged below: the exit code and the time
            out, err = proc.communicate(timeout=GRACE)
            took = time.monotonic() - signalled
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if not (out or err):
            with contextlib.suppress(subprocess.TimeoutExpired):
                out, err = proc.communicate(timeout=10)
        log_capture.add_output("portal worker", out.decode(errors="replace") + err.decode(errors="replace"))
    err_text = err.decode(errors="replace")
    assert took < GRACE, f"the worker (or a child holding its output) was still there after {GRACE} s"
    assert proc.returncode == 0, err_text[-3000:]
    assert (tmp_path / "finished").exists(), "the job in progress was cut off"
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert "Traceback" not in err_text, err_text[-3000:]

    lines = [json.loads(line) for line in err_text.splitlines() if line.strip()]  # every line of stderr is JSON
    assert any(r["logger"].startswith("rq.") and r.get("job_id") == job.id and r.get("queue") == name for r in lines)


def test_a_job_whose_worker_was_killed_is_run_again_once_its_heartbeat_runs_out(app, ctx, db_urls, tmp_path):
    """SIGKILL mid-job leaves it 'started' with nobody running it; the relay loop's check hands it back as soon
    as its heartbeat (timeout + 60 s) has run out, not at rq's next ten-minute maintenance."""
    from rq import Retry
    from rq.worker import SimpleWorker

    from workers import recover_abandoned

    name = f"killed-{uuid.uuid4().hex[:8]}"
    waiting = Queue(name, connection=redis_connection(), serializer=JSONSerializer)
    job = waiting.enqueue("tests.workers.jobs_for_tests.sleep_then_mark", str(tmp_path), "30", job_timeout=60,
                          retry=Retry(max=1))
    env = portal_env(app, db_urls)
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker", "--queues", name, "--no-scheduler"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait_for(lambda: (tmp_path / "started").exists() or proc.poll() is not None, 90), \
            "the worker never started the job"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    (tmp_path / "started").unlink()
    assert job.get_status(refresh=True) == JobStatus.STARTED  # and nobody left to run it

    recover_abandoned([name], at=time.time() + 30)  # its heartbeat has not run out: it may still be running
    assert job.get_status(refresh=True) == JobStatus.STARTED
    recover_abandoned([name], at=time.time() + 60 + 61)
    assert job.get_status(refresh=True) == JobStatus.QUEUED and job.id in waiting.get_job_ids()

    job.args = [str(tmp_path), "0"]  # the same job, run again, now quick
    job.save()
    SimpleWorker([waiting], connection=redis_connection(), serializer=JSONSerializer).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED and (tmp_path / "finished").exists()

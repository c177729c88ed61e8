"""Long-lived processes keep their loaded app out of the garbage collector's full passes (portal/heap.py): a full
collection over the ~300,000 objects of a loaded portal stopped a gunicorn worker's threads for 230-250 ms."""

from __future__ import annotations

import gc
import runpy
import subprocess
import sys
import uuid
from pathlib import Path

from rq import Queue
from rq.serializers import JSONSerializer

from tests.processes import portal_env
from workers import redis_connection

ROOT = Path(__file__).resolve().parent.parent


def test_a_gunicorn_worker_freezes_its_loaded_app_before_its_first_request(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # else the config makes a folder of its own
    config = runpy.run_path(str(ROOT / "infra" / "gunicorn.conf.py"))
    loaded = [object()]  # alive when the worker finished loading
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](None)  # gunicorn calls it once the app is loaded, before serving
        assert gc.get_freeze_count() > 0
        assert not any(o is loaded for o in gc.get_objects()), "what was loaded is still in the full passes"
        made_later = [object()]
        assert any(o is made_later for o in gc.get_objects()), "a request's objects must still be collected"
    finally:
        gc.unfreeze()


def test_the_rq_worker_runs_its_jobs_with_its_loaded_app_frozen(app, ctx, db_urls, tmp_path):
    name = f"heap-{uuid.uuid4().hex[:8]}"
    Queue(name, connection=redis_connection(), serializer=JSONSerializer).enqueue(
        "tests.workers.jobs_for_tests.note_frozen", str(tmp_path))
    env = portal_env(app, db_urls, LOG_FORMAT="json")
    done = subprocess.run([sys.executable, "-m", "portal.cli", "worker", "--queues", name, "--no-scheduler",
                           "--burst"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int((tmp_path / "frozen").read_text()) > 0, "the worker's jobs ran with the loaded app unfrozen"

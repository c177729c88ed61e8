"""Jobs for the tests of the worker itself (rq imports them by name: the worker in a test, or `portal worker`
started by one, runs them). They take strings only, as the JSON serializer carries them."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from tenants.context import for_tenant


def log_a_line(tenant_id: str) -> None:
    """Write one line to the log with ``tenant_id`` bound, as a job for that tenant does."""
    with for_tenant(uuid.UUID(tenant_id)):
        logging.getLogger("workers.test").info("a line from inside a job")


def succeed() -> None:
    """Do nothing, successfully."""


def fail() -> None:
    """Fail, as a job with a bug does."""
    raise RuntimeError("a job that fails")


def sleep_then_mark(folder: str, seconds: str) -> None:
    """Write ``started``, sleep ``seconds``, write ``finished``: a job still in progress when a signal comes."""
    Path(folder, "started").write_text(str(time.time()))
    time.sleep(float(seconds))
    Path(folder, "finished").write_text(str(time.time()))


def note_frozen(folder: str) -> None:
    """Write how many objects the worker's process keeps out of the collector's full passes (portal/heap.py)."""
    import gc

    Path(folder, "frozen").write_text(str(gc.get_freeze_count()))

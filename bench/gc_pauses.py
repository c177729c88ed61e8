#!/usr/bin/env python3
"""How long a full garbage collection stops a loaded portal, before and after ``portal.heap.freeze_loaded_app``.

The app is loaded as a gunicorn worker loads it (``import wsgi``, in a temporary instance folder; database and
Redis addresses that are never dialled: the pages served read neither). Then, in the same process, twice: the
sign-in and reset pages served ``--requests`` times in both languages (compiled templates and catalogues, the
garbage requests leave), and ``--rounds`` full collections timed (``gc.collect()``, wall time: every thread of a
worker waits for it); the app frozen in between.

    .venv/bin/python bench/gc_pauses.py               # 200 requests and 7 collections each side
    .venv/bin/python bench/gc_pauses.py --rounds 21 --requests 1000
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("/healthz", "/auth/login", "/auth/reset")
UNUSED = {"DATABASE_URL": "postgresql+psycopg://portal_app@127.0.0.1:9/never",
          "MIGRATION_DATABASE_URL": "postgresql+psycopg://portal_owner@127.0.0.1:9/never",
          "REDIS_URL": "redis://127.0.0.1:9/0"}


def _serve(client, requests: int) -> None:  # noqa: ANN001 - a FlaskClient
    for i in range(requests):
        path = PAGES[i % len(PAGES)]
        status = client.get(path, headers={"Accept-Language": ("en", "vi")[i % 2]}).status_code
        if status != 200:
            raise SystemExit(f"{path} answered {status}: the app did not load as a worker's would")


def _timed(rounds: int) -> tuple[int, list[float]]:
    tracked = len(gc.get_objects())
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return tracked, times


def _line(label: str, tracked: int, full: list[float]) -> str:
    return f"{label:<8} {tracked:>9,} {statistics.median(full):>9.1f} {max(full):>9.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="collections timed on each side (default 7)")
    parser.add_argument("--requests", type=int, default=200, help="pages served on each side (default 200)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 101 or not 1 <= args.requests <= 100_000:
        parser.error("--rounds: 1 to 101; --requests: 1 to 100,000")

    with tempfile.TemporaryDirectory(prefix="portal-gc-bench-") as instance:
        os.environ.update(UNUSED, PORTAL_INSTANCE=instance)
        sys.path.insert(0, str(ROOT))
        import wsgi  # noqa: PLC0415 - loaded as a gunicorn worker loads it, after the environment is set
        from portal.heap import freeze_loaded_app  # noqa: PLC0415

        client = wsgi.app.test_client()
        _serve(client, args.requests)
        before = _timed(args.rounds)
        frozen = freeze_loaded_app()
        _serve(client, args.requests)
        after = _timed(args.rounds)

    print(f"a full garbage collection in a loaded portal after {args.requests} pages (python"
          f" {sys.version.split()[0]}, {args.rounds} collections; {frozen:,} objects frozen); wall time")
    print(f"{'':<8} {'tracked':>9} {'p50 ms':>9} {'max ms':>9}")
    print(_line("as is", *before))
    print(_line("frozen", *after))
    return 0


if __name__ == "__main__":
    sys.exit(main())

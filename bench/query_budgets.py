#!/usr/bin/env python3
"""What a page costs in SQL statements: the table of ``tests/test_query_budgets.py``, measured now.

Runs that test module (its own database, as every test run; under a minute on a quiet machine) with
``QUERY_BUDGETS_TABLE`` set, so that it writes the table of pages it counted (at 5 and at 50 rows of everything,
against each page's budget), then prints the table, or writes it into ``bench/README.md`` between the markers of
its section "What a page costs". The statements of every page are kept beside it (``--sql``), to see where they go.

    .venv/bin/python bench/query_budgets.py                  # print the table
    .venv/bin/python bench/query_budgets.py --write          # and put it in bench/README.md
    .venv/bin/python bench/query_budgets.py --sql /tmp/pages.sql --redis-db 9
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
START, END = "<!-- query-budgets:start -->", "<!-- query-budgets:end -->"


def measure(redis_db: int | None) -> tuple[str, str, int]:
    """The table and every page's statements, as the test wrote them, and the test run's exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "table.md"
        env = dict(os.environ, QUERY_BUDGETS_TABLE=str(table))
        if redis_db is not None:
            env["PORTAL_TEST_REDIS_DB"] = str(redis_db)
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_query_budgets.py"], cwd=ROOT, env=env, check=False)
        if not table.exists():
            raise SystemExit(f"the test wrote no table (pytest exited {done.returncode})")
        sql = Path(f"{table}.sql")
        return table.read_text(encoding="utf-8"), sql.read_text(encoding="utf-8") if sql.exists() else "", \
            done.returncode


def write_into_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{README} has no {START} ... {END} section to fill")
    before, rest = text.split(START, 1)
    _old, after = rest.split(END, 1)
    README.write_text(f"{before}{START}\n{table}{END}{after}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="put the table into bench/README.md")
    parser.add_argument("--sql", type=Path, help="write every page's statements to this file")
    parser.add_argument("--redis-db", type=int, help="the Redis database of the test run (PORTAL_TEST_REDIS_DB)")
    args = parser.parse_args()
    table, sql, status = measure(args.redis_db)
    print(table, end="")
    if args.sql:
        args.sql.write_text(sql, encoding="utf-8")
    if status != 0:
        print(f"\nSome pages failed their check (pytest exited {status}): the table shows what was measured; "
              "bench/README.md is left as it was.", file=sys.stderr)
        return status
    if args.write:
        write_into_readme(table)
        print(f"\nwritten into {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

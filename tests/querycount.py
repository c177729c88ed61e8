"""Counting the SQL statements a piece of code sends: ``with count_queries() as counted: ...; counted.n``.

A ``before_cursor_execute`` listener on the application's engine sees every statement SQLAlchemy hands a
cursor: the ORM's, Core's and ``text()`` alike, the scope's ``set_config`` included, from any session or
connection of that engine (a request's, a job's, a short transaction of its own). ``BEGIN``, ``COMMIT`` and
``ROLLBACK`` are sent by the driver itself and are not counted; an ``executemany`` (or a batch of
"insertmanyvalues") counts once per batch. Connections made on other engines (``portal/health.py``) are not seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event

from portal.extensions import db


@dataclass
class Counted:
    """The statements seen, in order (whitespace squeezed, cut at 200 characters)."""

    statements: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.statements)

    def __str__(self) -> str:
        return "\n".join(f"{i:3d} {s}" for i, s in enumerate(self.statements, 1))


@contextmanager
def count_queries() -> Iterator[Counted]:
    """Count what the application's engine sends while the block runs (needs an application context)."""
    counted = Counted()
    engine = db.engine

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001, ARG001
        counted.statements.append(" ".join(statement.split())[:200])

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", before)

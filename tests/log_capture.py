"""Every log record of a test session, in one file, and the canaries that must never be in it.

``start`` (tests/conftest.py, when the session starts) installs a log record factory: every record any
logger of the process creates (the portal's, tenants', workers', rq's, werkzeug's, gunicorn's, a library's)
is written to the session's file as it is made, message, traceback and all, whichever handlers print it or
not (scrubbed as the portal's formatter scrubs every line: ``portal.logs.scrub``). Tests that start
processes add what those printed (``add_output``). ``finish`` (when the session ends) greps the file for
the canaries: values tests/test_log_canaries.py plants on purpose (a password, a salary, a document's
text, tokens) and the password every test person signs in with. One found fails the run, and the lines
that hold it are printed with the canary masked.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import traceback
from pathlib import Path

from portal.logs import scrub
from tests.factories import PASSWORD

# What must never be logged. Each canary is listed with the ways a log line could spell it.
CANARY_PASSWORD = "canary-Pa55phrase-q7Wz"  # noqa: S105 - a planted value, the point of the test
CANARY_TOKEN = "canarytokenZ8pW2xQ9vL4mN6rT1yU3"  # noqa: S105
CANARY_TEXT = "Kanarienvogel-Textzeile-5RJ2"  # the text of a document
CANARY_SALARY = 48_213_977  # a base salary, in đồng
CANARIES: dict[str, tuple[str, ...]] = {
    "password": (CANARY_PASSWORD, PASSWORD),
    "token": (CANARY_TOKEN,),
    "document text": (CANARY_TEXT, CANARY_TEXT.lower(), CANARY_TEXT.upper()),
    "salary": (str(CANARY_SALARY), f"{CANARY_SALARY:,}", f"{CANARY_SALARY:,}".replace(",", "."),
               f"{CANARY_SALARY:_}".replace("_", " ")),
}

_state: dict[str, object] = {}
_lock = threading.Lock()


def path() -> Path | None:
    """The session's log file (None before ``start``)."""
    return _state.get("path")  # type: ignore[return-value]


def _write(line: dict) -> None:
    out = _state.get("file")
    if out is None:
        return
    with _lock:
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]


def start() -> Path:
    """Open the session's file and route every log record created from now on into it."""
    if "path" in _state:
        return path()  # type: ignore[return-value]
    fd, name = tempfile.mkstemp(prefix=f"portal-test-logs-{os.getpid()}-", suffix=".jsonl")
    _state["path"] = Path(name)
    _state["file"] = os.fdopen(fd, "w", encoding="utf-8")
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # logging itself reports a record whose arguments do not fit
            message = f"{record.msg!r} % {record.args!r}"
        # As the portal's formatter writes it (portal.logs.scrub: a database error's DETAIL line, which quotes
        # the failing row, is cut), and nothing else is changed.
        line = {"logger": record.name, "level": record.levelname, "message": scrub(message)}
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = scrub("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            line["stack"] = record.stack_info
        _write(line)
        return record

    logging.setLogRecordFactory(factory)
    return path()  # type: ignore[return-value]


def add_output(source: str, text: str) -> None:
    """Add what a process started by a test printed (its stderr and stdout) to the session's log."""
    for raw in text.splitlines():
        if raw.strip():
            _write({"logger": f"subprocess:{source}", "level": "-", "message": raw})


def findings(text: str | None = None) -> list[tuple[str, str]]:
    """(canary's name, the line it is in, masked) for each line of the session's log holding a canary."""
    if text is None:
        current = path()
        text = current.read_text(encoding="utf-8", errors="replace") if current and current.exists() else ""
    found = []
    for line in text.splitlines():
        for name, spellings in CANARIES.items():
            hit = next((s for s in spellings if s in line), None)
            if hit:
                found.append((name, line.replace(hit, f"<{name} canary>")[:500]))
    return found


def finish(keep: bool) -> list[tuple[str, str]]:
    """Close the file; return the findings. The file is removed unless ``keep`` or something was found."""
    found = findings()
    out = _state.pop("file", None)
    if out is not None:
        out.close()  # type: ignore[attr-defined]
    current = _state.get("path")
    if current and not (keep or found):
        Path(current).unlink(missing_ok=True)  # type: ignore[arg-type]
    return found

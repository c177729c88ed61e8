"""The portal's own log lines: one JSON object per line on the process's stderr, wherever it runs.

Nothing configured the ``portal``, ``tenants`` and ``workers`` loggers, so an unhandled error's
reference reached the user and its traceback reached no log: alembic's ``fileConfig`` (run by
``portal dev`` and the test run before serving) even switches every existing logger off. Here
each of them gets one stderr handler, unless one was configured for it already (a deployment's
own logging config), and the level of ``LOG_LEVEL``. The same lines then come out of
``portal dev``, gunicorn (whose error and access logs use the same formatter: infra/gunicorn.conf.py)
and the rq worker (``portal worker`` gives rq's loggers the same handler).

Each line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid``, and, when known,
``request_id``, ``tenant_id``, ``user_id``, and for a job ``job_id`` and ``queue``; an error's traceback is
in ``exception``. Ids only: the message is the code's own sentence with ids in it, never a document's
content or text, a password, a token, a salary or another personal field (tests/test_log_canaries.py
plants such values in a whole test session and greps its logs for them). PostgreSQL's DETAIL lines,
which quote the values of a failing row, are cut from every line (``scrub``). ``LOG_FORMAT=text`` gives
the older one-line format, for a person reading ``portal dev``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

LOGGERS = ("portal", "tenants", "workers")
FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"

# Invite, password-reset and payslip links carry their secret in the path: never write it to a log.
_SECRET_PATH = re.compile(r"^(/auth/(?:invite|reset)/|/payslip/)[^/?\s]+")
_SECRET_ANYWHERE = re.compile(r"(/auth/(?:invite|reset)/|/payslip/)(?!\[redacted\])[^/?\s\"'#]+")
# A proxy's request id is kept when it looks like one (a UUID, hex, a load balancer's trace id): printable,
# no spaces or quotes, at most 128 characters. Anything else is replaced by one of ours.
_SANE_REQUEST_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:;=+/-]{0,127}\Z")
# What PostgreSQL adds to an error about a row ("Key (email)=(…) already exists", "Failing row contains (…)"),
# and SQLAlchemy's echo of a statement's parameters (hidden by the engine option, cut here again).
_DETAIL = re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE)
_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\()", re.DOTALL)

_job: ContextVar[tuple[str, str] | None] = ContextVar("portal_log_job", default=None)


def redact(path: str) -> str:
    """``path`` with the token of an invite, reset or payslip link replaced by [redacted]."""
    return _SECRET_PATH.sub(r"\1[redacted]", path)


def scrub(text: str) -> str:
    """``text`` without the row values a database error quotes (its DETAIL lines, a statement's parameters),
    and without the token of an invite, reset or payslip link wherever it is (a request line of werkzeug's)."""
    if "/auth/" in text or "/payslip/" in text:
        text = _SECRET_ANYWHERE.sub(r"\1[redacted]", text)
    if "DETAIL:" in text:
        text = _DETAIL.sub(r"\1 [redacted]", text)
    if "[parameters: " in text:
        text = _PARAMETERS.sub("[parameters: redacted]", text)
    return text


@contextmanager
def job_context(job_id: str, queue: str) -> Iterator[None]:
    """Tag the log lines written while a job runs with its id and queue (the rq worker wraps each job)."""
    token = _job.set((job_id, queue))
    try:
        yield
    finally:
        _job.reset(token)


def request_id() -> str | None:
    """This request's id (the proxy's X-Request-ID when sane, else ours), or None outside a request."""
    if has_request_context():
        return g.get("request_id")
    return None


def context() -> dict[str, str]:
    """The ids that place a log line: request, tenant, user, job. Only those known."""
    from tenants.context import current_scope

    out: dict[str, str] = {}
    rid = request_id()
    if rid:
        out["request_id"] = rid
    scope = current_scope()
    if scope.tenant_id:
        out["tenant_id"] = str(scope.tenant_id)
    if scope.user_id:
        out["user_id"] = str(scope.user_id)
    job = _job.get()
    if job:
        out["job_id"], out["queue"] = job
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a field, its newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "pid": record.process,
        }
        with contextlib.suppress(Exception):  # a line without its ids beats no line (interpreter shutdown, say)
            line.update(context())
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = scrub(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The one-line text format (``LOG_FORMAT=text``), scrubbed like the JSON one."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def formatter(kind: str | None = None) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` names ("json", the default, or "text")."""
    kind = (kind or os.environ.get("LOG_FORMAT") or "json").strip().lower()
    return TextFormatter() if kind == "text" else JsonFormatter()


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (gunicorn and test runners replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # noqa: ANN201 - a text stream
        return sys.stderr


def configure(names: tuple[str, ...], level: str | int, kind: str | None = None) -> None:
    """Give each logger of ``names`` our stderr handler (once per process) and ``level``.

    Our handler is the only output of these loggers (no propagation): wherever the root
    logger has a handler too (alembic's, a gunicorn ``logconfig_dict``) every line would
    otherwise be written twice. A logger that has a handler of someone else's (a deployment's
    own logging config) is left as it is, but for its level. Calling it again switches back on
    loggers that a ``logging.config.fileConfig`` switched off since.
    """
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        ours = [h for h in logger.handlers if isinstance(h, StderrHandler)]
        if not logger.handlers:
            handler = StderrHandler()
            logger.addHandler(handler)
            logger.propagate = False
            ours = [handler]
        for handler in ours:
            handler.setFormatter(formatter(kind))
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and name.split(".", 1)[0] in names:
            logger.disabled = False


def _take_request_id() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if _SANE_REQUEST_ID.match(sent) else secrets.token_hex(16)


def _give_request_id(response: Response) -> Response:
    rid = g.get("request_id")
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    # For gunicorn's access log line (infra/gunicorn.conf.py), written after the app has returned.
    from tenants.context import current_scope

    scope = current_scope()
    request.environ["portal.log"] = {k: str(v) for k, v in (
        ("tenant_id", scope.tenant_id), ("user_id", scope.user_id), ("endpoint", request.endpoint)) if v}
    return response


def init_app(app: Flask) -> None:
    """Give our loggers a stderr handler (once per process) and the configured level; give every
    request an id (X-Request-ID, echoed in the response).

    ``init_app`` runs first in ``create_app``: the request id is there for every later hook's log lines.
    """
    configure(LOGGERS, app.config["LOG_LEVEL"], app.config.get("LOG_FORMAT"))
    if "portal_logs" not in app.extensions:  # called again (`portal dev`, after alembic's fileConfig): once
        app.extensions["portal_logs"] = True
        app.before_request(_take_request_id)
        app.after_request(_give_request_id)
